# Gradient boosting with xgboost on a small tabular problem.
# %%
import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from sklearn.metrics import roc_auc_score
# %%
X, y = make_classification(n_samples=300, n_features=8, n_informative=5, random_state=0)
X = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)])
# %%
X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=1)
# %%
model = xgb.XGBClassifier(n_estimators=20, max_depth=3, learning_rate=0.3, n_jobs=1, random_state=0)
model.fit(X_tr, y_tr)
# %%
proba = model.predict_proba(X_te)[:, 1]
auc = round(roc_auc_score(y_te, proba), 4)
auc
# %%
importance = pd.Series(model.feature_importances_, index=X.columns).sort_values(ascending=False)
top3 = importance.index[:3].tolist()
# %%
dtrain = xgb.DMatrix(X_tr[top3], label=y_tr)
booster = xgb.train({"max_depth": 2, "objective": "binary:logistic", "nthread": 1}, dtrain, num_boost_round=5)
small_pred = booster.predict(xgb.DMatrix(X_te[top3]))
