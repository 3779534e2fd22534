# Cohort retention table from order history, the classic marketing notebook.
# inputs: sales.csv
# %%
import pandas as pd
import numpy as np
# %%
orders = pd.read_csv("sales.csv", parse_dates=["date"])
orders = orders[["customer_id", "date", "units", "unit_price"]].copy()
orders.head()
# %%
orders["order_month"] = orders["date"].dt.to_period("M")
orders["cohort"] = orders.groupby("customer_id")["date"].transform("min").dt.to_period("M")
# %%
orders["period"] = (orders["order_month"] - orders["cohort"]).apply(lambda d: d.n)
orders.sample(5, random_state=0)
# %%
cohort_counts = orders.groupby(["cohort", "period"])["customer_id"].nunique().unstack(fill_value=0)
cohort_counts
# %%
cohort_size = cohort_counts.iloc[:, 0]
retention = cohort_counts.divide(cohort_size, axis=0).round(3)
retention
# %%
avg_retention = retention.mean(axis=0)
avg_retention.head()
# %%
orders["value"] = orders["units"].fillna(0) * orders["unit_price"]
ltv = orders.groupby("customer_id")["value"].sum().describe()
# %%
repeaters = (orders.groupby("customer_id")["order_month"].nunique() > 1).sum()
