# Item-item recommendations from a small ratings matrix.
# %%
import numpy as np
import pandas as pd
# %%
rng = np.random.default_rng(12)
users = [f"u{i}" for i in range(12)]
items = [f"i{j}" for j in range(8)]
R = pd.DataFrame(rng.integers(0, 6, size=(12, 8)), index=users, columns=items).astype(float)
R[R < 2] = np.nan
R.head()
# %%
means = R.mean(axis=1)
centered = R.sub(means, axis=0).fillna(0)
# %%
M = centered.to_numpy()
norms = np.linalg.norm(M, axis=0)
norms[norms == 0] = 1
sim = (M.T @ M) / np.outer(norms, norms)
np.fill_diagonal(sim, 0)
sim_df = pd.DataFrame(sim, index=items, columns=items).round(4)
# %%
def recommend(user, k=3):
    seen = R.loc[user].dropna().index
    scores = sim_df[seen].sum(axis=1).drop(seen, errors="ignore")
    return scores.sort_values(ascending=False).head(k).index.tolist()
# %%
recs = {u: recommend(u) for u in users[:4]}
# %%
popular = R.count().sort_values(ascending=False).head(3).index.tolist()
coverage = len({i for v in recs.values() for i in v}) / len(items)
