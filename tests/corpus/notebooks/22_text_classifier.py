# Sentiment classifier: TF-IDF features, naive Bayes and a linear SVM.
# inputs: reviews.json
# %%
import json
import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer, CountVectorizer
from sklearn.naive_bayes import MultinomialNB
from sklearn.svm import LinearSVC
from sklearn.model_selection import train_test_split
# %%
reviews = pd.read_json("reviews.json")
reviews["y"] = (reviews.label == "pos").astype(int)
reviews.head()
# %%
train, test = train_test_split(reviews, test_size=0.3, random_state=4, stratify=reviews.y)
# %%
vec = TfidfVectorizer(ngram_range=(1, 2), min_df=1)
Xtr = vec.fit_transform(train.text)
Xte = vec.transform(test.text)
Xtr.shape
# %%
nb = MultinomialNB().fit(Xtr, train.y)
nb_acc = nb.score(Xte, test.y)
# %%
svm = LinearSVC(C=0.5, random_state=0).fit(Xtr, train.y)
svm_acc = svm.score(Xte, test.y)
# %%
terms = np.array(vec.get_feature_names_out())
top_pos = terms[np.argsort(svm.coef_[0])[-5:]].tolist()
# %%
cv = CountVectorizer(stop_words="english")
counts = cv.fit_transform(reviews.text)
doc_lengths = np.asarray(counts.sum(axis=1)).ravel()
# %%
new_texts = ["great value, love it", "broke after a week, terrible"]
new_pred = nb.predict(vec.transform(new_texts)).tolist()
