"""Bulk-change request bodies read as streams, so 200,000 devices never sit in memory at once.

The body is spooled to a temporary file (in memory up to 1 MiB, on disk beyond), checked in
one streaming pass that reports every malformed field the way FastAPI's own validation
would, then handed to the use case as `RequestedDevices`: each pass over them parses the
file afresh, one device at a time. The same holds for CSV uploads, which Starlette has
already spooled.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from tempfile import SpooledTemporaryFile
from typing import IO, Any

import ijson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from device_change.app.errors import InvalidRequest
from device_change.app.submit import MAX_DEVICES_PER_BULK_CHANGE, DeviceInput
from device_change.domain.changes import ChangeType
from device_change.entrypoints.api.schemas import DeviceRow
from fleetops_common.problems import Problem

MAX_BODY_BYTES = 64 * 2**20
SPOOL_IN_MEMORY_BYTES = 2**20
MAX_REPORTED_ERRORS = 100
CSV_COLUMNS = frozenset({"iccid", "msisdn", "imei", "new_iccid", "new_imei"})
# The order in which pydantic would report the request's fields.
_FIELD_ORDER = {"change_type": 0, "devices": 1, "params": 2, "dry_run": 3}


class BulkChangeEnvelope(BaseModel):
    """Everything of a bulk-change request but its devices, validated as one model."""

    model_config = ConfigDict(extra="forbid")

    change_type: ChangeType
    params: dict[str, Any] = Field(default_factory=dict)
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class BulkChangeBody:
    change_type: ChangeType
    params: dict[str, Any]
    dry_run: bool
    devices: SpooledDevices


class SpooledDevices:
    """The devices of a spooled request body, parsed afresh from the file on every pass."""

    def __init__(
        self, file: IO[bytes], count: int, read: Callable[[IO[bytes]], Iterator[DeviceInput]]
    ) -> None:
        self._file = file
        self._count = count
        self._read = read

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[DeviceInput]:
        return self._read(self._file)


def _json_devices(body: IO[bytes]) -> Iterator[DeviceInput]:
    body.seek(0)
    for row in ijson.items(body, "devices.item"):
        yield DeviceInput(**row)  # shape checked by read_bulk_change_body


def _csv_devices(file: IO[bytes]) -> Iterator[DeviceInput]:
    for _, values in _csv_rows(file):
        yield DeviceInput(**values)


async def spool_body(request: Request) -> SpooledTemporaryFile[bytes]:
    """The request body in a temporary file, refused with 413 beyond MAX_BODY_BYTES."""
    content_type = request.headers.get("content-type", "application/json").lower()
    media_type = content_type.split(";")[0].strip()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise Problem(
            status=415,
            title="Unsupported media type",
            detail=f"send the bulk change as application/json, not {media_type}; "
            "for a CSV file use POST /v1/bulk-changes/csv",
            type_="unsupported-media-type",
        )
    # Handed to the caller, which closes it.
    spooled: SpooledTemporaryFile[bytes] = SpooledTemporaryFile(  # noqa: SIM115
        max_size=SPOOL_IN_MEMORY_BYTES
    )
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            spooled.close()
            raise Problem(
                status=413,
                title="Request body too large",
                detail=f"a bulk change's body may be at most {MAX_BODY_BYTES // 2**20} MiB; "
                f"split it (at most {MAX_DEVICES_PER_BULK_CHANGE} devices each)",
                type_="payload-too-large",
            )
        spooled.write(chunk)
    spooled.seek(0)
    return spooled


def read_bulk_change_body(body: IO[bytes]) -> BulkChangeBody:
    """Check the whole body in one streaming pass; raise every problem found at once."""
    errors: list[dict[str, Any]] = []
    envelope: dict[str, Any] = {}
    count: int | None = None
    events = ijson.parse(body, use_float=True)
    try:
        _, event, value = next(events, ("", "eof", None))
        if event != "start_map":
            raise RequestValidationError(
                [
                    {
                        "type": "model_attributes_type",
                        "loc": ("body",),
                        "msg": "Input should be a valid dictionary or object to extract fields "
                        "from",
                        "input": None,
                    }
                ]
            )
        for prefix, event, value in events:
            if event == "end_map" and prefix == "":
                break
            key = value  # a map_key at the top level
            _, event, value = next(events)
            if key in envelope or (key == "devices" and count is not None):
                errors.append(_error(("body", key), "is given more than once", "duplicate_key"))
                _take_value(events, event, value)
            elif key == "devices":
                count = _check_devices(events, event, value, errors)
            else:
                envelope[key] = _take_value(events, event, value)
        for _ in events:
            pass  # anything after the object is a syntax error ijson reports here
    except ijson.JSONError as exc:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body",),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": str(exc)},
                }
            ]
        ) from None
    try:
        parsed = BulkChangeEnvelope.model_validate(envelope)
    except ValidationError as exc:
        errors += [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        parsed = None
    if count is None:
        errors.append(_error(("body", "devices"), "Field required", "missing"))
    if errors:
        errors.sort(
            key=lambda e: _FIELD_ORDER.get(str(e["loc"][1]) if len(e["loc"]) > 1 else "", 9)
        )
        raise RequestValidationError(errors[:MAX_REPORTED_ERRORS])
    assert parsed is not None and count is not None
    return BulkChangeBody(
        change_type=parsed.change_type,
        params=parsed.params,
        dry_run=parsed.dry_run,
        devices=SpooledDevices(body, count, _json_devices),
    )


def _check_devices(
    events: Iterator[tuple[str, str, Any]], event: str, value: Any, errors: list[dict[str, Any]]
) -> int:
    """Validate the `devices` array item by item as it streams past; return its length."""
    if event != "start_array":
        _take_value(events, event, value)
        errors.append(_error(("body", "devices"), "Input should be a valid list", "list_type"))
        return 0
    count = 0
    for _, event, value in events:
        if event == "end_array":
            break
        row = _take_value(events, event, value)
        if count < MAX_DEVICES_PER_BULK_CHANGE and len(errors) < MAX_REPORTED_ERRORS:
            try:
                DeviceRow.model_validate(row)
            except ValidationError as exc:
                errors += [
                    {**e, "loc": ("body", "devices", count, *e["loc"])}
                    for e in exc.errors(include_url=False)
                ]
        count += 1
    if count == 0:
        errors.append(
            _error(
                ("body", "devices"),
                "List should have at least 1 item after validation, not 0",
                "too_short",
            )
        )
    elif count > MAX_DEVICES_PER_BULK_CHANGE:
        errors.append(
            _error(
                ("body", "devices"),
                f"List should have at most {MAX_DEVICES_PER_BULK_CHANGE} items after "
                f"validation, not {count}",
                "too_long",
            )
        )
    return count


def _take_value(events: Iterator[tuple[str, str, Any]], event: str, value: Any) -> Any:
    """The whole JSON value that starts with this event, built from the events after it."""
    if event not in ("start_map", "start_array"):
        return value
    builder = ijson.ObjectBuilder()
    builder.event(event, value)
    depth = 1
    for _, event, value in events:
        builder.event(event, value)
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                break
    return builder.value


def _error(loc: tuple[Any, ...], msg: str, type_: str) -> dict[str, Any]:
    return {"type": type_, "loc": loc, "msg": msg, "input": None}


# ---- CSV -----------------------------------------------------------------------------


def read_csv_devices(file: IO[bytes]) -> SpooledDevices:
    """Check a spooled CSV upload in one pass: a header naming known columns, then rows."""
    count = sum(1 for _ in _csv_rows(file))
    if not count:
        raise InvalidRequest("file", "has a header but no device rows")
    return SpooledDevices(file, count, _csv_devices)


def _csv_rows(file: IO[bytes]) -> Iterator[tuple[int, Mapping[str, str | None]]]:
    """(row number, values by column) of each non-empty row; the header is row 1."""
    file.seek(0)
    reader = csv.reader(codecs.iterdecode(file, "utf-8-sig"))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        if not header:
            raise InvalidRequest("file", "is empty; the first row must name the columns")
        unknown = [h for h in header if h not in CSV_COLUMNS]
        if unknown:
            raise InvalidRequest(
                "file", f"unknown column(s) {unknown}; allowed: {sorted(CSV_COLUMNS)}"
            )
        for row_no, row in enumerate(reader, start=2):
            if len(row) > len(header):
                raise InvalidRequest("file", f"row {row_no} has more values than the header")
            values = {h: (v.strip() or None) for h, v in zip(header, row, strict=False)}
            if any(values.values()):
                yield row_no, values
    except UnicodeDecodeError:
        raise InvalidRequest("file", "must be UTF-8 text") from None
    except csv.Error as exc:
        raise InvalidRequest("file", f"is not valid CSV: {exc}") from None
