# Generate text with a word-level Markov chain seeded with random.seed.
# inputs: reviews.json
# %%
import json
import random
from collections import defaultdict
# %%
corpus_text = " ".join(r["text"] for r in json.load(open("reviews.json")))
words = corpus_text.replace(",", "").replace("!", "").lower().split()
len(words)
# %%
chain = defaultdict(list)
for w1, w2 in zip(words, words[1:]):
    chain[w1].append(w2)
# %%
def generate(start, n, rnd=random):
    out = [start]
    for _ in range(n):
        nxt = chain.get(out[-1])
        if not nxt:
            break
        out.append(rnd.choice(nxt))
    return " ".join(out)
# %%
random.seed(3)
sentence1 = generate("the", 8)
# %%
sentence2 = generate("very", 6)
# %%
starts = sorted(chain)[:5]
fanout = {w: len(set(chain[w])) for w in starts}
# %%
r = random.Random(11)
sentence3 = generate("great", 5, rnd=r)
