# A run log appended to across cells (one cell re-run), csv appends, pickle checkpoints, sqlite appends.
# order: 1,2,3,4,3,5,6,7,8,9,10
# %%
import json
import pickle
import sqlite3
import pandas as pd
# %%
with open("log.txt", "w") as f:
    f.write("start\n")
frame = pd.DataFrame({"step": [0], "loss": [1.0]})
frame.to_csv("hist.csv", index=False)
# %%
step = int(pd.read_csv("hist.csv").step.max()) + 1
with open("log.txt", "a") as f:
    f.write(f"step {step}\n")
pd.DataFrame({"step": [step], "loss": [1.0 / (step + 1)]}).to_csv("hist.csv", mode="a", header=False, index=False)
# %%
hist = pd.read_csv("hist.csv")
# %%
state = {"best": float(hist.loss.min()), "steps": hist.step.tolist()}
with open("ckpt.pkl", "wb") as f:
    pickle.dump(state, f)
# %%
with open("ckpt.pkl", "rb") as f:
    restored = pickle.load(f)
restored["note"] = "ok"
# %%
with open("log.txt") as f:
    log_lines = f.read().splitlines()
# %%
conn = sqlite3.connect("runs.db")
hist.to_sql("hist", conn, if_exists="replace", index=False)
pd.DataFrame({"step": [99], "loss": [0.0]}).to_sql("hist", conn, if_exists="append", index=False)
# %%
n_db = conn.execute("select count(*) from hist").fetchone()[0]
with open("meta.json", "w") as f:
    json.dump({"n": n_db}, f)
with open("meta.json") as f:
    meta = json.load(f)
# %%
conn.execute("delete from hist where step = 0")
conn.commit()
db_steps = [r[0] for r in conn.execute("select step from hist order by step")]
