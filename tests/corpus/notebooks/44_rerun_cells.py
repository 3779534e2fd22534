# Re-running cells out of order: the seed cell, an appending cell and a resampling cell run again.
# order: 1,2,3,4,5,3,4,6,2,4,7,8
# %%
import random
import numpy as np
import pandas as pd
# %%
np.random.seed(3)
random.seed(3)
# %%
results = [] if "results" not in dir() else results
trial = np.random.randint(0, 100, size=4)
results.append(int(trial.sum()))
# %%
df = pd.DataFrame({"v": np.arange(10)})
samp = df.sample(3)
picked = samp.v.tolist()
# %%
names = ["a", "b", "c", "d"]
random.shuffle(names)
# %%
order_snapshot = list(names)
# %%
n_results = len(results)
total = sum(results)
# %%
final_pick = random.choice(names)
