"""Bulk-change bodies read as streams: what they yield, and the problems they name."""

import asyncio
import io
import json

import pytest
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request

from device_change.app.errors import InvalidRequest
from device_change.app.submit import DeviceInput
from device_change.domain.changes import ChangeType
from device_change.entrypoints.api import requested_devices as rd
from fleetops_common.problems import Problem

ICCID = "89148000000000000019"


def body(obj) -> io.BytesIO:
    return io.BytesIO(json.dumps(obj).encode())


def problems(raw: io.BytesIO) -> list[tuple[str, str]]:
    with pytest.raises(RequestValidationError) as err:
        rd.read_bulk_change_body(raw)
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in err.value.errors()]


def test_a_valid_body_gives_its_envelope_and_devices_readable_more_than_once():
    devices = [{"iccid": ICCID}, {"msisdn": "5550001", "new_imei": "35"}]
    parsed = rd.read_bulk_change_body(
        body(
            {
                "devices": devices,  # before the envelope: key order does not matter
                "change_type": "update_device_status",
                "params": {"target_status": "SUSPENDED", "devices": [1]},
                "dry_run": True,
            }
        )
    )
    assert parsed.change_type is ChangeType.UPDATE_DEVICE_STATUS
    assert parsed.params == {"target_status": "SUSPENDED", "devices": [1]}
    assert parsed.dry_run is True
    expected = [DeviceInput(iccid=ICCID), DeviceInput(msisdn="5550001", new_imei="35")]
    assert len(parsed.devices) == 2
    assert list(parsed.devices) == expected
    assert list(parsed.devices) == expected  # a second pass reads the body again


def test_defaults_apply_to_what_is_left_out():
    parsed = rd.read_bulk_change_body(
        body({"change_type": "change_iccid_imei", "devices": [{"iccid": ICCID}]})
    )
    assert parsed.params == {} and parsed.dry_run is False


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"change_type": "update_device_status", "devices": [', ("body", "JSON decode error")),
        (b"", ("body", "JSON decode error")),
        (b"{} []", ("body", "JSON decode error")),
        (
            b"[1, 2]",
            ("body", "Input should be a valid dictionary or object to extract fields from"),
        ),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused_as_a_whole(raw, expected):
    assert problems(io.BytesIO(raw)) == [expected]


def test_every_malformed_field_is_named_in_field_order():
    found = problems(
        body(
            {
                "devices": [{"iccid": ICCID}, {"iccid": 12, "colour": "red"}],
                "params": [],
                "change_type": "teleport",
                "urgent": True,
            }
        )
    )
    names = [name for name, _ in found]
    assert names == [
        "body.change_type",
        "body.devices.1.iccid",
        "body.devices.1.colour",
        "body.params",
        "body.urgent",
    ]
    assert ("body.devices.1.iccid", "Input should be a valid string") in found


@pytest.mark.parametrize(
    ("devices", "msg"),
    [
        ([], "List should have at least 1 item after validation, not 0"),
        ({"iccid": ICCID}, "Input should be a valid list"),
        ("8914", "Input should be a valid list"),
    ],
)
def test_devices_must_be_a_non_empty_list(devices, msg):
    found = problems(body({"change_type": "update_device_status", "devices": devices}))
    assert found == [("body.devices", msg)]


def test_devices_are_required_and_given_once():
    assert problems(body({"change_type": "update_device_status"})) == [
        ("body.devices", "Field required")
    ]
    raw = (
        b'{"change_type": "update_device_status", "devices": [{"iccid": "1"}], '
        b'"devices": [{"iccid": "2"}]}'
    )
    assert problems(io.BytesIO(raw)) == [("body.devices", "is given more than once")]


def test_too_many_devices_are_refused_without_validating_each(monkeypatch):
    monkeypatch.setattr(rd, "MAX_DEVICES_PER_BULK_CHANGE", 3)
    found = problems(body({"change_type": "update_device_status", "devices": [{"iccid": "x"}] * 5}))
    assert found == [("body.devices", "List should have at most 3 items after validation, not 5")]


def test_the_errors_listed_are_capped(monkeypatch):
    monkeypatch.setattr(rd, "MAX_REPORTED_ERRORS", 4)
    found = problems(body({"change_type": "update_device_status", "devices": [{"iccid": 1}] * 9}))
    assert [name for name, _ in found] == [f"body.devices.{n}.iccid" for n in range(4)]


# ---- spooling -----------------------------------------------------------------------


def request(chunks: list[bytes], content_type: str = "application/json") -> Request:
    messages = [
        {"type": "http.request", "body": c, "more_body": n < len(chunks) - 1}
        for n, c in enumerate(chunks)
    ]

    async def receive():
        return messages.pop(0)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/bulk-changes",
        "headers": [(b"content-type", content_type.encode())],
    }
    return Request(scope, receive)


def test_the_body_is_spooled_whole_from_its_pieces():
    spooled = asyncio.run(rd.spool_body(request([b'{"a": ', b"1}"])))
    assert spooled.read() == b'{"a": 1}'


def test_a_body_over_the_limit_is_refused_with_413(monkeypatch):
    monkeypatch.setattr(rd, "MAX_BODY_BYTES", 10)
    with pytest.raises(Problem) as err:
        asyncio.run(rd.spool_body(request([b"0123456", b"789ab"])))
    assert err.value.status == 413


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/x+json"])
def test_json_media_types_are_accepted(content_type):
    assert asyncio.run(rd.spool_body(request([b"{}"], content_type))).read() == b"{}"


def test_a_body_that_is_not_json_is_refused_with_415():
    with pytest.raises(Problem) as err:
        asyncio.run(rd.spool_body(request([b"iccid\n8914"], "text/csv")))
    assert err.value.status == 415 and "/v1/bulk-changes/csv" in str(err.value.detail)


# ---- CSV ----------------------------------------------------------------------------


def test_csv_rows_are_read_by_header_more_than_once():
    raw = "\ufeffICCID, new_imei\n8914,35\n\n ,\n8915,\n".encode()
    devices = rd.read_csv_devices(io.BytesIO(raw))
    expected = [DeviceInput(iccid="8914", new_imei="35"), DeviceInput(iccid="8915")]
    assert len(devices) == 2
    assert list(devices) == expected and list(devices) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "is empty"),
        (b"serial\n1\n", "unknown column(s) ['serial']"),
        (b"iccid\n", "has a header but no device rows"),
        (b"iccid\n1\n2,3\n", "row 3 has more values than the header"),
        (b"iccid\n\xff\xfe\n", "must be UTF-8 text"),
    ],
)
def test_a_bad_csv_names_what_is_wrong(raw, reason):
    with pytest.raises(InvalidRequest) as err:
        rd.read_csv_devices(io.BytesIO(raw))
    assert err.value.field == "file" and reason in err.value.reason
