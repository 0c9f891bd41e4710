from __future__ import annotations

import pytest

from iot_sync.adapters.mqtt.topics import SignalTopic, TopicError, TopicScheme, shared
from iot_sync.app.signals import FieldMessage, FieldMessageKind, SourceKind

topics = TopicScheme()


@pytest.mark.parametrize("app", ["bms", "gps", "ssc"])
def test_telemetry_topic_round_trips_with_region_and_site(app: str) -> None:
    topic = topics.telemetry(app=app, region="eu-west", site="ber-01", device_id="BAT-7")

    assert topic == f"dt/arm/{app}/eu-west/ber-01/BAT-7"
    assert topics.parse_signal(topic) == SignalTopic(
        SourceKind(app), "BAT-7", None, region="eu-west", site="ber-01"
    )


@pytest.mark.parametrize("verb", ["authorize", "dispense_confirm", "return_confirm"])
def test_station_call_round_trips_and_its_reply_is_the_rtrn_twin(verb: str) -> None:
    call = topics.station_call("ST-1", verb)

    assert call == f"call/abs/station/ST-1/{verb}"
    assert topics.parse_signal(call) == SignalTopic(SourceKind.STATION, "ST-1", verb)
    assert topics.reply_twin(call) == f"rtrn/abs/station/ST-1/{verb}"
    assert topics.station_reply("ST-1", verb) == f"rtrn/abs/station/ST-1/{verb}"


@pytest.mark.parametrize(
    "action", ["asset_scan", "report_damage", "report_lost", "report_recovered"]
)
def test_personnel_action_round_trips_and_is_echoed(action: str) -> None:
    topic = topics.personnel_action("P-9", action)

    assert topic == f"emit/abs/personnel/P-9/{action}"
    assert topics.parse_signal(topic) == SignalTopic(SourceKind.PERSONNEL, "P-9", action)
    assert topics.personnel_echo("P-9", action) == f"echo/abs/personnel/P-9/{action}"


def test_outbound_topics_follow_the_scheme() -> None:
    assert topics.service_state("SVC-1") == "stat/abs/service/SVC-1"
    assert topics.customer_notice("C-1", "battery_issued") == "emit/abs/notify/C-1/battery_issued"
    assert topics.error("station", "ST-1") == "emit/abs/error/station/ST-1"


@pytest.mark.parametrize("bad", ["a/b", "a+", "#", "", "x\x00"])
def test_ids_that_would_break_the_topic_are_refused(bad: str) -> None:
    with pytest.raises(TopicError):
        topics.station_call(bad, "authorize")
    with pytest.raises(TopicError):
        topics.telemetry(app="bms", region="eu", site=bad, device_id="b")
    with pytest.raises(TopicError):
        topics.service_state(bad)


def test_unknown_apps_verbs_and_actions_are_refused_when_building() -> None:
    with pytest.raises(TopicError):
        topics.telemetry(app="xyz", region="eu", site="s", device_id="d")
    with pytest.raises(TopicError):
        topics.station_call("ST-1", "reboot")
    with pytest.raises(TopicError):
        topics.personnel_action("P-1", "dance")
    with pytest.raises(TopicError):
        topics.error("nobody", "x")


@pytest.mark.parametrize(
    "topic",
    [
        "dt/arm/xyz/eu/s/d",  # unknown app
        "dt/arm/bms/eu/s",  # too short
        "dt/arm/bms/eu/s/d/extra",  # too long
        "dt/arm/bms//s/d",  # empty level
        "call/abs/station/ST-1/reboot",  # unknown verb
        "emit/abs/personnel/P-1/dance",  # unknown action
        "rtrn/abs/station/ST-1/authorize",  # outbound, not a signal
        "stat/abs/service/SVC-1",
        "emit/abs/notify/C-1/x",
        "something/else",
    ],
)
def test_topics_outside_the_inbound_scheme_parse_to_none(topic: str) -> None:
    assert topics.parse_signal(topic) is None


def test_a_prefix_scopes_building_parsing_and_filters() -> None:
    scoped = TopicScheme("test-42")

    topic = scoped.station_call("ST-1", "authorize")

    assert topic == "test-42/call/abs/station/ST-1/authorize"
    assert scoped.parse_signal(topic) == SignalTopic(SourceKind.STATION, "ST-1", "authorize")
    assert scoped.parse_signal("call/abs/station/ST-1/authorize") is None
    assert TopicScheme().parse_signal(topic) is None
    assert scoped.signal_filters() == (
        "test-42/dt/arm/+/+/+/+",
        "test-42/call/abs/station/+/+",
        "test-42/emit/abs/personnel/+/+",
    )


def test_shared_subscription_wraps_the_filter_in_the_group() -> None:
    assert shared("dt/arm/+/+/+/+", "iot-sync") == "$share/iot-sync/dt/arm/+/+/+/+"
    assert shared("dt/arm/+/+/+/+", None) == "dt/arm/+/+/+/+"
    with pytest.raises(TopicError):
        shared("dt/#", "a/b")


@pytest.mark.parametrize(
    ("kind", "subject", "name", "expected"),
    [
        (FieldMessageKind.STATION_REPLY, "ST-1", "authorize", "rtrn/abs/station/ST-1/authorize"),
        (
            FieldMessageKind.PERSONNEL_ECHO,
            "P-1",
            "report_lost",
            "echo/abs/personnel/P-1/report_lost",
        ),
        (FieldMessageKind.SERVICE_STATE, "SVC-1", "", "stat/abs/service/SVC-1"),
        (
            FieldMessageKind.CUSTOMER_NOTICE,
            "C-1",
            "battery_lost",
            "emit/abs/notify/C-1/battery_lost",
        ),
        (FieldMessageKind.ERROR, "gps", "BAT-1", "emit/abs/error/gps/BAT-1"),
    ],
)
def test_each_field_message_kind_has_its_topic(
    kind: FieldMessageKind, subject: str, name: str, expected: str
) -> None:
    message = FieldMessage(kind=kind, subject=subject, name=name, data={}, message_id="m")

    assert topics.for_message(message) == expected


def test_a_reply_to_overrides_the_conventional_topic() -> None:
    message = FieldMessage(
        kind=FieldMessageKind.STATION_REPLY,
        subject="ST-1",
        name="authorize",
        data={},
        message_id="m",
        reply_to="stations/ST-1/inbox",
    )

    assert topics.for_message(message) == "stations/ST-1/inbox"
