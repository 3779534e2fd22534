# Saving an intermediate model with lineapy and getting it back under %time, then building on it.
# %%
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.datasets import make_classification
# %%
X, y = make_classification(n_samples=100, n_features=4, random_state=2)
clf = LogisticRegression(C=0.3).fit(X, y)
# %%
%lineapy save clf corpus37_clf
# %%
clf = None
# %%
%time %lineapy get corpus37_clf --as clf_back
# %%
coef = clf_back.coef_.round(4)
# %%
%%time
scores = clf_back.predict_proba(X)[:, 1]
top = np.argsort(scores)[-5:].tolist()
# %%
acc_back = clf_back.score(X, y)
# %%
%%time
%lineapy get corpus37_clf --as clf_again
# %%
coef_sum = float(clf_again.coef_.sum())
