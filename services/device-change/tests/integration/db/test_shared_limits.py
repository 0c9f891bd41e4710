"""State shared by every worker process through the database: rate limits, delivery counts."""

import threading
import time
import uuid

import pytest

from device_change.adapters.db.delivery_log import SqlDeliveryLog
from device_change.adapters.db.rate_limit import SqlRateLimiter

pytestmark = pytest.mark.integration


def test_the_rate_limiter_spaces_calls_across_threads_and_instances(engine_each_dialect):
    rate, per_thread = 20.0, 5
    key = f"carrier:{uuid.uuid4().hex}"
    # Two instances stand for two processes: only the database row is shared.
    limiters = [SqlRateLimiter(engine_each_dialect, key=key, rate_per_s=rate) for _ in range(2)]
    granted: list[float] = []
    lock = threading.Lock()

    def calls(limiter: SqlRateLimiter) -> None:
        for _ in range(per_thread):
            limiter.acquire()
            with lock:
                granted.append(time.time())

    started = time.time()
    threads = [threading.Thread(target=calls, args=(lim,)) for lim in limiters]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)

    n = 2 * per_thread
    assert len(granted) == n
    # n calls at `rate` need at least (n - 1) / rate seconds; small slack for clock reads.
    assert max(granted) - started >= (n - 1) / rate * 0.9
    gaps = [b - a for a, b in zip(sorted(granted), sorted(granted)[1:], strict=False)]
    assert sum(gaps) / len(gaps) >= 1 / rate * 0.8


def test_a_rate_of_zero_means_unlimited(engine):
    limiter = SqlRateLimiter(engine, key="unlimited", rate_per_s=0)
    started = time.perf_counter()
    assert [limiter.acquire() for _ in range(100)] == [0.0] * 100
    assert time.perf_counter() - started < 0.5


def test_the_delivery_log_counts_deliveries_and_keeps_dead_letters(engine_each_dialect):
    log = SqlDeliveryLog(engine_each_dialect)
    message_id = uuid.uuid4().hex
    counts = [log.record_delivery(message_id, queue="q", actor="settle") for _ in range(3)]
    assert counts == [1, 2, 3]
    log.forget(message_id)
    assert log.record_delivery(message_id, queue="q", actor="settle") == 1

    log.dead_letter(
        message_id=message_id,
        queue="q",
        actor="settle",
        payload={"kwargs": {"batch_id": "b-1"}},
        reason="boom",
        deliveries=5,
    )
    newest = log.list_dead_letters(limit=1)[0]
    assert (newest["message_id"], newest["reason"], newest["deliveries"]) == (message_id, "boom", 5)
    assert newest["payload"] == {"kwargs": {"batch_id": "b-1"}}
    assert newest["replayed_at"] is None
    log.mark_replayed(newest["id"])
    replayed = log.get_dead_letter(newest["id"])
    assert replayed is not None and replayed["replayed_at"] is not None
    assert log.get_dead_letter(-1) is None
