"""The carrier's rate plans per tenant: rows <-> `RatePlan`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from device_change.adapters.db import tables as t
from device_change.domain.device import RatePlan


class SqlAlchemyRatePlanRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def all(self, tenant: str) -> dict[str, RatePlan]:
        q = select(t.rate_plans).where(t.rate_plans.c.tenant == tenant)
        return {
            r["code"]: RatePlan(r["code"], r["name"], r["size_kb"])
            for r in self.conn.execute(q).mappings()
        }

    def replace(self, tenant: str, plans: Sequence[RatePlan]) -> None:
        """The tenant's list becomes exactly these plans."""
        self.conn.execute(t.rate_plans.delete().where(t.rate_plans.c.tenant == tenant))
        if plans:
            self.conn.execute(
                insert(t.rate_plans),
                [
                    {"tenant": tenant, "code": p.code, "name": p.name, "size_kb": p.size_kb}
                    for p in plans
                ],
            )
