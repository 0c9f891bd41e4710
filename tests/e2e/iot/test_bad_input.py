"""Bad input: each kind is rejected on the error topic, logged with its reason, and the
consumer keeps going."""

from __future__ import annotations

import json

import pytest

from .harness import IotPlatform, Received, envelope, eventually

pytestmark = pytest.mark.e2e


def test_each_bad_input_is_rejected_on_the_error_topic_logged_and_the_consumer_keeps_going(
    platform: IotPlatform,
) -> None:
    p = platform.prefix
    sender = platform.device("kiosk", v5=platform.broker.speaks_v5)
    good = envelope({"customer_id": "CUST-0001"}, seq=1)
    oversize = envelope({"customer_id": "CUST-0001", "blob": "x" * 70_000}, seq=1)
    # Given a message of each bad kind, on topics that tell them apart
    raw: list[tuple[str, bytes, str]] = [
        (f"{p}/call/abs/station/KIOSK-JSON/authorize", b'{"id": "j-1", "ts": ', "malformed_json"),
        (f"{p}/call/abs/station/KIOSK-1/self_destruct", json.dumps(good).encode(), "unknown_topic"),
        (f"{p}/dt/arm/toaster/region-1/site-1/T-1", json.dumps(good).encode(), "unknown_topic"),
        (
            f"{p}/call/abs/station/KIOSK-NO-TS/authorize",
            json.dumps({k: v for k, v in good.items() if k != "ts"}).encode(),
            "missing_field",
        ),
        (
            f"{p}/call/abs/station/KIOSK-SEQ/authorize",
            json.dumps({**good, "seq": "41"}).encode(),
            "wrong_type",
        ),
        (
            f"{p}/call/abs/station/KIOSK-BIG/authorize",
            json.dumps(oversize).encode(),
            "oversize_payload",
        ),
    ]
    # and well-formed envelopes whose data is missing a field or has one of the wrong type
    station_id = platform.stations()[0]["station_id"]
    station = platform.station(station_id)

    # When they are published, then a good call after them
    for topic, payload, _ in raw:
        sender.publish(topic, payload)
    no_customer = station.send("authorize", {"returned_battery_id": "BAT-000001"})
    numeric_customer = station.send("authorize", {"customer_id": 42})
    customer_id = platform.good_customers()[0]
    after = station.authorize(customer_id)

    # Then the consumer kept going: the good call was granted
    assert after["decision"] == "GRANTED", after
    # the data-level rejections were answered to the station with their reason
    assert station.answer(no_customer).data["reason"] == "missing_field"
    assert station.answer(numeric_customer).data["reason"] == "wrong_type"
    expected = [(topic, reason) for topic, _, reason in raw] + [
        (station.topic("authorize"), "missing_field"),
        (station.topic("authorize"), "wrong_type"),
    ]

    # and each one is answered on the error topic with its reason, once
    def errors() -> list[Received]:
        return platform.monitor.matching(lambda m: m.topic.startswith(f"{p}/emit/abs/error/"))

    eventually(errors, lambda found: len(found) >= len(expected), what="every error message")
    assert sorted((e.data["topic"], e.data["reason"]) for e in errors()) == sorted(expected)
    assert all(e.data["detail"] for e in errors())
    oversize_error = next(e for e in errors() if e.data["reason"] == "oversize_payload")
    assert oversize_error.topic == f"{p}/emit/abs/error/station/KIOSK-BIG"

    # and each is in the signal log among the rejected signals, with its reason
    rejected = eventually(
        lambda: platform.signals("rejected"),
        lambda found: len(found) >= len(expected),
        what="every bad input among the rejected signals",
    )
    assert sorted((s["topic"], s["reason_code"]) for s in rejected) == sorted(expected)
    assert all(s["reason"] for s in rejected)
