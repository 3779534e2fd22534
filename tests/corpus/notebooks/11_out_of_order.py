# Cells re-run out of order: the threshold cell is edited in place and re-run,
# the filter cell runs again after it, and a setup cell runs twice.
# order: 1,2,3,4,5,3,4,6,2,7
# %%
import numpy as np
import pandas as pd
# %%
data = pd.DataFrame({"x": np.arange(20), "g": list("abcd") * 5})
data["y"] = data.x ** 2 % 7
# %%
threshold = 3 if "threshold" not in globals() else threshold + 1
# %%
kept = data[data.y > threshold]
n_kept = len(kept)
# %%
summary = kept.groupby("g")["x"].sum()
# %%
history = [] if "history" not in globals() else history
history.append(n_kept)
# %%
final = data.y.sum() + n_kept
