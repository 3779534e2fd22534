# pandas in loops: iterrows with .at writes, groupby loops filling dicts, rows appended with .loc[len(df)].
# %%
import numpy as np
import pandas as pd
# %%
orders = pd.DataFrame({"cust": list("abcabca"), "amt": [5, 3, 8, 2, 7, 1, 4], "flag": [0] * 7})
# %%
for i, row in orders.iterrows():
    if row.amt > 4:
        orders.at[i, "flag"] = 1
# %%
per_cust = {}
for name, g in orders.groupby("cust"):
    per_cust[name] = int(g.amt.sum())
# %%
log = []
orders["amt2"] = orders.amt.apply(lambda v: log.append(v) or v * 2)
# %%
summary = pd.DataFrame(columns=["cust", "n"])
for c in sorted(per_cust):
    summary.loc[len(summary)] = [c, per_cust[c]]
# %%
patch = pd.DataFrame({"amt": [100]}, index=[2])
orders.update(patch)
orders.loc[orders.amt2 < 5, "amt2"] = 0
# %%
frames = [orders.head(2)]
frames.append(orders.tail(2))
both = pd.concat(frames)
frames.append(orders.iloc[[3]])
# %%
s = orders.amt.copy()
s.update(pd.Series({0: -1}))
top_cust = orders.groupby("cust").amt.sum().idxmax()
