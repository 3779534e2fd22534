# Monte Carlo simulations with the standard random module.
# %%
import random
import statistics
# %%
random.seed(42)
# %%
rolls = [random.randint(1, 6) + random.randint(1, 6) for _ in range(2000)]
p_seven = rolls.count(7) / len(rolls)
p_seven
# %%
def birthday_trial(n):
    days = [random.randrange(365) for _ in range(n)]
    return len(set(days)) < n
# %%
p_birthday = sum(birthday_trial(23) for _ in range(500)) / 500
# %%
deck = [(r, s) for r in range(1, 14) for s in "SHDC"]
random.shuffle(deck)
hand = deck[:5]
# %%
walk = [0]
for _ in range(300):
    walk.append(walk[-1] + random.choice([-1, 1]))
final_pos = walk[-1]
max_dev = max(abs(w) for w in walk)
# %%
weights = [0.5, 0.3, 0.2]
picks = random.choices(["a", "b", "c"], weights=weights, k=100)
pick_counts = {k: picks.count(k) for k in "abc"}
# %%
sample = random.sample(range(1000), 20)
mean_sample = statistics.mean(sample)
# %%
local_rng = random.Random(7)
local_draws = [local_rng.random() for _ in range(5)]
