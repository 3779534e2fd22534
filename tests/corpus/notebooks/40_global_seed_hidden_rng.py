# A global seed set once; many calls that quietly draw from it (sample, shuffle, KFold, forests).
# %%
import random
import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.model_selection import KFold, cross_val_score
from sklearn.ensemble import RandomForestClassifier
from sklearn.utils import shuffle
# %%
np.random.seed(42)
random.seed(42)
# %%
X, y = make_classification(n_samples=150, n_features=5)
df = pd.DataFrame(X, columns=list("abcde"))
df["y"] = y
# %%
holdout = df.sample(frac=0.2)
train = df.drop(holdout.index)
# %%
cv = KFold(n_splits=4, shuffle=True)
# %%
deck = list(range(10))
random.shuffle(deck)
pick = random.choice(deck)
# %%
scores = cross_val_score(RandomForestClassifier(n_estimators=5), train[list("abcde")], train.y, cv=cv)
mean_score = float(scores.mean())
# %%
Xs, ys = shuffle(X, y)
head_y = ys[:10].tolist()
# %%
def jitter(v, scale=0.1):
    return v + np.random.normal(0, scale, size=len(v))
noisy = jitter(df.a.values)
# %%
folds = [test.tolist()[:3] for _, test in cv.split(train)]
lucky = random.sample(deck, 3)
