# Objects that fight introspection: a lazy proxy whose factory fails, raising properties, a class named ndarray.
# %%
import numpy as np
import pandas as pd
# %%
class LazyConfig:
    """Loads on first attribute access; the loader is broken in this environment."""
    def __init__(self, path):
        self._path = path
    def __getattr__(self, name):
        raise RuntimeError(f"cannot load {self._path} to read {name!r}")
# %%
cfg = LazyConfig("/nonexistent/settings.toml")
values = [1, 2, 3]
# %%
import lazy_object_proxy
def load_settings():
    raise FileNotFoundError("settings.toml")
settings = lazy_object_proxy.Proxy(load_settings)
# %%
class ndarray:
    @property
    def base(self):
        raise ValueError("no base here")
    @property
    def shape(self):
        raise KeyError("shape")
fake = ndarray()
# %%
class Meter:
    reads = 0
    @property
    def value(self):
        Meter.reads += 1
        return 42
meter = Meter()
# %%
values.append(4)
arr = np.array(values) * 2
# %%
df = pd.DataFrame({"v": values})
df["w"] = df.v.cumsum()
# %%
reads_seen = Meter.reads
total = int(arr.sum() + df.w.iloc[-1])
