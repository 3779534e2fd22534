# Reshaping: merges, pivots, melts and multi-index operations.
# inputs: sales.csv, customers.csv
# %%
import pandas as pd
# %%
sales = pd.read_csv("sales.csv", parse_dates=["date"])
cust = pd.read_csv("customers.csv")
sales.head()
# %%
merged = sales.merge(cust[["customer_id", "segment", "city"]], on="customer_id", how="left", validate="m:1")
merged.shape
# %%
merged["quarter"] = merged["date"].dt.quarter
wide = merged.pivot_table(index="segment", columns="quarter", values="units", aggfunc="sum", fill_value=0)
wide
# %%
long = wide.reset_index().melt(id_vars="segment", var_name="quarter", value_name="units")
long.head()
# %%
multi = merged.groupby(["city", "product"])["unit_price"].agg(["mean", "count"])
multi.loc["Oslo"]
# %%
stacked = multi["count"].unstack(fill_value=0)
# %%
cross = pd.crosstab(merged["region"], merged["segment"], margins=True)
# %%
merged.sort_values(["city", "date"], inplace=True)
merged["cum_units"] = merged.groupby("city")["units"].cumsum()
last_by_city = merged.groupby("city").tail(1)[["city", "cum_units"]].reset_index(drop=True)
