# Standard-library helpers that mutate what they are given: heapify, map(list.append), reduce, decorators.
# %%
import heapq
from functools import reduce
# %%
jobs = [5, 1, 4, 2, 3]
heapq.heapify(jobs)
# %%
out = []
_ = list(map(out.append, range(3)))
# %%
acc = reduce(lambda a, x: a.append(x * 2) or a, [1, 2, 3], [])
# %%
REGISTRY = {}
def register(fn):
    REGISTRY[fn.__name__] = fn
    return fn
@register
def clean(x):
    return x.strip()
@register
def shout(x):
    return x.upper()
# %%
handlers = sorted(REGISTRY)
# %%
x = y = []
x.append(1)
a = [1]
b = a
b += [2]
# %%
groups = {}
for k, v in [("a", 1), ("b", 2), ("a", 3)]:
    groups.setdefault(k, []).append(v)
# %%
seen = set()
uniq = [v for v in [3, 1, 3, 2, 1] if not (v in seen or seen.add(v))]
first_job = heapq.heappop(jobs)
