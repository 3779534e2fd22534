# A discrete-event-ish inventory simulation with classes and the random module.
# %%
import random
from dataclasses import dataclass, field
# %%
@dataclass
class Warehouse:
    stock: int = 50
    reorder_point: int = 20
    order_qty: int = 40
    lost_sales: int = 0
    history: list = field(default_factory=list)

    def day(self, demand):
        sold = min(self.stock, demand)
        self.lost_sales += demand - sold
        self.stock -= sold
        if self.stock < self.reorder_point:
            self.stock += self.order_qty
        self.history.append(self.stock)
        return sold
# %%
random.seed(2023)
# %%
wh = Warehouse()
sales = [wh.day(random.randint(0, 15)) for _ in range(60)]
# %%
total_sold = sum(sales)
service_level = round(total_sold / (total_sold + wh.lost_sales), 4)
# %%
def run(policy, days=60, seed=None):
    r = random.Random(seed)
    w = Warehouse(reorder_point=policy)
    for _ in range(days):
        w.day(r.randint(0, 15))
    return w.lost_sales
# %%
policy_results = {p: run(p, seed=1) for p in (10, 20, 30)}
best_policy = min(policy_results, key=policy_results.get)
# %%
wh2 = Warehouse(stock=10)
wh2.day(5)
wh2.day(12)
wh2_state = (wh2.stock, wh2.lost_sales, list(wh2.history))
# %%
unseeded = run(20)
