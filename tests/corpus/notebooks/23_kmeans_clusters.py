# Customer segmentation: scaling, PCA and k-means, with a global seed.
# %%
import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler
from sklearn.decomposition import PCA
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
# %%
np.random.seed(10)
# %%
centers = np.array([[0, 0, 0], [5, 5, 0], [0, 5, 5]])
pts = np.vstack([c + np.random.randn(40, 3) for c in centers])
df = pd.DataFrame(pts, columns=["spend", "visits", "tenure"])
# %%
scaled = StandardScaler().fit_transform(df)
# %%
pca = PCA(n_components=2)
proj = pca.fit_transform(scaled)
explained = pca.explained_variance_ratio_.round(4)
# %%
inertias = {}
for k in range(2, 6):
    km = KMeans(n_clusters=k, n_init=3, random_state=0).fit(scaled)
    inertias[k] = round(km.inertia_, 3)
inertias
# %%
km3 = KMeans(n_clusters=3, n_init=3, random_state=0).fit(scaled)
df["cluster"] = km3.labels_
sil = round(silhouette_score(scaled, km3.labels_), 4)
# %%
profile = df.groupby("cluster").mean().round(2)
profile
# %%
jitter = np.random.rand(3)
