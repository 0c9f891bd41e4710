"""The one place where device-change's ports are wired to adapters, from settings."""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dramatiq
import structlog
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy.engine import Engine

from device_change.adapters.db.delivery_log import SqlDeliveryLog
from device_change.adapters.db.engine import make_engine
from device_change.adapters.db.outbox import OutboxRelay
from device_change.adapters.db.rate_limit import SqlRateLimiter
from device_change.adapters.db.uow import SqlAlchemyUnitOfWorkFactory
from device_change.adapters.thingspace.gateway import ThingSpaceCarrierGateway
from device_change.app.callbacks import SETTLE_CALLBACKS, CallbackSettlement, CarrierCallbackIntake
from device_change.app.cancel import BulkChangeCancellation
from device_change.app.inventory import InventorySync
from device_change.app.ports import CarrierAccount, CarrierGateway, RateLimiter
from device_change.app.processing import (
    CarrierBatchPoller,
    CarrierBatchSender,
    DevicesInFlight,
    RetryPolicy,
)
from device_change.app.submit import BulkChangeSubmission, SubmissionPolicy
from device_change.settings import DeviceChangeSettings
from fleetops_common.auth import TokenService
from fleetops_common.queue import DeliveryLimit, make_broker, replay
from fleetops_common.telemetry import inject_traceparent, link_from

log = structlog.get_logger("device_change")


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class OtelTraceContext:
    def current_traceparent(self) -> str | None:
        return inject_traceparent().get("traceparent")


class OtelCallbackTracing:
    """A span per stored group of carrier callbacks, linked to each carrier call it answers.

    The messaging conventions' pattern for a batch: the callbacks of one bulk change answer
    a handful of carrier calls, so a group of 1,000 callbacks carries a few links, where a
    span per callback cost a quarter of the event loop's time at 1,500 callbacks a second."""

    MAX_LINKS = 128  # the SDK's default limit of links per span

    def __init__(
        self,
        traceparent_of: Callable[[str], str | None],
        *,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self._traceparent_of = traceparent_of
        self._tracer = trace.get_tracer("device_change.callbacks", tracer_provider=tracer_provider)

    @contextmanager
    def storing(self, request_ids: Collection[str], callbacks: int) -> Iterator[None]:
        shown = list(itertools.islice(request_ids, self.MAX_LINKS))
        links = [link for request_id in shown if (link := self._link(request_id)) is not None]
        with self._tracer.start_as_current_span(
            "store thingspace callbacks",
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                "thingspace.request_ids": shown,
                "fleetops.callbacks": callbacks,
            },
        ):
            yield

    def _link(self, request_id: str) -> trace.Link | None:
        try:
            traceparent = self._traceparent_of(request_id)
        except Exception:  # a trace is not worth a callback: store it unlinked
            log.warning("no trace context for carrier request", request_id=request_id)
            return None
        return _link_to(traceparent) if traceparent else None


@functools.lru_cache(maxsize=4096)
def _link_to(traceparent: str) -> trace.Link | None:
    """Parsed once per carrier request, not once per group."""
    return link_from(traceparent)


@dataclass
class StaticCarrierDirectory:
    accounts: dict[str, CarrierAccount]

    def for_tenant(self, tenant: str) -> CarrierAccount:
        try:
            return self.accounts[tenant]
        except KeyError:
            raise LookupError(f"tenant {tenant} has no carrier account configured") from None


@dataclass
class Container:
    settings: DeviceChangeSettings
    engine: Engine
    broker: dramatiq.Broker
    uow_factory: SqlAlchemyUnitOfWorkFactory
    relay: OutboxRelay
    delivery_log: SqlDeliveryLog
    carriers: StaticCarrierDirectory
    submission: BulkChangeSubmission
    sender: CarrierBatchSender
    poller: CarrierBatchPoller
    cancellation: BulkChangeCancellation
    inventory_sync: InventorySync
    callback_intake: CarrierCallbackIntake
    callback_settlement: CallbackSettlement
    tokens: TokenService
    _traceparents: dict[str, str | None] = field(default_factory=dict)
    _last_wake: float = 0.0
    # False in a process that stores callbacks but runs no worker (`receive-callbacks` on the
    # in-process broker): the settling process's housekeeper wakes its own settler
    wakes_settler: bool = True

    def request_traceparent(self, request_id: str) -> str | None:
        """The trace context of the carrier call that got this request id (cached)."""
        if request_id not in self._traceparents:
            with self.uow_factory.reader() as uow:
                found = uow.bulk_changes.traceparent_for_request(request_id)
            if found is None:
                return None
            if len(self._traceparents) > 50_000:
                self._traceparents.clear()
            self._traceparents[request_id] = found
        return self._traceparents[request_id]

    def replay_dead_letter(self, dead_letter_id: int) -> dict[str, Any] | None:
        row = self.delivery_log.get_dead_letter(dead_letter_id)
        if row is None:
            return None
        replay(self.broker, row["payload"])
        self.delivery_log.mark_replayed(dead_letter_id)
        return self.delivery_log.get_dead_letter(dead_letter_id)

    def wake_settler(self) -> None:
        if not self.wakes_settler:
            return
        # Coalesce: one settle message per 100 ms is plenty (each drains the inbox, a
        # batch per transaction); the housekeeper sweep catches any leftovers.
        now = time.monotonic()
        if now - self._last_wake < 0.1:
            return
        self._last_wake = now
        self.broker.get_actor(SETTLE_CALLBACKS).send()


def build_carrier_account(
    settings: DeviceChangeSettings, engine: Engine, tenant: str, account_name: str
) -> CarrierAccount:
    ts = settings.thingspace.model_copy(update={"account_name": account_name})
    gateway: CarrierGateway = ThingSpaceCarrierGateway(ts)
    limiter: RateLimiter = SqlRateLimiter(
        engine, key=f"thingspace:{ts.client_id}", rate_per_s=settings.carrier_rate_limit_per_s
    )
    return CarrierAccount(
        tenant=tenant, account_name=account_name, gateway=gateway, rate_limiter=limiter
    )


def bootstrap(
    settings: DeviceChangeSettings | None = None,
    *,
    carriers: StaticCarrierDirectory | None = None,
    broker: dramatiq.Broker | None = None,
) -> Container:
    """Wire everything; no network call happens here."""
    settings = settings or DeviceChangeSettings()
    engine = make_engine(settings.database_url)
    delivery_log = SqlDeliveryLog(engine)
    broker = broker or make_broker(
        settings.broker_url,
        middleware_extra=[DeliveryLimit(delivery_log, max_deliveries=settings.max_deliveries)],
    )
    relay_ref: dict[str, OutboxRelay] = {}

    def flush_outbox() -> None:
        relay_ref["relay"].flush()

    uow_factory = SqlAlchemyUnitOfWorkFactory(
        engine, on_commit=flush_outbox, traceparent=OtelTraceContext().current_traceparent
    )

    def send(actor: str, payload: dict[str, Any], delay_ms: int) -> None:
        broker.get_actor(actor).send_with_options(kwargs=payload, delay=delay_ms or None)

    relay = OutboxRelay(engine, send)
    relay_ref["relay"] = relay
    directory = carriers or StaticCarrierDirectory(
        {
            tenant: build_carrier_account(settings, engine, tenant, account)
            for tenant, account in settings.tenant_accounts.items()
        }
    )
    clock = SystemClock()
    retry = RetryPolicy(
        max_send_attempts=settings.max_send_attempts,
        base_delay_s=settings.retry_base_delay_s,
        reconcile_delay_s=settings.reconcile_delay_s,
        first_poll_after_s=settings.first_poll_after_s,
    )
    # One limit for the process: senders and pollers draw on the same memory.
    in_flight = DevicesInFlight(settings.max_devices_in_flight)
    container = Container(
        settings=settings,
        engine=engine,
        broker=broker,
        uow_factory=uow_factory,
        relay=relay,
        delivery_log=delivery_log,
        carriers=directory,
        submission=BulkChangeSubmission(
            uow_factory=uow_factory,
            clock=clock,
            policy=SubmissionPolicy(max_devices_per_request=settings.max_devices_per_request),
        ),
        sender=CarrierBatchSender(
            uow_factory=uow_factory,
            carriers=directory,
            clock=clock,
            trace=OtelTraceContext(),
            retry=retry,
            in_flight=in_flight,
        ),
        poller=CarrierBatchPoller(
            uow_factory=uow_factory,
            carriers=directory,
            clock=clock,
            retry=retry,
            in_flight=in_flight,
        ),
        cancellation=BulkChangeCancellation(uow_factory=uow_factory, clock=clock),
        inventory_sync=InventorySync(uow_factory=uow_factory, carriers=directory),
        # The container is what coalesces wake-ups; it exists by the time a callback arrives.
        callback_intake=CarrierCallbackIntake(
            uow_factory=uow_factory,
            wake_settler=lambda: container.wake_settler(),
            tracing=OtelCallbackTracing(lambda request: container.request_traceparent(request)),
        ),
        callback_settlement=CallbackSettlement(
            uow_factory=uow_factory, clock=clock, batch_size=settings.callback_settle_batch
        ),
        tokens=TokenService(
            settings.jwt_secret, issuer=settings.jwt_issuer, audience=settings.jwt_audience
        ),
    )
    from device_change.entrypoints.workers import declare_actors

    declare_actors(broker, container)
    return container


class Housekeeper:
    """Background sweeps each process runs: unsent outbox rows, unsettled callbacks."""

    def __init__(self, container: Container, *, every_s: float = 0.5) -> None:
        self._c = container
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="housekeeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import structlog

        log = structlog.get_logger("housekeeper")
        while not self._stop.wait(self._every):
            for task in (self._c.relay.flush, self._c.wake_settler):
                try:
                    task()
                except Exception:  # keep sweeping; the next round retries
                    log.exception("housekeeping task failed", task=getattr(task, "__name__", "?"))
