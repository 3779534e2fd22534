# A notebook full of IPython magics: timing, shell commands, inline plots.
# inputs: sales.csv
# %%
%matplotlib inline
import numpy as np
import pandas as pd
# %%
!ls
# %%
%time df = pd.read_csv("sales.csv")
# %%
%%time
df["revenue"] = df["units"].fillna(0) * df["unit_price"]
by_region = df.groupby("region")["revenue"].sum()
# %%
%timeit -n 3 -r 1 df.revenue.sum()
# %%
files = !ls
has_sales = "sales.csv" in files
# %%
arr = np.arange(1000)
sums = []
%timeit -n 1 -r 1 arr.sum()
# %%
%%timeit -n 1 -r 1
squares = arr ** 2
sums.append(int(squares.sum()))
# %%
%timeit -n 2 -r 1 sums.append(len(sums))
# %%
total = int((arr ** 2).sum())
# %%
%who
# %%
top_region = by_region.idxmax()
