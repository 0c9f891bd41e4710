"""The one place topics are built and read (docs/topics.md is the scheme in words).

Inbound (the field to iot-sync):
    dt/arm/{app}/{region}/{site}/{device_id}     app: bms, gps, ssc
    call/abs/station/{station_id}/{verb}         verb: authorize, dispense_confirm, return_confirm
    emit/abs/personnel/{person_id}/{action}      action: asset_scan, report_damage, report_lost,
                                                 report_recovered
Outbound (iot-sync to the field):
    rtrn/abs/station/{station_id}/{verb}         the answer to a call (3.1.1 convention; v5
                                                 callers may name a response topic instead)
    echo/abs/personnel/{person_id}/{action}      accepted or rejected, with the reason
    stat/abs/service/{service_id}                a service's current state, retained
    emit/abs/notify/{customer_id}/{event}        customer notices
    emit/abs/error/{source}/{id}                 rejected input, with the reason

A `TopicScheme` may carry a prefix (`"{prefix}/dt/arm/…"`): tests use one per test so that
they share a broker without seeing each other's messages. Production runs without one.
"""

from __future__ import annotations

from dataclasses import dataclass

from iot_sync.app.signals import FieldMessage, FieldMessageKind, SourceKind

TELEMETRY_APPS: dict[str, SourceKind] = {
    "bms": SourceKind.BMS,
    "gps": SourceKind.GPS,
    "ssc": SourceKind.SSC,
}
STATION_VERBS = frozenset({"authorize", "dispense_confirm", "return_confirm"})
PERSONNEL_ACTIONS = frozenset({"asset_scan", "report_damage", "report_lost", "report_recovered"})
ERROR_SOURCES = frozenset({"station", "personnel", "bms", "gps", "ssc", "unknown"})

_FORBIDDEN = ("/", "+", "#", "\x00")


class TopicError(ValueError):
    """A topic level that would break the scheme (empty, or holding `/`, `+`, `#`)."""


def check_level(value: str, *, what: str) -> str:
    if not value:
        raise TopicError(f"{what} is empty")
    for char in _FORBIDDEN:
        if char in value:
            raise TopicError(f"{what} {value!r} contains {char!r}")
    return value


def shared(topic_filter: str, group: str | None) -> str:
    """`$share/{group}/{filter}`: the broker gives each message to one member of the group."""
    if group is None:
        return topic_filter
    return f"$share/{check_level(group, what='shared subscription group')}/{topic_filter}"


@dataclass(frozen=True, slots=True)
class SignalTopic:
    """What an inbound topic says about its sender."""

    source_kind: SourceKind
    source_id: str
    verb: str | None  # None on dt/ topics: the envelope's `type` says telemetry or heartbeat
    region: str | None = None
    site: str | None = None


class TopicScheme:
    def __init__(self, prefix: str = "") -> None:
        if prefix:
            prefix = check_level(prefix.strip("/"), what="topic prefix") + "/"
        self.prefix = prefix

    # inbound ---------------------------------------------------------------------------
    def telemetry(self, *, app: str, region: str, site: str, device_id: str) -> str:
        if app not in TELEMETRY_APPS:
            raise TopicError(f"app {app!r} is not one of {sorted(TELEMETRY_APPS)}")
        return (
            f"{self.prefix}dt/arm/{app}/{check_level(region, what='region')}/"
            f"{check_level(site, what='site')}/{check_level(device_id, what='device id')}"
        )

    def station_call(self, station_id: str, verb: str) -> str:
        _known(verb, STATION_VERBS, "station verb")
        return f"{self.prefix}call/abs/station/{check_level(station_id, what='station id')}/{verb}"

    def personnel_action(self, person_id: str, action: str) -> str:
        _known(action, PERSONNEL_ACTIONS, "personnel action")
        return (
            f"{self.prefix}emit/abs/personnel/{check_level(person_id, what='person id')}/{action}"
        )

    def signal_filters(self) -> tuple[str, ...]:
        """The subscriptions of the consumer: every inbound family."""
        p = self.prefix
        return (f"{p}dt/arm/+/+/+/+", f"{p}call/abs/station/+/+", f"{p}emit/abs/personnel/+/+")

    # outbound --------------------------------------------------------------------------
    def station_reply(self, station_id: str, verb: str) -> str:
        _known(verb, STATION_VERBS, "station verb")
        return f"{self.prefix}rtrn/abs/station/{check_level(station_id, what='station id')}/{verb}"

    def personnel_echo(self, person_id: str, action: str) -> str:
        _known(action, PERSONNEL_ACTIONS, "personnel action")
        return (
            f"{self.prefix}echo/abs/personnel/{check_level(person_id, what='person id')}/{action}"
        )

    def service_state(self, service_id: str) -> str:
        return f"{self.prefix}stat/abs/service/{check_level(service_id, what='service id')}"

    def customer_notice(self, customer_id: str, event: str) -> str:
        return (
            f"{self.prefix}emit/abs/notify/{check_level(customer_id, what='customer id')}/"
            f"{check_level(event, what='event')}"
        )

    def error(self, source: str, sender_id: str) -> str:
        _known(source, ERROR_SOURCES, "error source")
        return f"{self.prefix}emit/abs/error/{source}/{check_level(sender_id, what='sender id')}"

    def reply_twin(self, call_topic: str) -> str:
        """`call/abs/station/{id}/{verb}` → `rtrn/abs/station/{id}/{verb}` (3.1.1 convention)."""
        parsed = self.parse_signal(call_topic)
        if parsed is None or parsed.source_kind is not SourceKind.STATION or parsed.verb is None:
            raise TopicError(f"{call_topic!r} is not a station call topic")
        return self.station_reply(parsed.source_id, parsed.verb)

    def for_message(self, message: FieldMessage) -> str:
        if message.reply_to is not None:
            return message.reply_to
        kind = message.kind
        if kind is FieldMessageKind.STATION_REPLY:
            return self.station_reply(message.subject, message.name)
        if kind is FieldMessageKind.PERSONNEL_ECHO:
            return self.personnel_echo(message.subject, message.name)
        if kind is FieldMessageKind.SERVICE_STATE:
            return self.service_state(message.subject)
        if kind is FieldMessageKind.CUSTOMER_NOTICE:
            return self.customer_notice(message.subject, message.name)
        return self.error(message.subject, message.name)

    # reading ---------------------------------------------------------------------------
    def parse_signal(self, topic: str) -> SignalTopic | None:
        """The sender an inbound topic names, or None when the topic is not in the scheme."""
        if self.prefix:
            if not topic.startswith(self.prefix):
                return None
            topic = topic[len(self.prefix) :]
        levels = topic.split("/")
        if not all(levels):
            return None
        n = len(levels)
        head = levels[0]
        if head == "dt" and n == 6 and levels[1] == "arm":
            kind = TELEMETRY_APPS.get(levels[2])
            if kind is None:
                return None
            return SignalTopic(kind, levels[5], None, region=levels[3], site=levels[4])
        if n != 5 or levels[1] != "abs":
            return None
        if head == "call" and levels[2] == "station" and levels[4] in STATION_VERBS:
            return SignalTopic(SourceKind.STATION, levels[3], levels[4])
        if head == "emit" and levels[2] == "personnel" and levels[4] in PERSONNEL_ACTIONS:
            return SignalTopic(SourceKind.PERSONNEL, levels[3], levels[4])
        return None


def _known(value: str, allowed: frozenset[str], what: str) -> None:
    if value not in allowed:
        raise TopicError(f"{what} {value!r} is not one of {sorted(allowed)}")
