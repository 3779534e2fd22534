# Closures, lambdas, partials and bound methods, with globals rebound in between.
# %%
from functools import partial
# %%
def make_scaler(factor):
    def scale(x):
        return x * factor
    return scale
# %%
double = make_scaler(2)
triple = make_scaler(3)
d10 = double(10)
# %%
def make_reader():
    def inner():
        return threshold
    return inner
# %%
threshold = 10
read = make_reader()
threshold = 12
t_now = read()
# %%
offset = 1
shift = lambda v: v + offset
offset = 5
shifted = [shift(v) for v in range(3)]
# %%
def power(base, exp):
    return base ** exp
square = partial(power, exp=2)
squares = list(map(square, range(5)))
# %%
def make_counter():
    count = 0
    def inc():
        nonlocal count
        count += 1
        return count
    return inc
counter = make_counter()
counter()
counter()
ticks = counter()
# %%
def append_to(x, acc=[]):
    acc.append(x)
    return acc
append_to(1)
acc_state = list(append_to(2))
# %%
class Acc:
    def __init__(self):
        self.total = 0
    def add(self, v):
        self.total += v
        return self.total
acc = Acc()
add = acc.add
add(3)
add(4)
acc_total = acc.total
# %%
rate = 0.1
def with_tax(p):
    return round(p * (1 + rate), 2)
prices = {"a": 10, "b": 20}
taxed = {k: with_tax(v) for k, v in prices.items()}
rate = 0.2
taxed_later = with_tax(100)
