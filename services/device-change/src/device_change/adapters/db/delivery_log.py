"""Delivery counts and dead letters in the database, shared by every worker process."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from device_change.adapters.db import tables as t
from device_change.adapters.db._shared import insert_for


class SqlDeliveryLog:
    """`fleetops_common.queue.DeliveryLog` in the database; each call is its own transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record_delivery(self, message_id: str, *, queue: str, actor: str) -> int:
        """Count one more delivery of this message; returns the count so far."""
        now = datetime.now(UTC)
        with self._engine.connect() as conn, conn.begin():
            stmt = insert_for(conn, t.delivery_log)
            stmt = stmt.on_conflict_do_update(
                index_elements=["message_id"],
                set_={"deliveries": t.delivery_log.c.deliveries + 1, "updated_at": now},
            ).returning(t.delivery_log.c.deliveries)
            row = {
                "message_id": message_id,
                "queue": queue,
                "actor": actor,
                "deliveries": 1,
                "updated_at": now,
            }
            return int(conn.execute(stmt, row).scalar_one())

    def dead_letter(
        self,
        *,
        message_id: str,
        queue: str,
        actor: str,
        payload: dict[str, Any],
        reason: str,
        deliveries: int,
    ) -> None:
        with self._engine.connect() as conn, conn.begin():
            conn.execute(
                insert(t.dead_letters).values(
                    message_id=message_id,
                    queue=queue,
                    actor=actor,
                    payload=payload,
                    reason=reason,
                    deliveries=deliveries,
                    created_at=datetime.now(UTC),
                )
            )

    def forget(self, message_id: str) -> None:
        with self._engine.connect() as conn, conn.begin():
            conn.execute(delete(t.delivery_log).where(t.delivery_log.c.message_id == message_id))

    def list_dead_letters(self, limit: int) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            q = select(t.dead_letters).order_by(t.dead_letters.c.id.desc()).limit(limit)
            return [dict(r) for r in conn.execute(q).mappings()]

    def get_dead_letter(self, dead_letter_id: int) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            q = select(t.dead_letters).where(t.dead_letters.c.id == dead_letter_id)
            r = conn.execute(q).mappings().first()
            return dict(r) if r else None

    def mark_replayed(self, dead_letter_id: int) -> None:
        with self._engine.connect() as conn, conn.begin():
            conn.execute(
                update(t.dead_letters)
                .where(t.dead_letters.c.id == dead_letter_id)
                .values(replayed_at=datetime.now(UTC))
            )
