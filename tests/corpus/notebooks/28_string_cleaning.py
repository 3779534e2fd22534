# Messy string columns: strip, replace, regex extraction, categoricals.
# inputs: customers.csv
# %%
import re
import pandas as pd
import numpy as np
# %%
cust = pd.read_csv("customers.csv")
cust.dtypes
# %%
cust["first"] = cust["name"].str.split().str[0]
cust["initial"] = cust["name"].str.extract(r"(\w)\.$", expand=False)
# %%
cust["city_code"] = cust["city"].str.upper().str[:3]
cust["city_code"] = cust["city_code"].replace({"POR": "OPO", "TUR": "TRN"})
# %%
cust.replace({"segment": {"vip": "VIP"}}, inplace=True)
cust["segment"] = cust["segment"].astype("category")
seg_codes = cust["segment"].cat.codes.tolist()
# %%
cust["age"] = pd.to_numeric(cust["age"], errors="coerce")
cust["age"].fillna(-1, inplace=True) if False else None
cust["age_filled"] = cust["age"].fillna(cust["age"].median()).astype(int)
# %%
cust["signup_year"] = cust["signup_date"].str.slice(0, 4).astype(int)
cust["signup_month"] = cust["signup_date"].map(lambda s: int(re.match(r"\d{4}-(\d{2})", s).group(1)))
# %%
label = "customers".title().replace("C", "K")
other = "xyz".replace("x", "q")
ids = cust["customer_id"].str.replace("C", "", regex=False).astype(int).tolist()
# %%
summary = cust.groupby("segment", observed=True)["age_filled"].agg(["count", "mean"]).round(2)
summary
