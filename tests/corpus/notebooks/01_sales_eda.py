# Exploratory wrangling of a small sales export: many display cells, cleaning in place.
# inputs: sales.csv
# %%
import pandas as pd
import numpy as np
pd.set_option("display.max_columns", 20)
pd.options.display.float_format = "{:.2f}".format
# %%
df = pd.read_csv("sales.csv", parse_dates=["date"])
df.head()
# %%
df.shape
# %%
df.info()
# %%
df.describe()
# %%
df.isna().sum()
# %%
df["channel"].value_counts()
# %%
df["channel"] = df["channel"].str.strip().str.lower()
df["channel"].value_counts()
# %%
df["units"] = df["units"].fillna(df["units"].median())
df["units"] = df["units"].astype(int)
# %%
df["revenue"] = df["units"] * df["unit_price"]
df.sort_values("revenue", ascending=False).head(10)
# %%
by_region = df.groupby("region")["revenue"].sum().sort_values(ascending=False)
by_region
# %%
by_product = df.groupby(["region", "product"]).agg(units=("units", "sum"), revenue=("revenue", "sum")).reset_index()
by_product.head()
# %%
df["month"] = df["date"].dt.to_period("M").astype(str)
monthly = df.pivot_table(index="month", columns="channel", values="revenue", aggfunc="sum", fill_value=0)
monthly
# %%
top_customers = df.groupby("customer_id")["revenue"].sum().nlargest(5)
print(top_customers)
# %%
big_orders = df[df.revenue > df.revenue.quantile(0.9)]
n_big = len(big_orders)
share_big = big_orders.revenue.sum() / df.revenue.sum()
share_big
