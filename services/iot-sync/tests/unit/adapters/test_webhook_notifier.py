import hashlib
import hmac
import json
from datetime import UTC, datetime

import httpx
import pytest

from iot_sync.adapters.notify.webhook import WebhookNotifier
from iot_sync.app.ports import DeliveryError, Notification

NOTICE = Notification(
    "evt-1", "C-1", "battery_issued", {"battery_id": "BAT-1"}, datetime(2026, 11, 23, tzinfo=UTC)
)


def notifier(handler, secret=None):
    return WebhookNotifier(
        "https://hooks.example/iot",
        secret=secret,
        http=httpx.Client(transport=httpx.MockTransport(handler)),
    )


def test_a_notification_is_posted_with_its_idempotency_key_and_signature():
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(202)

    notifier(handler, secret="s3cret").notify(NOTICE)
    [request] = seen
    assert request.headers["Idempotency-Key"] == "evt-1"
    expected = hmac.new(b"s3cret", request.content, hashlib.sha256).hexdigest()
    assert request.headers["X-Fleetops-Signature"] == f"sha256={expected}"
    assert json.loads(request.content) == {
        "event_id": "evt-1",
        "customer_id": "C-1",
        "event": "battery_issued",
        "occurred_at": "2026-11-23T00:00:00+00:00",
        "data": {"battery_id": "BAT-1"},
    }


@pytest.mark.parametrize(
    ("status", "permanent"), [(500, False), (503, False), (429, False), (422, True), (404, True)]
)
def test_a_refusal_says_whether_a_retry_can_help(status, permanent):
    with pytest.raises(DeliveryError) as caught:
        notifier(lambda r: httpx.Response(status)).notify(NOTICE)
    assert caught.value.permanent is permanent


def test_an_unreachable_receiver_is_worth_a_retry():
    def handler(request):
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(DeliveryError) as caught:
        notifier(handler).notify(NOTICE)
    assert caught.value.permanent is False
