"""iot-sync's own seeded customers, behind the `CustomerDirectory` port.

billing-adapter owns customers' standing and plans; until it exists, this table stands in
for it. Swapping in a billing-adapter client changes bootstrap, nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine, RowMapping

from fleetops_common.db import lookups
from iot_sync.adapters.db import tables as t
from iot_sync.adapters.db._shared import chunks
from iot_sync.domain.customer import Customer, Plan, Standing


class SqlCustomerDirectory:
    """Reads on its own short connection, outside any transaction (`lookups`): a directory
    lookup neither holds nor waits for the write lock of the batch it serves, and costs a
    batch one round trip."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get_many(self, customer_ids: Sequence[str]) -> dict[str, Customer]:
        out: dict[str, Customer] = {}
        with lookups(self._engine.connect()) as conn:
            for part in chunks(sorted(set(customer_ids))):
                q = select(t.customers).where(t.customers.c.customer_id.in_(part))
                out.update(
                    {r["customer_id"]: customer_from_row(r) for r in conn.execute(q).mappings()}
                )
        return out

    def all(self) -> list[Customer]:
        with lookups(self._engine.connect()) as conn:
            q = select(t.customers).order_by(t.customers.c.customer_id)
            return [customer_from_row(r) for r in conn.execute(q).mappings()]


def customer_from_row(r: RowMapping) -> Customer:
    return Customer(
        customer_id=r["customer_id"],
        name=r["name"],
        standing=Standing(r["standing"]),
        plan=Plan(
            plan_id=r["plan_id"],
            battery_class=r["battery_class"],
            swap_quota=r["swap_quota"],
            period_days=r["period_days"],
        ),
    )


def customer_to_row(c: Customer) -> dict[str, Any]:
    return {
        "customer_id": c.customer_id,
        "name": c.name,
        "standing": c.standing.value,
        "plan_id": c.plan.plan_id,
        "battery_class": c.plan.battery_class,
        "swap_quota": c.plan.swap_quota,
        "period_days": c.plan.period_days,
    }
