# Plain-Python bookkeeping: sorted copies, list/dict copies, loops that rebind the same name.
# %%
import copy
# %%
scores = [71, 88, 64, 93, 80]
ranked = sorted(scores, reverse=True)
scores.append(55)
# %%
names = ["ana", "bo", "cy"]
shout = [n.upper() for n in names]
backup = names.copy()
names.remove("bo")
# %%
book = {"a": [1, 2], "b": [3]}
shallow = dict(book)
deep = copy.deepcopy(book)
book["a"].append(99)
# %%
for i in range(3):
    pass
for i in range(5):
    last = i * 2
# %%
greeting = "hello world".replace("world", "there")
unrelated = "qq".replace("a", "r")
parts = greeting.split()
# %%
total = 0
for s in scores:
    total += s
mean_score = total / len(scores)
# %%
ratio = (2.5).as_integer_ratio()
top2 = ranked[:2]
