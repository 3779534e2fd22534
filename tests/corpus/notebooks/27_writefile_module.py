# A helper module written from the notebook, imported, then edited and reloaded.
# %%
%%writefile textutils.py
def normalize(s):
    return " ".join(s.lower().split())

PREFIX = "v1"
# %%
import textutils
# %%
items = ["  Hello   World", "FOO bar", "baz  "]
normed = [textutils.normalize(s) for s in items]
tagged = [f"{textutils.PREFIX}:{s}" for s in normed]
# %%
with open("mathutils.py", "w") as f:
    f.write("def scale(v, k=3):\n    return [x * k for x in v]\n")
# %%
import mathutils
scaled = mathutils.scale([1, 2, 3])
# %%
from mathutils import scale
scaled5 = scale([1, 2], k=5)
# %%
from textutils import normalize as norm
one = norm("  A  B ")
