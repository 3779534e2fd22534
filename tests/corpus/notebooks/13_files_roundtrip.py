# Intermediate results written to disk and read back: csv, json, npy, text.
# inputs: sales.csv
# %%
import json
import os
import numpy as np
import pandas as pd
# %%
sales = pd.read_csv("sales.csv")
sales = sales.dropna(subset=["units"])
os.makedirs("out", exist_ok=True)
# %%
summary = sales.groupby("region", as_index=False)["units"].sum()
summary.to_csv("out/summary.csv", index=False)
# %%
reloaded = pd.read_csv("out/summary.csv")
reloaded
# %%
params = {"min_units": 5, "regions": sorted(sales.region.unique())}
with open("out/params.json", "w") as f:
    json.dump(params, f)
# %%
with open("out/params.json") as f:
    params_back = json.load(f)
params_back["min_units"] = 8
# %%
mat = np.arange(12, dtype=float).reshape(3, 4) / 3
np.save("out/mat.npy", mat)
mat_back = np.load("out/mat.npy")
# %%
lines = [f"{r.region}:{r.units}" for r in summary.itertuples()]
with open("out/report.txt", "w") as f:
    f.write("\n".join(lines))
# %%
with open("out/report.txt", "a") as f:
    f.write("\nTOTAL:%d" % summary.units.sum())
# %%
with open("out/report.txt") as f:
    report_lines = f.read().splitlines()
# %%
with open("sales.csv") as f:
    header = f.readline().strip().split(",")
unrelated = [1, 2, 3]
