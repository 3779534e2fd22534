# Helper functions and a class defined half-way, one helper redefined later.
# %%
import numpy as np
import pandas as pd
# %%
raw = pd.DataFrame({"price": [10.0, 12.5, np.nan, 9.0, 30.0, 11.0], "qty": [1, 2, 3, np.nan, 1, 4],
                    "sku": ["a", "b", "a", "c", "b", "a"]})
# %%
def fill_missing(df, strategy="median"):
    out = df.copy()
    for c in out.select_dtypes("number"):
        out[c] = out[c].fillna(getattr(out[c], strategy)())
    return out
# %%
clean = fill_missing(raw)
clean
# %%
class Scaler:
    def __init__(self, cols):
        self.cols = cols
        self.stats = {}

    def fit(self, df):
        for c in self.cols:
            self.stats[c] = (df[c].mean(), df[c].std())
        return self

    def transform(self, df):
        out = df.copy()
        for c, (m, s) in self.stats.items():
            out[c] = (out[c] - m) / s
        return out
# %%
scaler = Scaler(["price", "qty"]).fit(clean)
scaled = scaler.transform(clean)
# %%
def fill_missing(df, strategy="median"):
    return df.fillna(0)
# %%
zeros = fill_missing(raw)
# %%
LOG = []
def tracked(fn):
    def wrapper(*a, **k):
        LOG.append(fn.__name__)
        return fn(*a, **k)
    return wrapper
# %%
@tracked
def revenue(df):
    return float((df.price * df.qty).sum())
# %%
rev_clean = revenue(clean)
rev_zero = revenue(zeros)
n_calls = len(LOG)
