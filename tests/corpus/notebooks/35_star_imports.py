# Quick maths with star imports, the way scratch notebooks often start.
# %%
from numpy import *
from math import factorial, comb
# %%
xs = linspace(0, 1, 11)
ys = sin(xs) ** 2 + cos(xs) ** 2
unit = allclose(ys, 1.0)
# %%
grid = zeros((3, 3))
grid[1, :] = arange(3)
trace_g = float(trace(grid))
# %%
noise_free = round(mean(xs), 6)
# %%
random.seed(4)
draws = random.randint(0, 100, size=5)
# %%
fact = [factorial(k) for k in range(6)]
pairs = comb(6, 2)
# %%
ratio = (0.75).as_integer_ratio()
frac = sum(fact) / pairs
