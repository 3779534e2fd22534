# A/B test analysis with scipy's statistics and a hand-rolled power calculation.
# %%
import numpy as np
import pandas as pd
from scipy import stats
# %%
np.random.seed(8)
n = 500
ab = pd.DataFrame({"group": np.random.choice(["A", "B"], size=n)})
ab["converted"] = np.where(ab.group == "A", np.random.rand(n) < 0.10, np.random.rand(n) < 0.14).astype(int)
# %%
rates = ab.groupby("group")["converted"].agg(["mean", "sum", "count"])
rates
# %%
table = pd.crosstab(ab.group, ab.converted)
chi2, p_chi2, dof, _ = stats.chi2_contingency(table)
# %%
a = ab.loc[ab.group == "A", "converted"]
b = ab.loc[ab.group == "B", "converted"]
t_stat, p_t = stats.ttest_ind(a, b, equal_var=False)
# %%
def power(p1, p2, n_per, alpha=0.05):
    se = np.sqrt(p1 * (1 - p1) / n_per + p2 * (1 - p2) / n_per)
    z = stats.norm.ppf(1 - alpha / 2)
    return float(1 - stats.norm.cdf(z - abs(p2 - p1) / se))
# %%
powers = {n_per: round(power(0.10, 0.14, n_per), 4) for n_per in (100, 250, 500, 1000)}
# %%
lift = float(b.mean() / a.mean() - 1)
decision = "ship B" if (p_chi2 < 0.05 and lift > 0) else "keep A"
