"""Wakes the relay when any process commits outbox rows (PostgreSQL LISTEN/NOTIFY).

Migration 0003 makes every insert into `outbox` notify `iot_sync_outbox`; PostgreSQL hands
the notification to listeners when the writing transaction commits. `OutboxListener` holds
one connection of its own in LISTEN and sets the relay's wake-up event on each notification.

Notifications are a hint, never the record: the relay still sweeps every
`IOT_SYNC_RELAY_EVERY_S`, and after (re)connecting the listener wakes it once for whatever was
committed while nobody listened. A lost connection costs latency, not events.
"""

from __future__ import annotations

import logging
import threading

import psycopg

log = logging.getLogger(__name__)

CHANNEL = "iot_sync_outbox"


class OutboxListener:
    """A thread in LISTEN on `CHANNEL`, setting `wake` whenever outbox rows were committed.

    `conninfo` is psycopg's own (`fleetops_common.db.libpq` of the engine's URL)."""

    def __init__(
        self,
        conninfo: str,
        wake: threading.Event,
        *,
        poll_s: float = 1.0,
        retry_s: float = 1.0,
    ) -> None:
        self._conninfo = conninfo
        self._wake = wake
        self._poll_s = poll_s  # how often the thread looks at `stop` while nothing arrives
        self._retry_s = retry_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()
        self.notifications = 0

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("outbox listener already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._listen, name="outbox-listen", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None
        self.listening.clear()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    self._wake.set()  # what was committed while nobody listened
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=self._poll_s):
                            self.notifications += 1
                            self._wake.set()
            except psycopg.Error as exc:
                self.listening.clear()
                log.warning("outbox listener lost its connection (%s); retrying", exc)
                self._stop.wait(self._retry_s)
