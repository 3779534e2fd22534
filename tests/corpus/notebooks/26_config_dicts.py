# Experiment configuration kept in nested dicts, loaded from json and tweaked.
# inputs: config.json
# %%
import json
import copy
import numpy as np
from sklearn.linear_model import Ridge, Lasso
# %%
with open("config.json") as f:
    cfg = json.load(f)
cfg
# %%
base_cfg = copy.deepcopy(cfg)
cfg["model"]["alpha"] = 1.5
cfg["model"]["features"].append("x4")
# %%
feats = cfg["model"]["features"]
feats.remove("x2")
# %%
dcfg = cfg["data"]
rng = np.random.default_rng(dcfg["seed"])
X = rng.normal(size=(dcfg["n_rows"], len(feats)))
coef_true = np.arange(1, len(feats) + 1)
y = X @ coef_true + rng.normal(0, dcfg["noise"], size=dcfg["n_rows"])
# %%
kinds = {"ridge": Ridge, "lasso": Lasso}
model = kinds[cfg["model"]["kind"]](alpha=cfg["model"]["alpha"]).fit(X, y)
coef = model.coef_.round(cfg["report"]["digits"])
# %%
shallow = dict(cfg)
shallow["report"]["digits"] = 1
digits = cfg["report"]["digits"]
# %%
changed = {k: (base_cfg[k], cfg[k]) for k in cfg if base_cfg[k] != cfg[k]}
