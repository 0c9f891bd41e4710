"""The device history (audit trail): who changed what on which device, and when."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from device_change.adapters.db import tables as t
from device_change.adapters.db._shared import (
    aware,
    chunks,
    decode_cursor,
    encode_cursor,
    now,
    unique,
)
from device_change.adapters.db.devices import DeviceIds
from device_change.app.ports import AuditEntry, Page
from device_change.domain.changes import CarrierAction


class SqlAlchemyAuditLog:
    """`known_ids`: the devices' row ids the unit of work's updates already read."""

    def __init__(self, conn: Connection, *, known_ids: DeviceIds | None = None) -> None:
        self.conn = conn
        self._known_ids = known_ids if known_ids is not None else {}

    def record(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        # The entry names the device by its ICCID after the change; history is keyed by the
        # device's surrogate id so it survives a later ICCID swap.
        ids = self._known_ids
        for tenant in {e.tenant for e in entries}:
            iccids = unique(
                [e.iccid for e in entries if e.tenant == tenant and (tenant, e.iccid) not in ids]
            )
            for chunk in chunks(iccids):
                q = select(t.devices.c.iccid, t.devices.c.id).where(
                    t.devices.c.tenant == tenant, t.devices.c.iccid.in_(chunk)
                )
                ids.update({(tenant, i): d for i, d in self.conn.execute(q)})
        rows = [
            {
                "tenant": e.tenant,
                "device_id": ids[(e.tenant, e.iccid)],
                "iccid": e.iccid,
                "action": e.action,
                "before": dict(e.before),
                "after": dict(e.after),
                "actor": e.actor,
                "at": e.at,
                "bulk_change_id": e.bulk_change_id,
                "line_id": e.line_id,
                "carrier_request_id": e.carrier_request_id,
            }
            for e in entries
            if (e.tenant, e.iccid) in ids  # an unknown device has no history
        ]
        if rows:
            self.conn.execute(insert(t.device_history), rows)

    def history(
        self, tenant: str, iccid: str, *, limit: int, cursor: str | None
    ) -> Page[AuditEntry]:
        device_id = self.conn.execute(
            select(t.devices.c.id).where(t.devices.c.tenant == tenant, t.devices.c.iccid == iccid)
        ).scalar_one_or_none()
        if device_id is None:
            return Page([], None)
        q = select(t.device_history).where(t.device_history.c.device_id == device_id)
        after = decode_cursor(cursor)
        if after and after.isdigit():
            q = q.where(t.device_history.c.id < int(after))
        rows = list(
            self.conn.execute(q.order_by(t.device_history.c.id.desc()).limit(limit + 1)).mappings()
        )
        items = [
            AuditEntry(
                tenant=r["tenant"],
                iccid=r["iccid"],
                action=r["action"],
                before=dict(r["before"]),
                after=dict(r["after"]),
                actor=r["actor"],
                at=aware(r["at"]) or now(),
                bulk_change_id=r["bulk_change_id"],
                line_id=r["line_id"],
                carrier_request_id=r["carrier_request_id"],
            )
            for r in rows[:limit]
        ]
        nxt = encode_cursor(rows[limit - 1]["id"]) if len(rows) > limit else None
        return Page(items, nxt)

    def plan_changes_since(
        self, tenant: str, iccids: Sequence[str], since: datetime
    ) -> dict[str, int]:
        out: dict[str, int] = {}
        for chunk in chunks(unique(iccids)):
            q = (
                select(t.devices.c.iccid, func.count())
                .join(t.device_history, t.device_history.c.device_id == t.devices.c.id)
                .where(
                    t.devices.c.iccid.in_(chunk),
                    t.device_history.c.tenant == tenant,
                    t.device_history.c.action == CarrierAction.CHANGE_PLAN.value,
                    t.device_history.c.at >= since,
                )
                .group_by(t.devices.c.iccid)
            )
            out.update({i: int(n) for i, n in self.conn.execute(q)})
        return out
