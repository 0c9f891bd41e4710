"""What the MQTT handler committed, and how long after the sender published it.

Latency is measured from the envelope's `ts` (the sender's clock when it published) to the
moment the batch's commit returned, per signal: the honest "publish to committed state" of
a benchmark that publishes from the same machine. With devices' own clocks it also holds
their skew, so it is a benchmark and operations figure, not a business one. Histogram
buckets are whole milliseconds (the last one collects everything from a minute up).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime

from iot_sync.app.signals import MalformedSignal, Signal

_MAX_MS = 60_000


class IngestStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.batches = 0
        self.signals = 0
        self.malformed = 0
        self.transitions = 0
        self._histogram: dict[int, int] = {}

    def record(
        self,
        batch: Sequence[Signal | MalformedSignal],
        *,
        committed_at: datetime,
        transitions: int,
    ) -> None:
        committed = committed_at.timestamp()
        buckets: dict[int, int] = {}
        malformed = 0
        for item in batch:
            if isinstance(item, Signal):
                ms = min(max(int((committed - item.sent_at.timestamp()) * 1000), 0), _MAX_MS)
                buckets[ms] = buckets.get(ms, 0) + 1
            else:
                malformed += 1
        with self._lock:
            self.batches += 1
            self.signals += len(batch)
            self.malformed += malformed
            self.transitions += transitions
            histogram = self._histogram
            for ms, count in buckets.items():
                histogram[ms] = histogram.get(ms, 0) + count

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "batches": self.batches,
                "signals": self.signals,
                "malformed": self.malformed,
                "transitions": self.transitions,
                "latency_ms_histogram": dict(self._histogram),
            }
