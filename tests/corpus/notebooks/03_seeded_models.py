# scikit-learn the way many notebooks do it: a global seed, then one-liners without random_state.
# %%
import numpy as np
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
# %%
X, y = load_iris(return_X_y=True)
X.shape
# %%
np.random.seed(0)
# %%
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3)
# %%
clf = RandomForestClassifier(n_estimators=8).fit(X_train, y_train)
# %%
pred = clf.predict(X_test)
acc = accuracy_score(y_test, pred)
acc
# %%
logreg = LogisticRegression(max_iter=500).fit(X_train, y_train)
acc_lr = logreg.score(X_test, y_test)
# %%
noise = np.random.normal(size=X.shape)
X_noisy = X + 0.1 * noise
clf_noisy = RandomForestClassifier(n_estimators=8).fit(X_noisy, y)
importances = clf_noisy.feature_importances_
# %%
Xc, yc = make_classification(n_samples=120, n_features=6, random_state=3)
perm = np.random.permutation(len(yc))
Xc, yc = Xc[perm], yc[perm]
clf_c = RandomForestClassifier(n_estimators=5, max_depth=3)
clf_c.fit(Xc, yc)
# %%
scores = {"rf": acc, "lr": acc_lr}
best = max(scores, key=scores.get)
best
