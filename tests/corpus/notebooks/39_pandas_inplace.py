# Cleaning a frame the old-fashioned way: inplace=True everywhere, .loc writes, pop, del, insert.
# %%
import numpy as np
import pandas as pd
# %%
df = pd.DataFrame({"a": [3, 1, 2, 5, 4, 2], "b": list("xyzxyz"),
                   "c": [1.0, np.nan, 3.0, np.nan, 5.0, 6.0]})
raw = df
# %%
df.sort_values("a", inplace=True)
df.reset_index(drop=True, inplace=True)
# %%
df.rename(columns={"b": "grp"}, inplace=True)
df.fillna({"c": 0}, inplace=True)
# %%
df.loc[df.a > 3, "c"] = -1
df["a"] += 10
df.at[0, "grp"] = "w"
# %%
popped = df.pop("c")
df.insert(1, "c2", popped * 2)
# %%
df.drop_duplicates(subset=["a"], keep="last", inplace=True)
df.columns = [c.upper() for c in df.columns]
df.index.name = "row"
# %%
sub = df[df.GRP == "x"]
sub_sum = int(sub.A.sum())
df.query("A > 12", inplace=True)
# %%
df.eval("D = A * C2", inplace=True)
df.replace({"GRP": {"z": "zz"}}, inplace=True)
# %%
df.set_index("GRP", inplace=True)
df.sort_index(inplace=True)
n_rows = len(df)
# %%
del df["C2"]
totals = df.sum().to_dict()
