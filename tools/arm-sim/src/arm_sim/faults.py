"""Which fault a call gets: throttling by token bucket, injected 503s and held answers."""

from __future__ import annotations

import math
import random
import threading
import time

from arm_sim.config import Faults


class TokenBucket:
    """`rate` calls per second on average, bursts of up to max(1, rate)."""

    def __init__(self) -> None:
        self._rate = 0.0
        self._tokens = 0.0
        self._updated = time.monotonic()

    def take(self, rate: float | None) -> float | None:
        """None if the call may pass, else the seconds until it could."""
        if not rate:
            return None
        now = time.monotonic()
        capacity = max(1.0, rate)
        if rate != self._rate:  # a new rate starts with a full bucket
            self._rate, self._tokens = rate, capacity
        self._tokens = min(capacity, self._tokens + (now - self._updated) * rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return (1.0 - self._tokens) / rate


class FaultPlan:
    """The run-time fault settings and the dice that apply them, behind one lock."""

    def __init__(self, faults: Faults, *, seed: int) -> None:
        self._lock = threading.Lock()
        self._initial = faults.model_copy()
        self.faults = faults.model_copy()
        self._rng = random.Random(seed)
        self._bucket = TokenBucket()

    def update(self, faults: Faults) -> None:
        with self._lock:
            self.faults = faults

    def reset(self) -> None:
        with self._lock:
            self.faults = self._initial.model_copy()
            self._bucket = TokenBucket()

    def throttle(self) -> int | None:
        """None to let the call pass, else the whole seconds for `Retry-After`."""
        with self._lock:
            wait = self._bucket.take(self.faults.rate_limit_per_s)
        return None if wait is None else max(1, math.ceil(wait))

    def inject_error(self) -> bool:
        with self._lock:
            if self.faults.error_next:
                self.faults = self.faults.model_copy(
                    update={"error_next": self.faults.error_next - 1}
                )
                return True
            return self._rng.random() < self.faults.error_rate

    def hold_answer(self) -> float | None:
        """Seconds to hold the answer (the client sees a timeout), or None."""
        with self._lock:
            f = self.faults
            if f.timeout_next:
                self.faults = f.model_copy(update={"timeout_next": f.timeout_next - 1})
                return f.timeout_hold_ms / 1000
            if self._rng.random() < f.timeout_rate:
                return f.timeout_hold_ms / 1000
            return None
