"""Field personnel and the audit log of their actions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, RowMapping

from iot_sync.adapters.db import tables as t
from iot_sync.adapters.db._shared import aware, read_through
from iot_sync.app.ports import AuditEntry
from iot_sync.domain.personnel import Person, PersonnelRole


class SqlAlchemyPersonnelRepository:
    """Remembers the people it read for the unit of work (iot-sync never changes them)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._known: dict[str, Person | None] = {}

    def get(self, person_id: str) -> Person | None:
        return self.get_many([person_id]).get(person_id)

    def get_many(self, person_ids: Sequence[str]) -> dict[str, Person]:
        return read_through(
            self.conn, self._known, person_ids, t.personnel, "person_id", person_from_row
        )

    def all(self) -> list[Person]:
        q = select(t.personnel).order_by(t.personnel.c.person_id)
        return [person_from_row(r) for r in self.conn.execute(q).mappings()]


def person_from_row(r: RowMapping) -> Person:
    return Person(
        person_id=r["person_id"],
        name=r["name"],
        role=PersonnelRole(r["role"]),
        regions=frozenset(r["regions"]),
        stations=frozenset(r["stations"]),
        active=r["active"],
    )


def person_to_row(p: Person) -> dict[str, Any]:
    return {
        "person_id": p.person_id,
        "name": p.name,
        "role": p.role.value,
        "regions": sorted(p.regions),
        "stations": sorted(p.stations),
        "active": p.active,
    }


class SqlAlchemyAuditLog:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def record(self, entries: Sequence[AuditEntry]) -> None:
        if entries:
            self.conn.execute(
                t.audit_log.insert(),
                [
                    {
                        "person_id": e.person_id,
                        "action": e.action,
                        "asset_id": e.asset_id,
                        "result": e.result,
                        "reason": e.reason,
                        "detail": dict(e.detail),
                        "at": e.at,
                        "message_id": e.message_id,
                    }
                    for e in entries
                ],
            )

    def entries(
        self, *, person_id: str | None, asset_id: str | None, limit: int
    ) -> list[AuditEntry]:
        q = select(t.audit_log).order_by(t.audit_log.c.id.desc()).limit(limit)
        if person_id is not None:
            q = q.where(t.audit_log.c.person_id == person_id)
        if asset_id is not None:
            q = q.where(t.audit_log.c.asset_id == asset_id)
        return [
            AuditEntry(
                person_id=r["person_id"],
                action=r["action"],
                asset_id=r["asset_id"],
                result=r["result"],
                at=aware(r["at"]) or r["at"],
                message_id=r["message_id"],
                reason=r["reason"],
                detail=r["detail"] or {},
            )
            for r in self.conn.execute(q).mappings()
        ]
