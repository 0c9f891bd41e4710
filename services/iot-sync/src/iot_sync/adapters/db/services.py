"""Customers' services and their history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.engine import Connection, RowMapping

from fleetops_common.db import is_postgres
from iot_sync.adapters.db import tables as t
from iot_sync.adapters.db._shared import aware, aware_now, chunks, write_pending
from iot_sync.app.ports import ServiceHistoryEntry
from iot_sync.domain.customer import SwapUsage
from iot_sync.domain.service import Service, ServiceState


class SqlAlchemyServiceRepository:
    """Remembers, for the unit of work, which service `for_customers` found per customer;
    `save` keeps that in step, and `add` (or a save that cancels) makes it read again.

    Saves are written behind, as the asset repository's are: `write_pending` writes them in
    one statement, before the unit of work commits and before any other statement here."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._by_customer: dict[str, Service | None] = {}
        self._pending: dict[str, Service] = {}  # saved, not written yet

    def write_pending(self) -> None:
        """Write the saves kept back so far: one UPDATE, executed for each service."""
        write_pending(self.conn, t.services, "service_id", self._pending, _row)

    def get(self, service_id: str) -> Service | None:
        self.write_pending()
        q = select(t.services).where(t.services.c.service_id == service_id)
        if is_postgres(self.conn):
            q = q.with_for_update()
        row = self.conn.execute(q).mappings().first()
        return _service(row) if row else None

    def for_customers(self, customer_ids: Sequence[str]) -> dict[str, Service]:
        known = self._by_customer
        missing = [c for c in dict.fromkeys(customer_ids) if c not in known]
        if missing:
            found = self._read_for_customers(missing)
            for customer_id in missing:
                known[customer_id] = found.get(customer_id)
        return {c: s for c in customer_ids if (s := known[c]) is not None}

    def _read_for_customers(self, customer_ids: Sequence[str]) -> dict[str, Service]:
        self.write_pending()
        out: dict[str, Service] = {}
        live_first = case((t.services.c.state == ServiceState.CANCELLED.value, 1), else_=0)
        for part in chunks(list(customer_ids)):
            q = (
                select(t.services)
                .where(t.services.c.customer_id.in_(part))
                .order_by(live_first.desc(), t.services.c.created_at, t.services.c.service_id)
            )
            if is_postgres(self.conn):
                q = q.with_for_update()
            # Later rows win: a customer's newest live service, else their newest one.
            for row in self.conn.execute(q).mappings():
                out[row["customer_id"]] = _service(row)
        return out

    def find(self, *, customer_id: str | None, limit: int) -> list[Service]:
        self.write_pending()
        q = select(t.services).order_by(t.services.c.service_id).limit(limit)
        if customer_id is not None:
            q = q.where(t.services.c.customer_id == customer_id)
        return [_service(r) for r in self.conn.execute(q).mappings()]

    def add(self, service: Service) -> None:
        self.write_pending()
        self._by_customer.pop(service.customer_id, None)
        self.conn.execute(
            t.services.insert().values(
                created_at=service.updated_at or aware_now(), **_row(service)
            )
        )

    def save(self, service: Service) -> None:
        self._pending[service.service_id] = service
        known = self._by_customer.get(service.customer_id)
        if known is not None and known.service_id == service.service_id:
            if service.state is ServiceState.CANCELLED:
                # another live service of the customer may now be the one to find
                del self._by_customer[service.customer_id]
            else:
                self._by_customer[service.customer_id] = service
        else:
            self._by_customer.pop(service.customer_id, None)

    def add_history(self, entries: Sequence[ServiceHistoryEntry]) -> None:
        if entries:
            self.conn.execute(
                t.service_history.insert(),
                [
                    {
                        "service_id": e.service_id,
                        "at": e.at,
                        "input": e.input,
                        "from_state": e.from_state,
                        "to_state": e.to_state,
                        "battery_id": e.battery_id,
                        "cause": e.cause[:200],
                        "actor": e.actor,
                    }
                    for e in entries
                ],
            )

    def history(self, service_id: str, *, limit: int) -> list[ServiceHistoryEntry]:
        q = (
            select(t.service_history)
            .where(t.service_history.c.service_id == service_id)
            .order_by(t.service_history.c.id)
            .limit(limit)
        )
        return [
            ServiceHistoryEntry(
                service_id=r["service_id"],
                at=aware(r["at"]) or r["at"],
                input=r["input"],
                from_state=r["from_state"],
                to_state=r["to_state"],
                battery_id=r["battery_id"],
                cause=r["cause"],
                actor=r["actor"],
            )
            for r in self.conn.execute(q).mappings()
        ]


def _row(s: Service) -> dict[str, Any]:
    return {
        "service_id": s.service_id,
        "customer_id": s.customer_id,
        "state": s.state.value,
        "battery_id": s.battery_id,
        "swaps_used": s.usage.swaps,
        "period_started_at": s.usage.period_started_at,
        "updated_at": s.updated_at,
    }


def _service(row: RowMapping) -> Service:
    return Service(
        service_id=row["service_id"],
        customer_id=row["customer_id"],
        state=ServiceState(row["state"]),
        battery_id=row["battery_id"],
        usage=SwapUsage(row["swaps_used"], aware(row["period_started_at"])),
        updated_at=aware(row["updated_at"]),
    )
