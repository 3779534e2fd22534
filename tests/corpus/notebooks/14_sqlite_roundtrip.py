# A little SQLite warehouse: pandas to_sql/read_sql and the sqlite3 module.
# inputs: sales.csv, customers.csv
# %%
import sqlite3
import pandas as pd
# %%
conn = sqlite3.connect("shop.db")
sales = pd.read_csv("sales.csv")
customers = pd.read_csv("customers.csv")
# %%
sales.to_sql("sales", conn, index=False, if_exists="replace")
customers.to_sql("customers", conn, index=False, if_exists="replace")
# %%
cur = conn.cursor()
cur.execute("create table if not exists notes (customer_id text, note text)")
cur.executemany("insert into notes values (?, ?)", [("C001", "vip lead"), ("C004", "late payer")])
conn.commit()
# %%
top = pd.read_sql("""
    select c.customer_id, c.segment, sum(s.units * s.unit_price) as revenue
    from sales s join customers c using (customer_id)
    group by c.customer_id order by revenue desc limit 5
""", conn)
top
# %%
n_notes = conn.execute("select count(*) from notes").fetchone()[0]
# %%
conn.execute("update customers set segment = 'vip' where customer_id = 'C004'")
conn.commit()
# %%
segments = pd.read_sql("select segment, count(*) as n from customers group by segment order by segment", conn)
# %%
conn2 = sqlite3.connect("shop.db")
note_rows = conn2.execute("select * from notes order by customer_id").fetchall()
conn2.close()
# %%
regions = pd.read_sql_query("select distinct region from sales order by region", conn)["region"].tolist()
