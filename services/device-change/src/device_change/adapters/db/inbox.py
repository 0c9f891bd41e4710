"""The carrier callback inbox: callbacks stored on arrival, settled later in batches.

Delivery is at least once: `claim` reads unsettled rows inside the unit of work that
settles them and `mark_processed` runs in that same transaction, so a crash before the
commit leaves the rows unsettled and the next claim takes them again. Settling twice is
harmless (a terminal line never moves again). On PostgreSQL `FOR UPDATE SKIP LOCKED` lets
several settlers work side by side on disjoint rows; SQLite serialises them.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from device_change.adapters.db import tables as t
from device_change.adapters.db._shared import chunks, insert_for, now
from device_change.app.ports import CarrierDeviceOutcome
from fleetops_common.db import is_postgres

_OUTCOME = {True: "SUCCESS", False: "FAILED", None: "PENDING"}


class SqlAlchemyCallbackInbox:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pg = is_postgres(conn)

    def store(self, outcomes: Sequence[CarrierDeviceOutcome]) -> int:
        """Insert, skipping callbacks already stored; returns how many were new (exact)."""
        return self.store_groups([outcomes])[0]

    def store_groups(self, groups: Sequence[Sequence[CarrierDeviceOutcome]]) -> list[int]:
        """`store` for many callbacks in one statement; how many of each group were new.

        A callback repeated within `groups` counts as new in its first group only."""
        at = now()
        rows = [
            {
                "request_id": o.request_id,
                "iccid": o.iccid,
                "outcome": _OUTCOME[o.succeeded],
                "body": {
                    "fault_code": o.fault_code,
                    "fault_text": o.fault_text,
                    "reported": dict(o.reported),
                },
                "received_at": at,
            }
            for outcomes in groups
            for o in outcomes
        ]
        if not rows:
            return [0] * len(groups)
        c = t.carrier_callbacks.c
        stmt = (
            insert_for(self.conn, t.carrier_callbacks)
            .on_conflict_do_nothing()
            .returning(c.request_id, c.iccid, c.outcome)
        )
        inserted = {tuple(r) for r in self.conn.execute(stmt, rows)}
        counts = []
        for outcomes in groups:
            new = 0
            for o in outcomes:
                key = (o.request_id, o.iccid, _OUTCOME[o.succeeded])
                if key in inserted:
                    inserted.discard(key)
                    new += 1
            counts.append(new)
        return counts

    def claim(self, limit: int) -> list[tuple[int, CarrierDeviceOutcome]]:
        q = (
            select(t.carrier_callbacks)
            .where(t.carrier_callbacks.c.processed_at.is_(None))
            .order_by(t.carrier_callbacks.c.id)
            .limit(limit)
        )
        if self.pg:
            q = q.with_for_update(skip_locked=True)
        out: list[tuple[int, CarrierDeviceOutcome]] = []
        for r in self.conn.execute(q).mappings():
            body = r["body"]
            out.append(
                (
                    r["id"],
                    CarrierDeviceOutcome(
                        request_id=r["request_id"],
                        iccid=r["iccid"],
                        succeeded={"SUCCESS": True, "FAILED": False}.get(r["outcome"]),
                        fault_code=body.get("fault_code"),
                        fault_text=body.get("fault_text"),
                        reported=body.get("reported") or {},
                    ),
                )
            )
        return out

    def mark_processed(self, ids: Sequence[int]) -> None:
        at = now()
        for chunk in chunks(list(ids)):
            self.conn.execute(
                update(t.carrier_callbacks)
                .where(t.carrier_callbacks.c.id.in_(chunk))
                .values(processed_at=at)
            )
