# Bootstrap confidence intervals with numpy's Generator API.
# %%
import numpy as np
import pandas as pd
# %%
rng = np.random.default_rng(99)
control = rng.normal(10.0, 2.0, size=200)
treat = rng.normal(10.6, 2.2, size=180)
# %%
def boot_mean_diff(a, b, n_boot, gen):
    out = np.empty(n_boot)
    for i in range(n_boot):
        out[i] = gen.choice(b, b.size).mean() - gen.choice(a, a.size).mean()
    return out
# %%
diffs = boot_mean_diff(control, treat, 400, rng)
ci = np.percentile(diffs, [2.5, 97.5]).round(4)
ci
# %%
observed = treat.mean() - control.mean()
p_like = float((diffs <= 0).mean())
# %%
rng2 = np.random.default_rng(1)
perm_stats = []
pooled = np.concatenate([control, treat])
for _ in range(200):
    rng2.shuffle(pooled)
    perm_stats.append(pooled[:180].mean() - pooled[180:].mean())
perm_p = float(np.mean(np.abs(perm_stats) >= abs(observed)))
# %%
table = pd.DataFrame({"stat": ["observed", "ci_low", "ci_high", "perm_p"], "value": [observed, ci[0], ci[1], perm_p]})
table
