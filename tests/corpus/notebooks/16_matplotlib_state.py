# Plots interleaved with data work; some values come from the current axes.
# %%
import numpy as np
import matplotlib
import matplotlib.pyplot as plt
# %%
x = np.linspace(0, 10, 50)
y = np.sin(x) * 3
# %%
plt.figure(figsize=(4, 3))
plt.plot(x, y)
plt.title("sine")
lim = plt.axis()
# %%
fig, ax = plt.subplots()
ax.scatter(x, y * 2)
ax.set_xlim(0, 12)
xlim = ax.get_xlim()
# %%
smooth = np.convolve(y, np.ones(5) / 5, mode="valid")
plt.plot(smooth)
plt.show()
# %%
fig2, axes = plt.subplots(1, 2)
axes[0].hist(y, bins=5)
axes[1].plot(x, smooth.mean() + 0 * x)
n_axes = len(fig2.axes)
# %%
peak = float(smooth.max())
