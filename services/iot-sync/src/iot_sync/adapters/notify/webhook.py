"""`Notifier` over an HTTP webhook (httpx).

Each notification is POSTed as JSON with an `Idempotency-Key` header (the outbox event id),
so the receiver drops a repeat after a crash between sending and marking. When a secret is
configured the body is signed (`X-Fleetops-Signature: sha256=<hex HMAC>`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

import httpx

from iot_sync.app.ports import DeliveryError, Notification

log = logging.getLogger(__name__)

# A receiver that says these will not change its mind on a retry.
_PERMANENT = frozenset({400, 401, 403, 404, 405, 410, 413, 415, 422})


class WebhookNotifier:
    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        timeout_s: float = 5.0,
        http: httpx.Client | None = None,
    ) -> None:
        self._url = url
        self._secret = secret.encode() if secret else None
        self._http = http or httpx.Client(timeout=timeout_s)

    def notify(self, notification: Notification) -> None:
        body = json.dumps(_body(notification), separators=(",", ":"), default=str).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": notification.idempotency_key,
        }
        if self._secret is not None:
            digest = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
            headers["X-Fleetops-Signature"] = f"sha256={digest}"
        try:
            response = self._http.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook unreachable: {exc.__class__.__name__}: {exc}") from exc
        if response.is_success:
            return
        detail = f"webhook answered {response.status_code}"
        raise DeliveryError(detail, permanent=response.status_code in _PERMANENT)

    def close(self) -> None:
        self._http.close()


class LoggingNotifier:
    """Where no webhook is configured: the notice still goes out on MQTT; this only logs."""

    def notify(self, notification: Notification) -> None:
        log.info(
            "customer notification (no webhook configured): %s %s",
            notification.customer_id,
            notification.event,
        )


def _body(n: Notification) -> dict[str, Any]:
    return {
        "event_id": n.idempotency_key,
        "customer_id": n.customer_id,
        "event": n.event,
        "occurred_at": n.occurred_at.isoformat(),
        "data": dict(n.data),
    }
