# Text processing on product reviews: cleaning, tokens, counts, n-grams.
# inputs: reviews.json, stopwords.txt
# %%
import json
import re
import string
from collections import Counter
# %%
with open("reviews.json") as f:
    reviews = json.load(f)
len(reviews)
# %%
with open("stopwords.txt") as f:
    stop = set(w.strip() for w in f if w.strip())
# %%
def clean(text):
    text = text.lower()
    text = re.sub(r"[%s]" % re.escape(string.punctuation), " ", text)
    return re.sub(r"\s+", " ", text).strip()
# %%
docs = [clean(r["text"]) for r in reviews]
docs[:3]
# %%
tokens = [[w for w in d.split() if w not in stop] for d in docs]
vocab = Counter(w for t in tokens for w in t)
vocab.most_common(10)
# %%
labels = [r["label"] for r in reviews]
by_label = {lab: Counter() for lab in set(labels)}
for toks, lab in zip(tokens, labels):
    by_label[lab].update(toks)
# %%
pos_words = [w for w, _ in by_label["pos"].most_common(5)]
neg_words = [w for w, _ in by_label["neg"].most_common(5)]
# %%
def bigrams(toks):
    return list(zip(toks, toks[1:]))
bigram_counts = Counter(b for t in tokens for b in bigrams(t))
top_bigrams = bigram_counts.most_common(3)
# %%
lengths = sorted(len(t) for t in tokens)
avg_len = sum(lengths) / len(lengths)
longest = max(reviews, key=lambda r: len(r["text"]))["id"]
# %%
title = "Review Stats".replace(" ", "_")
noise = "unrelated".replace("u", "U")
report = f"{title}: {len(vocab)} words, avg {avg_len:.1f} tokens"
report
