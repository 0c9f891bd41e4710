"""The signal log, and per-sender ordering state (last applied seq, held-back messages)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, text, update
from sqlalchemy.engine import Connection, RowMapping

from fleetops_common.db import is_postgres
from iot_sync.adapters.db import tables as t
from iot_sync.adapters.db._shared import among, aware, chunks, copy_rows, insert_for
from iot_sync.app.ports import HeldSignal, Page, SignalRecord, SignalResult
from iot_sync.app.signals import Actor, Signal, SourceKind

# One statement, two array parameters: for a batch's hundred-odd senders 0.35 ms less than
# COPY into a scratch table and an upsert from it (two round trips more).
_UPSERT_CURSORS = (
    "INSERT INTO sender_cursors (sender, last_seq) "
    "SELECT * FROM unnest(CAST(:senders AS text[]), CAST(:seqs AS bigint[])) ORDER BY 1 "
    "ON CONFLICT (sender) DO UPDATE SET last_seq = excluded.last_seq"
)

# The cursor rows of a batch's senders, locked one index probe at a time in the order given
# (sorted: one lock order for every consumer). `sender = ANY(senders) FOR UPDATE` left the
# plan to statistics this table rarely has (it is only ever updated, never grows after
# start): a plan cached while the table was small seq-scanned it with a 150-value filter
# per row, 17 ms a batch, where this takes 0.3 ms.
_LOCK_CURSORS = (
    "SELECT k.sender, c.last_seq FROM unnest(CAST(:senders AS text[])) AS k(sender) "
    "CROSS JOIN LATERAL (SELECT last_seq FROM sender_cursors "
    "WHERE sender_cursors.sender = k.sender FOR UPDATE OFFSET 0) c"
)

# One index probe per id, whatever the planner believes of the table. With `= ANY(ids)` it
# scanned the whole signal log whenever its statistics were stale (a young or fast-growing
# table, autovacuum late or off): measured, 58 ms a batch at 175,000 rows, 5 ms this way.
# OFFSET 0 keeps the subquery from being flattened into a hash join; every row of an id comes
# back, since only the result tells whether it was taken in (filtering on it in SQL brings
# the result index into the plan, far worse).
_KNOWN_IDS = (
    "SELECT k.id AS message_id, s.result FROM unnest(CAST(:ids AS text[])) AS k(id) "
    "CROSS JOIN LATERAL (SELECT result FROM signal_log WHERE message_id = k.id OFFSET 0) s"
)

# Transaction-scoped advisory locks, one per id, taken in key order (no deadlock between two
# claimers); the first key names this use, so they never meet another user's advisory locks.
_MESSAGE_ID_LOCKS = 0x1075_0004
_CLAIM_IDS = (
    "SELECT count(pg_advisory_xact_lock(:space, k)) FROM ("
    "SELECT DISTINCT hashtext(id) AS k FROM unnest(CAST(:ids AS text[])) AS u(id) ORDER BY k"
    ") AS keys"
)

# What counts as "taken in": a redelivery of any of these is a duplicate.
_TAKEN = [SignalResult.ACCEPTED.value, SignalResult.REJECTED.value, SignalResult.HELD.value]


class SqlAlchemySignalLog:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def claim_message_ids(self, message_ids: Sequence[str]) -> None:
        # SQLite: writers already take turns for the whole transaction; nothing to add.
        if message_ids and is_postgres(self.conn):
            ids = sorted(set(message_ids))
            self.conn.execute(text(_CLAIM_IDS), {"space": _MESSAGE_ID_LOCKS, "ids": ids})

    def known_message_ids(self, message_ids: Sequence[str]) -> set[str]:
        known: set[str] = set()
        if is_postgres(self.conn):
            for part in chunks(list(message_ids)):
                rows = self.conn.execute(text(_KNOWN_IDS), {"ids": list(part)})
                known.update(r.message_id for r in rows if r.result in _TAKEN)
            return known
        for part in chunks(list(message_ids)):
            # Filtered on result here, not in SQL: the planner then always takes the
            # message id index rather than scanning by result.
            q = select(t.signal_log.c.message_id, t.signal_log.c.result).where(
                among(self.conn, t.signal_log.c.message_id, part)
            )
            known.update(r.message_id for r in self.conn.execute(q) if r.result in _TAKEN)
        return known

    def add(self, records: Sequence[SignalRecord]) -> None:
        if not records:
            return
        rows = [_row(r) for r in records]
        if is_postgres(self.conn):
            columns = list(rows[0])
            copy_rows(self.conn, "signal_log", columns, ([r[c] for c in columns] for r in rows))
            return
        self.conn.execute(t.signal_log.insert(), rows)

    def settle_held(self, records: Sequence[SignalRecord]) -> None:
        if not records:
            return
        stmt = (
            update(t.signal_log)
            .where(
                t.signal_log.c.message_id == bindparam("b_message_id"),
                t.signal_log.c.result == SignalResult.HELD.value,
            )
            .values(
                result=bindparam("b_result"),
                reason_code=bindparam("b_reason_code"),
                reason=bindparam("b_reason"),
                processed_at=bindparam("b_processed_at"),
            )
        )
        self.conn.execute(
            stmt,
            [
                {
                    "b_message_id": r.message_id,
                    "b_result": r.result.value,
                    "b_reason_code": r.reason_code,
                    "b_reason": r.reason,
                    "b_processed_at": r.processed_at,
                }
                for r in records
            ],
        )

    def page(
        self, *, results: Collection[SignalResult] | None, limit: int, cursor: str | None
    ) -> Page[SignalRecord]:
        """Newest first; the cursor is the id the previous page ended on."""
        q = select(t.signal_log).order_by(t.signal_log.c.id.desc()).limit(limit + 1)
        if results is not None:
            q = q.where(t.signal_log.c.result.in_([r.value for r in results]))
        if cursor and cursor.isdigit():
            q = q.where(t.signal_log.c.id < int(cursor))
        rows = list(self.conn.execute(q).mappings())
        more = len(rows) > limit
        rows = rows[:limit]
        return Page([_record(r) for r in rows], str(rows[-1]["id"]) if more and rows else None)


def _row(r: SignalRecord) -> dict[str, Any]:
    return {
        "message_id": r.message_id,
        "topic": r.topic,
        "source_kind": r.source_kind,
        "source_id": r.source_id,
        "verb": r.verb,
        "seq": r.seq,
        "result": r.result.value,
        "reason_code": r.reason_code,
        "reason": r.reason,
        "correlation_id": r.correlation_id,
        "received_at": r.received_at,
        "processed_at": r.processed_at,
    }


def _record(row: RowMapping) -> SignalRecord:
    return SignalRecord(
        topic=row["topic"],
        result=SignalResult(row["result"]),
        received_at=aware(row["received_at"]) or row["received_at"],
        processed_at=aware(row["processed_at"]) or row["processed_at"],
        message_id=row["message_id"],
        source_kind=row["source_kind"],
        source_id=row["source_id"],
        verb=row["verb"],
        seq=row["seq"],
        reason_code=row["reason_code"],
        reason=row["reason"],
        correlation_id=row["correlation_id"],
    )


class SqlAlchemySenderLedger:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def last_seqs(self, senders: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        if is_postgres(self.conn):
            # Two consumers never apply one sender's messages at the same time.
            for part in chunks(sorted(set(senders))):
                rows = self.conn.execute(text(_LOCK_CURSORS), {"senders": list(part)})
                found.update({row.sender: int(row.last_seq) for row in rows})
            return found
        for part in chunks(list(senders)):
            q = select(t.sender_cursors.c.sender, t.sender_cursors.c.last_seq).where(
                among(self.conn, t.sender_cursors.c.sender, part)
            )
            found.update({row.sender: int(row.last_seq) for row in self.conn.execute(q)})
        return found

    def save_last_seqs(self, last: Mapping[str, int]) -> None:
        if not last:
            return
        ordered = sorted(last.items())  # one lock order: no deadlock between consumers
        if is_postgres(self.conn):
            senders, seqs = zip(*ordered, strict=True)
            self.conn.execute(text(_UPSERT_CURSORS), {"senders": list(senders), "seqs": list(seqs)})
            return
        stmt = insert_for(self.conn, t.sender_cursors)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.sender_cursors.c.sender],
            set_={"last_seq": stmt.excluded.last_seq},
        )
        self.conn.execute(stmt, [{"sender": k, "last_seq": v} for k, v in ordered])

    def hold(self, sender: str, held: Sequence[HeldSignal]) -> None:
        if not held:
            return
        stmt = insert_for(self.conn, t.held_signals).on_conflict_do_nothing(
            index_elements=[t.held_signals.c.message_id]
        )
        self.conn.execute(
            stmt,
            [
                {
                    "message_id": h.signal.message_id,
                    "sender": sender,
                    "seq": h.signal.seq or 0,
                    "held_since": h.held_since,
                    "signal": signal_to_json(h.signal),
                }
                for h in held
            ],
        )

    def held(self, senders: Sequence[str]) -> dict[str, list[HeldSignal]]:
        out: dict[str, list[HeldSignal]] = {}
        for part in chunks(list(senders)):
            q = (
                select(t.held_signals)
                .where(t.held_signals.c.sender.in_(part))
                .order_by(t.held_signals.c.sender, t.held_signals.c.seq)
            )
            for row in self.conn.execute(q).mappings():
                out.setdefault(row["sender"], []).append(
                    HeldSignal(
                        signal_from_json(row["signal"]),
                        aware(row["held_since"]) or row["held_since"],
                    )
                )
        return out

    def release(self, message_ids: Sequence[str]) -> None:
        for part in chunks(list(message_ids)):
            self.conn.execute(delete(t.held_signals).where(t.held_signals.c.message_id.in_(part)))

    def senders_holding_since(self, before: datetime, limit: int) -> list[str]:
        q = (
            select(t.held_signals.c.sender, func.min(t.held_signals.c.held_since).label("since"))
            .group_by(t.held_signals.c.sender)
            .having(func.min(t.held_signals.c.held_since) <= before)
            .order_by("since")
            .limit(limit)
        )
        return [row.sender for row in self.conn.execute(q)]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def signal_to_json(s: Signal) -> dict[str, Any]:
    return {
        "message_id": s.message_id,
        "topic": s.topic,
        "source_kind": s.source_kind.value,
        "source_id": s.source_id,
        "verb": s.verb,
        "sent_at": _iso(s.sent_at),
        "seq": s.seq,
        "data": dict(s.data),
        "received_at": _iso(s.received_at),
        "actor": {"kind": s.actor.kind, "id": s.actor.id} if s.actor else None,
        "correlation_id": s.correlation_id,
        "traceparent": s.traceparent,
        "reply_to": s.reply_to,
        "region": s.region,
        "site": s.site,
        "expires_at": _iso(s.expires_at),
    }


def signal_from_json(d: Mapping[str, Any]) -> Signal:
    actor = d.get("actor")
    return Signal(
        message_id=d["message_id"],
        topic=d["topic"],
        source_kind=SourceKind(d["source_kind"]),
        source_id=d["source_id"],
        verb=d["verb"],
        sent_at=_dt(d["sent_at"]) or datetime.fromisoformat(d["received_at"]),
        seq=d.get("seq"),
        data=d.get("data") or {},
        received_at=datetime.fromisoformat(d["received_at"]),
        actor=Actor(actor["kind"], actor["id"]) if actor else None,
        correlation_id=d.get("correlation_id"),
        traceparent=d.get("traceparent"),
        reply_to=d.get("reply_to"),
        region=d.get("region"),
        site=d.get("site"),
        expires_at=_dt(d.get("expires_at")),
    )
