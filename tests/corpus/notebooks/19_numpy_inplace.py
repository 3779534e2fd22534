# numpy work with views, in-place updates and ufunc methods.
# %%
import numpy as np
# %%
grid = np.zeros((5, 5))
row = grid[2]
row[:] = 7
# %%
base = np.arange(10)
first = base[:5]
evens = base[::2].copy()
base[1] = 100
# %%
counts = np.zeros(6, dtype=int)
idx = np.array([0, 1, 1, 3, 5, 5, 5])
np.add.at(counts, idx, 1)
# %%
a = np.linspace(0, 1, 6)
np.multiply(a, 2, out=a)
a += 1
# %%
m = np.arange(9.0).reshape(3, 3)
m_t = m.T
m_t[0, 1] = -1
inv = np.linalg.inv(m + np.eye(3) * 10)
# %%
mask = base > 4
selected = base[mask]
base[mask] = 0
# %%
stacked = np.vstack([first, first * 2])
norm = float(np.linalg.norm(stacked))
# %%
rng = np.random.default_rng(3)
draws = rng.integers(0, 10, size=5)
more = rng.normal(size=3)
