# Pipeline + grid search, the usual tutorial shape.
# %%
import numpy as np
from sklearn.datasets import load_wine
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.model_selection import GridSearchCV, train_test_split, StratifiedKFold
from sklearn.metrics import classification_report, confusion_matrix
# %%
data = load_wine()
X, y = data.data, data.target
feature_names = list(data.feature_names)
# %%
X_tr, X_te, y_tr, y_te = train_test_split(X, y, stratify=y, test_size=0.25, random_state=7)
# %%
pipe = Pipeline([("scale", StandardScaler()), ("svc", SVC())])
pipe
# %%
param_grid = {"svc__C": [0.1, 1, 10], "svc__gamma": ["scale", 0.01]}
cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
search = GridSearchCV(pipe, param_grid, cv=cv, n_jobs=1)
search.fit(X_tr, y_tr)
# %%
best_params = search.best_params_
best_params
# %%
cv_table = {str(p): round(s, 4) for p, s in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"])}
# %%
test_acc = search.score(X_te, y_te)
cm = confusion_matrix(y_te, search.predict(X_te))
print(classification_report(y_te, search.predict(X_te)))
# %%
simple = make_pipeline(StandardScaler(), SVC(C=1.0))
simple.fit(X_tr, y_tr)
simple_acc = simple.score(X_te, y_te)
