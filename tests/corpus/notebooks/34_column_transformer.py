# A full preprocessing + model pipeline over mixed columns, saved with joblib and loaded back.
# inputs: customers.csv
# %%
import numpy as np
import pandas as pd
import joblib
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.impute import SimpleImputer
from sklearn.ensemble import GradientBoostingRegressor
# %%
cust = pd.read_csv("customers.csv")
cust["signup_month"] = pd.to_datetime(cust.signup_date).dt.month
target = cust["signup_month"] * 3.0 + cust["customer_id"].str[1:].astype(int)
# %%
num_cols = ["age"]
cat_cols = ["segment", "city"]
pre = ColumnTransformer([
    ("num", Pipeline([("imp", SimpleImputer(strategy="median")), ("sc", StandardScaler())]), num_cols),
    ("cat", OneHotEncoder(handle_unknown="ignore"), cat_cols),
])
# %%
np.random.seed(1)
model = Pipeline([("pre", pre), ("gb", GradientBoostingRegressor(n_estimators=20, subsample=0.8))])
model.fit(cust, target)
# %%
fitted = model.predict(cust).round(3)
# %%
joblib.dump(model, "model.joblib")
restored = joblib.load("model.joblib")
same = bool(np.allclose(restored.predict(cust), model.predict(cust)))
# %%
n_features_out = len(model.named_steps["pre"].get_feature_names_out())
