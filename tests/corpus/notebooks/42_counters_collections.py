# Word and event bookkeeping with Counter, defaultdict, deque, heapq, bisect and in-place set ops.
# %%
import bisect
import heapq
from collections import Counter, defaultdict, deque, OrderedDict
# %%
events = ["login", "view", "view", "buy", "view", "logout", "login", "buy"]
counts = Counter(events)
# %%
counts.update(["view", "refund"])
counts["login"] -= 1
top = counts.most_common(2)
# %%
by_first = defaultdict(list)
for e in events:
    by_first[e[0]].append(e)
lens = {k: len(v) for k, v in by_first.items()}
# %%
window = deque(maxlen=3)
for e in events:
    window.append(e)
window.rotate(1)
recent = list(window)
# %%
heap = []
for i, e in enumerate(events):
    heapq.heappush(heap, (len(e), i, e))
smallest = heapq.heappop(heap)
# %%
ranks = []
for v in [5, 1, 4, 2, 3]:
    bisect.insort(ranks, v)
active = {"login", "view"}
active |= {"buy"}
active.discard("view")
# %%
cache = OrderedDict()
for e in events:
    cache[e] = cache.get(e, 0) + 1
    cache.move_to_end(e)
order = list(cache)
# %%
inverse = defaultdict(set)
for k, v in counts.items():
    inverse[v].add(k)
single = sorted(inverse[1])
n_heap = len(heap)
