"""The local `Settlements` adapter: a loss charge recorded here until billing-adapter exists.

Idempotent by settlement id (the outbox event id), so a redelivered request records once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from iot_sync.adapters.db import tables as t
from iot_sync.adapters.db._shared import aware, aware_now, insert_for
from iot_sync.app.ports import SettlementRequest


class SqlSettlements:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def start_loss_charge(self, request: SettlementRequest) -> None:
        with self._engine.begin() as conn:
            stmt = insert_for(conn, t.settlements).on_conflict_do_nothing(
                index_elements=[t.settlements.c.settlement_id]
            )
            conn.execute(
                stmt.values(
                    settlement_id=request.settlement_id,
                    service_id=request.service_id,
                    customer_id=request.customer_id,
                    battery_id=request.battery_id,
                    battery_class=request.battery_class,
                    evidence=request.evidence,
                    detail=request.detail,
                    status="STARTED",
                    requested_at=request.requested_at,
                    recorded_at=aware_now(),
                )
            )

    def recorded(self, *, customer_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        q = select(t.settlements).order_by(t.settlements.c.recorded_at.desc()).limit(limit)
        if customer_id is not None:
            q = q.where(t.settlements.c.customer_id == customer_id)
        with self._engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(q).mappings()]
        for row in rows:
            row["requested_at"] = aware(row["requested_at"])
            row["recorded_at"] = aware(row["recorded_at"])
        return rows
