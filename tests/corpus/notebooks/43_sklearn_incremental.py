# Pipelines tweaked with set_params, steps mutated through named_steps, warm starts and partial_fit.
# %%
import numpy as np
from sklearn.datasets import make_classification
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.linear_model import SGDClassifier, LogisticRegression
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.base import clone
# %%
X, y = make_classification(n_samples=200, n_features=6, random_state=1)
pipe = Pipeline([("sc", StandardScaler()), ("clf", LogisticRegression(max_iter=200))])
# %%
pipe.set_params(clf__C=0.5)
clf = pipe.named_steps["clf"]
clf.C *= 2
pipe.fit(X, y)
coef = pipe.named_steps["clf"].coef_.round(4)
# %%
base = clone(pipe)
pipe.set_params(sc="passthrough")
pipe.fit(X, y)
acc_raw = pipe.score(X, y)
# %%
gb = GradientBoostingClassifier(n_estimators=5, warm_start=True, random_state=0)
gb.fit(X, y)
gb.n_estimators += 5
gb.fit(X, y)
n_gb = len(gb.estimators_)
# %%
sgd = SGDClassifier(random_state=0)
scaler = StandardScaler()
for chunk in np.array_split(np.arange(200), 4):
    scaler.partial_fit(X[chunk])
    sgd.partial_fit(scaler.transform(X[chunk]), y[chunk], classes=[0, 1])
sgd_coef = sgd.coef_.round(4)
# %%
mean_ = scaler.mean_.round(4)
base_C = base.get_params()["clf__C"]
# %%
steps = pipe.steps
steps.append(("extra", "passthrough"))
n_steps = len(pipe.steps)
