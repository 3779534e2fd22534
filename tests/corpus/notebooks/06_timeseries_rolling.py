# Daily sensor readings: resampling, rolling windows, anomaly flags.
# %%
import numpy as np
import pandas as pd
# %%
rng = np.random.default_rng(2024)
idx = pd.date_range("2024-01-01", periods=240, freq="D")
temp = 10 + 8 * np.sin(np.arange(240) / 240 * 2 * np.pi) + rng.normal(0, 1.5, 240)
ts = pd.Series(temp, index=idx, name="temp")
ts.head()
# %%
ts.plot  # accessor, not called
ts.describe()
# %%
roll7 = ts.rolling(7).mean()
roll30 = ts.rolling(30, min_periods=10).mean()
# %%
weekly = ts.resample("W").agg(["mean", "min", "max"])
weekly.tail()
# %%
ewm = ts.ewm(span=14, adjust=False).mean()
# %%
resid = ts - roll7
z = (resid - resid.mean()) / resid.std()
anomalies = ts[z.abs() > 2]
anomalies
# %%
df = pd.DataFrame({"temp": ts, "roll7": roll7, "ewm": ewm})
df["diff1"] = df["temp"].diff()
df["lag7"] = df["temp"].shift(7)
df["month"] = df.index.month
df = df.dropna()
# %%
monthly_stats = df.groupby("month")["temp"].agg(["mean", "std"]).round(3)
monthly_stats
# %%
corr_lag7 = df["temp"].corr(df["lag7"])
warmest_week = weekly["mean"].idxmax()
