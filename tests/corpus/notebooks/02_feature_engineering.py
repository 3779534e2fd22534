# Feature engineering for a churn-ish model on customers + sales.
# inputs: sales.csv, customers.csv
# %%
import pandas as pd
import numpy as np
# %%
sales = pd.read_csv("sales.csv", parse_dates=["date"])
customers = pd.read_csv("customers.csv", parse_dates=["signup_date"])
customers.head()
# %%
sales["units"].fillna(0, inplace=True)
sales["revenue"] = sales.units * sales.unit_price
# %%
agg = sales.groupby("customer_id").agg(
    n_orders=("order_id", "count"),
    total_units=("units", "sum"),
    total_revenue=("revenue", "sum"),
    last_order=("date", "max"),
)
agg.head()
# %%
feat = customers.merge(agg, left_on="customer_id", right_index=True, how="left")
feat[["n_orders", "total_units", "total_revenue"]] = feat[["n_orders", "total_units", "total_revenue"]].fillna(0)
feat.head()
# %%
feat["age"] = feat["age"].fillna(feat["age"].mean())
feat["age_band"] = pd.cut(feat["age"], bins=[0, 30, 45, 60, 120], labels=["<30", "30-45", "45-60", "60+"])
feat["age_band"].value_counts()
# %%
ref_date = pd.Timestamp("2023-07-01")
feat["recency_days"] = (ref_date - feat["last_order"]).dt.days
feat["tenure_days"] = (ref_date - feat["signup_date"]).dt.days
feat["avg_basket"] = np.where(feat.n_orders > 0, feat.total_revenue / feat.n_orders.replace(0, 1), 0.0)
# %%
feat["rev_rank_in_city"] = feat.groupby("city")["total_revenue"].rank(ascending=False, method="first")
feat["rev_share_city"] = feat["total_revenue"] / feat.groupby("city")["total_revenue"].transform("sum")
# %%
dummies = pd.get_dummies(feat[["segment", "city"]], prefix=["seg", "city"], dtype=int)
dummies.sum()
# %%
X = pd.concat([feat[["age", "n_orders", "total_units", "recency_days", "tenure_days", "avg_basket"]], dummies], axis=1)
X = X.fillna(-1)
X.describe().T
# %%
y = (feat["recency_days"].fillna(999) > 60).astype(int)
y.mean()
# %%
feature_names = list(X.columns)
len(feature_names)
