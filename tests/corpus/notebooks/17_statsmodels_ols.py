# Linear regression with statsmodels: formula API, diagnostics, predictions.
# %%
import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
# %%
rng = np.random.default_rng(5)
n = 80
df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.uniform(0, 3, size=n), "grp": rng.choice(["a", "b"], size=n)})
df["y"] = 1.5 + 2 * df.x1 - 0.7 * df.x2 + (df.grp == "b") * 0.8 + rng.normal(0, 0.5, size=n)
# %%
X = sm.add_constant(df[["x1", "x2"]])
ols = sm.OLS(df.y, X).fit()
print(ols.summary())
# %%
params = ols.params.round(4)
r2 = round(ols.rsquared, 4)
# %%
model_f = smf.ols("y ~ x1 + x2 + C(grp)", data=df).fit()
pvals = model_f.pvalues
# %%
new = pd.DataFrame({"x1": [0.0, 1.0], "x2": [1.0, 2.0], "grp": ["a", "b"]})
pred = model_f.predict(new)
# %%
resid_sd = float(np.std(model_f.resid))
