"""The one place where iot-sync's ports are wired to adapters, from settings.

No network call and no database statement happens here: `bootstrap` only builds objects.
The MQTT field publisher and the ARM gateway are parameters, so tests and other processes
plug in their own; by default they are the MQTT and HTTP adapters built from settings.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from opentelemetry import context as otel_context
from sqlalchemy.engine import Engine

from fleetops_common.auth import TokenService
from fleetops_common.db import is_postgres, libpq
from fleetops_common.telemetry import context_from
from iot_sync.adapters.db.customers import SqlCustomerDirectory
from iot_sync.adapters.db.engine import make_engine
from iot_sync.adapters.db.outbox_wake import OutboxListener
from iot_sync.adapters.db.settlements import SqlSettlements
from iot_sync.adapters.db.uow import SqlAlchemyUnitOfWorkFactory
from iot_sync.adapters.mqtt.envelope import EnvelopeCodec
from iot_sync.adapters.mqtt.topics import TopicScheme
from iot_sync.adapters.notify.webhook import LoggingNotifier, WebhookNotifier
from iot_sync.app.arm import ArmGateway
from iot_sync.app.delivery import OutboxDelivery, RetryPolicy
from iot_sync.app.ingest_stats import IngestStats
from iot_sync.app.inventory import ReconcileWithArm, SyncArmInventory
from iot_sync.app.loss import LossDetection
from iot_sync.app.ports import Clock, CustomerDirectory, FieldPublisher, Notifier
from iot_sync.app.process import BatchReport, OrderingPolicy, ProcessSignalBatch
from iot_sync.app.service_requests import ServiceRequests
from iot_sync.app.signals import MalformedSignal, Signal
from iot_sync.domain.evidence import AllowedArea, LossPolicy
from iot_sync.settings import IotSyncSettings

log = logging.getLogger(__name__)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class OtelTraceContext:
    """ARM calls, webhooks and settlements made by the relay continue the signal's trace."""

    @contextmanager
    def resume(self, traceparent: str | None) -> Iterator[None]:
        if not traceparent:
            yield
            return
        token = otel_context.attach(context_from({"traceparent": traceparent}))
        try:
            yield
        finally:
            otel_context.detach(token)


@dataclass
class Container:
    settings: IotSyncSettings
    engine: Engine
    uow_factory: SqlAlchemyUnitOfWorkFactory
    customers: CustomerDirectory
    settlements: SqlSettlements
    publisher: FieldPublisher
    arm: ArmGateway
    notifier: Notifier
    codec: EnvelopeCodec
    signals: ProcessSignalBatch
    delivery: OutboxDelivery
    loss_detection: LossDetection
    service_requests: ServiceRequests
    inventory_sync: SyncArmInventory
    reconciliation: ReconcileWithArm
    tokens: TokenService
    outbox_written: threading.Event = field(default_factory=threading.Event)
    # PostgreSQL: wakes the relay on commits of other processes too (not started here)
    outbox_listener: OutboxListener | None = None
    ingest: IngestStats = field(default_factory=IngestStats)

    def handle_batch(self, batch: Sequence[Signal | MalformedSignal]) -> BatchReport:
        """Apply a batch in one transaction; returns once committed, with each outcome."""
        return self.signals.handle(batch)

    def consume(self, batch: Sequence[Signal | MalformedSignal]) -> None:
        """The MQTT consumer's handler: its return means "committed, acknowledge them"."""
        report = self.signals.handle(batch)
        self.ingest.record(batch, committed_at=datetime.now(UTC), transitions=report.transitions)


def allowed_areas(settings: IotSyncSettings) -> dict[str, AllowedArea]:
    return {region: AllowedArea(*box) for region, box in settings.allowed_areas.items()}


def bootstrap(
    settings: IotSyncSettings | None = None,
    *,
    publisher: FieldPublisher | None = None,
    arm: ArmGateway | None = None,
    notifier: Notifier | None = None,
    customers: CustomerDirectory | None = None,
    clock: Clock | None = None,
) -> Container:
    """Wire everything. Given collaborators replace the ones built from settings."""
    settings = settings or IotSyncSettings()
    engine = make_engine(settings.database_url)
    wake = threading.Event()
    uow_factory = SqlAlchemyUnitOfWorkFactory(engine, on_commit=wake.set)
    clock = clock or SystemClock()
    customers = customers or SqlCustomerDirectory(engine)
    settlements = SqlSettlements(engine)
    if publisher is None:
        from iot_sync.adapters.mqtt.publisher import MqttFieldPublisher

        publisher = MqttFieldPublisher(settings.mqtt)
    if arm is None:
        from iot_sync.adapters.arm.gateway import HttpArmGateway

        arm = HttpArmGateway(settings.arm)
    if notifier is None:
        notifier = (
            WebhookNotifier(
                settings.webhook_url,
                secret=settings.webhook_secret or None,
                timeout_s=settings.webhook_timeout_s,
            )
            if settings.webhook_url
            else LoggingNotifier()
        )
    # HTTP callers name topics as in the protocol sheet, whatever prefix the broker uses.
    topics = TopicScheme()
    return Container(
        settings=settings,
        engine=engine,
        uow_factory=uow_factory,
        customers=customers,
        settlements=settlements,
        publisher=publisher,
        arm=arm,
        notifier=notifier,
        codec=EnvelopeCodec(
            topics=topics, max_payload_bytes=settings.mqtt.max_payload_bytes, v5=False
        ),
        signals=ProcessSignalBatch(
            uow_factory=uow_factory,
            clock=clock,
            customers=customers,
            ordering=OrderingPolicy(hold_for=timedelta(seconds=settings.hold_for_s)),
            reservation_ttl=timedelta(seconds=settings.reservation_ttl_s),
            allowed_areas=allowed_areas(settings),
        ),
        delivery=OutboxDelivery(
            uow_factory=uow_factory,
            clock=clock,
            publisher=publisher,
            arm=arm,
            notifier=notifier,
            settlements=settlements,
            retry=RetryPolicy(max_attempts=settings.outbox_max_attempts),
            trace=OtelTraceContext(),
        ),
        loss_detection=LossDetection(
            uow_factory=uow_factory,
            clock=clock,
            policy=LossPolicy(
                silence_timeout=timedelta(seconds=settings.loss_silence_timeout_s),
                dwell=timedelta(seconds=settings.loss_dwell_s),
            ),
        ),
        service_requests=ServiceRequests(uow_factory=uow_factory, clock=clock),
        inventory_sync=SyncArmInventory(uow_factory=uow_factory, arm=arm),
        reconciliation=ReconcileWithArm(uow_factory=uow_factory, arm=arm),
        tokens=TokenService(
            settings.jwt_secret, issuer=settings.jwt_issuer, audience=settings.jwt_audience
        ),
        outbox_written=wake,
        outbox_listener=OutboxListener(libpq(engine.url), wake) if is_postgres(engine) else None,
    )


class BackgroundWork:
    """What runs beside the consumer and the API: the outbox relay (woken by each commit
    that wrote events, and on a timer), loss detection, and the release of held messages."""

    def __init__(self, container: Container, *, relay: bool = True, jobs: bool = True) -> None:
        """The API process: the relay and the jobs (loss detection, held messages), with or
        without the consumer beside them. `iot-sync consume` runs none of it (`relay=False,
        jobs=False`) unless told to relay: on PostgreSQL its commits wake the API process's
        relay through the outbox listener."""
        self._c = container
        self._stop = threading.Event()
        s = container.settings
        self._threads: list[threading.Thread] = []
        self._listener = container.outbox_listener if relay else None
        if relay:
            self._threads.append(
                threading.Thread(target=self._relay, name="outbox-relay", daemon=True)
            )
        if not jobs:
            return
        self._threads += [
            threading.Thread(
                target=self._every,
                args=(s.loss_check_every_s, container.loss_detection.run),
                name="loss-detection",
                daemon=True,
            ),
            threading.Thread(
                target=self._every,
                args=(s.release_held_every_s, container.signals.release_overdue),
                name="held-release",
                daemon=True,
            ),
        ]

    def start(self) -> None:
        if self._listener is not None:
            self._listener.start()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._c.outbox_written.set()
        if self._listener is not None:
            self._listener.stop()
        for thread in self._threads:
            thread.join(timeout=5)

    def _relay(self) -> None:
        wake, every = self._c.outbox_written, self._c.settings.relay_every_s
        while not self._stop.is_set():
            wake.wait(every)
            wake.clear()
            try:
                while self._c.delivery.deliver_pending().delivered and not self._stop.is_set():
                    pass
            except Exception:  # keep relaying; the next round retries
                log.exception("outbox relay round failed")

    def _every(self, seconds: float, task: Callable[[], object]) -> None:
        while not self._stop.wait(seconds):
            try:
                task()
            except Exception:
                log.exception("background task failed: %s", getattr(task, "__qualname__", task))
