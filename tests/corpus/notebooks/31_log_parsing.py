# Parse an application log: regexes, datetimes, counters, per-service latency.
# inputs: app.log
# %%
import re
from collections import Counter, defaultdict
from datetime import datetime
import pandas as pd
# %%
LINE = re.compile(r"^(\S+ \S+) \[(\w+)\] (\w+): (.*)$")
# %%
records = []
with open("app.log") as f:
    for line in f:
        m = LINE.match(line.strip())
        if m:
            ts, level, svc, msg = m.groups()
            records.append({"ts": datetime.strptime(ts, "%Y-%m-%d %H:%M:%S"), "level": level, "svc": svc, "msg": msg})
len(records)
# %%
levels = Counter(r["level"] for r in records)
levels
# %%
latency = defaultdict(list)
for r in records:
    m = re.search(r"ms=(\d+)", r["msg"])
    if m:
        latency[r["svc"]].append(int(m.group(1)))
# %%
p90 = {svc: sorted(v)[int(0.9 * (len(v) - 1))] for svc, v in latency.items()}
# %%
logs = pd.DataFrame(records)
logs["minute"] = logs.ts.dt.floor("10min")
per_window = logs.groupby(["minute", "level"]).size().unstack(fill_value=0)
# %%
errors = logs[logs.level == "ERROR"]
error_kinds = errors.msg.str.replace("failed: ", "", regex=False).value_counts().to_dict()
# %%
span = (logs.ts.max() - logs.ts.min()).total_seconds()
rate_per_min = round(len(logs) / (span / 60), 3)
