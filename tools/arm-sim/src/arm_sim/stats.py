"""What the simulator counts, so tests and benchmarks can check what really happened."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

COUNTERS = (
    "requests",
    "unauthorized",
    "throttled",
    "errors_injected",
    "timeouts_injected",
    "tokens_issued",
    "movements_applied",
    "movements_replayed",
    "movements_rejected",
)


class SimStats:
    """Counters since the last reset; safe to bump from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        # Counted where a movement changes an asset, apart from the idempotency record, so
        # a movement applied twice shows up here even if that record were wrong.
        self._applications: Counter[tuple[str, str]] = Counter()

    def bump(self, name: str, by: int = 1) -> None:
        if name not in COUNTERS:
            raise KeyError(name)
        with self._lock:
            self._counts[name] += by

    def applied(self, *, asset_id: str, movement_id: str) -> None:
        with self._lock:
            self._counts["movements_applied"] += 1
            self._applications[(asset_id, movement_id)] += 1

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._applications.clear()

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            answer: dict[str, Any] = {name: self._counts[name] for name in COUNTERS}
            answer["assets_moved_more_than_once_by_same_movement"] = len(
                {asset for (asset, _), n in self._applications.items() if n > 1}
            )
            return answer
