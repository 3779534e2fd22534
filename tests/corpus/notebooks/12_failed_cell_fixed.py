# A failed cell fixed and re-run: the first attempt raises half-way through.
# %%
import pandas as pd
import numpy as np
# %%
df = pd.DataFrame({"city": ["Oslo", "Porto", "Lyon", "Oslo", "Turin"], "temp": ["3", "18", "11", "n/a", "14"]})
log = []
# %% raises
log.append("parse attempt 1")
df["temp_c"] = df["temp"].astype(float)
log.append("parsed")
# %%
df["temp_c"] = pd.to_numeric(df["temp"], errors="coerce")
log.append("parsed with coerce")
# %% raises
mean_by_city = df.groupby("city")["temp_c"].mean()
ratio = mean_by_city["Oslo"] / mean_by_city["Berlin"]
# %%
ratio = mean_by_city["Oslo"] / mean_by_city["Porto"]
# %% raises
counts = {}
for i, c in enumerate(df.city):
    counts[c] = counts.get(c, 0) + 1
    if i == 3:
        raise RuntimeError("interrupted")
# %%
warm = df[df.temp_c > 10].city.tolist()
n_log = len(log)
