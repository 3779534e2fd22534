# Reports through a SQLAlchemy engine on a SQLite file, read back by pandas.
# inputs: sales.csv
# %%
import pandas as pd
from sqlalchemy import create_engine, text
# %%
engine = create_engine("sqlite:///reports.db")
sales = pd.read_csv("sales.csv")
# %%
sales.to_sql("sales", engine, index=False, if_exists="replace")
# %%
with engine.begin() as con:
    con.execute(text("create table targets (region text, target real)"))
    con.execute(text("insert into targets values ('north', 500), ('south', 400), ('east', 450), ('west', 300)"))
# %%
perf = pd.read_sql(text("""
    select s.region, sum(s.units * s.unit_price) as revenue, t.target
    from sales s join targets t on s.region = t.region group by s.region order by s.region
"""), engine)
perf["hit"] = perf.revenue >= perf.target
perf
# %%
with engine.begin() as con:
    con.execute(text("update targets set target = target * 2 where region = 'west'"))
# %%
targets = pd.read_sql_table("targets", engine)
# %%
n_sales = pd.read_sql("select count(*) as n from sales", engine)["n"].iloc[0]
