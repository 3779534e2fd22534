# Model comparison with cross-validation on a synthetic regression problem.
# %%
import numpy as np
import pandas as pd
from sklearn.datasets import make_regression
from sklearn.model_selection import KFold, cross_val_score, cross_validate
from sklearn.linear_model import Ridge, Lasso, LinearRegression
from sklearn.tree import DecisionTreeRegressor
# %%
X, y = make_regression(n_samples=150, n_features=8, noise=10.0, random_state=42)
# %%
kf = KFold(n_splits=5, shuffle=True, random_state=1)
# %%
models = {
    "ols": LinearRegression(),
    "ridge": Ridge(alpha=1.0),
    "lasso": Lasso(alpha=0.5),
    "tree": DecisionTreeRegressor(max_depth=4, random_state=0),
}
# %%
results = {}
for name, model in models.items():
    s = cross_val_score(model, X, y, cv=kf, scoring="neg_root_mean_squared_error")
    results[name] = -s.mean()
results
# %%
res_df = pd.DataFrame.from_dict(results, orient="index", columns=["rmse"]).sort_values("rmse")
res_df
# %%
np.random.seed(123)
# %%
cv_tree = cross_validate(DecisionTreeRegressor(max_depth=3), X, y, cv=KFold(4, shuffle=True), return_train_score=True)
tree_gap = cv_tree["train_score"].mean() - cv_tree["test_score"].mean()
# %%
best_name = res_df.index[0]
best_model = models[best_name].fit(X, y)
coef = getattr(best_model, "coef_", None)
# %%
fold_sizes = [len(test) for _, test in kf.split(X)]
fold_sizes
