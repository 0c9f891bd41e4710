"""The public JSON shapes of the device-change API (pydantic lives only at this edge)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from device_change.domain.bulk_change import BulkChangeStatus, LineStatus
from device_change.domain.changes import ChangeType
from device_change.domain.device import DeviceStatus


class DeviceRow(BaseModel):
    """One device of a bulk change. `iccid` names it; `msisdn` may name it for swaps."""

    model_config = ConfigDict(extra="forbid")

    iccid: str | None = Field(default=None, examples=["89148000000000000019"])
    msisdn: str | None = None
    imei: str | None = Field(default=None, description="For activation checks")
    new_iccid: str | None = Field(default=None, description="change_iccid_imei only")
    new_imei: str | None = Field(default=None, description="change_iccid_imei only")


class BulkChangeRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "change_type": "update_device_status",
                    "devices": [{"iccid": "89148000000000000019"}],
                    "params": {"target_status": "SUSPENDED"},
                    "dry_run": False,
                }
            ]
        },
    )

    change_type: ChangeType
    devices: list[DeviceRow] = Field(min_length=1, max_length=200_000)
    params: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "update_device_status: target_status (ACTIVE, SUSPENDED, DEACTIVATED, "
            "PENDING_ACTIVATION, INVENTORY), rate_plan + zip_code (+ place_of_use) to activate, "
            "reason_code (FF) and etf_waiver to deactivate. change_carrier_rate_plan: "
            "rate_plan, effective_at. change_iccid_imei: none (new ids per device)."
        ),
    )
    dry_run: bool = False


class LineVerdictOut(BaseModel):
    iccid: str
    valid: bool
    reason: str | None = None
    action: str | None = None


class DryRunOut(BaseModel):
    valid: int
    invalid: int
    lines: list[LineVerdictOut]


class Counts(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    PENDING: int = 0
    SUBMITTED: int = 0
    SUCCEEDED: int = 0
    FAILED: int = 0
    CANCELLED: int = 0


class BulkChangeOut(BaseModel):
    id: str
    status: BulkChangeStatus
    change_type: ChangeType
    params: dict[str, Any]
    counts: Counts
    total: int
    submitted_by: str
    tenant: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool


class BulkChangePage(BaseModel):
    items: list[BulkChangeOut]
    next_cursor: str | None


class LineOut(BaseModel):
    seq: int
    iccid: str
    status: LineStatus
    reason: str | None
    action: str | None
    carrier_request_id: str | None
    attempts: int
    request: dict[str, Any]


class LinePage(BaseModel):
    items: list[LineOut]
    next_cursor: str | None


class DeviceOut(BaseModel):
    iccid: str
    imei: str | None
    msisdn: str | None
    status: DeviceStatus
    rate_plan: str | None
    account_name: str | None = None


class DevicePage(BaseModel):
    items: list[DeviceOut]
    next_cursor: str | None


class HistoryEntryOut(BaseModel):
    at: datetime
    action: str
    actor: str
    before: dict[str, Any]
    after: dict[str, Any]
    changed: dict[str, list[Any]] = Field(description="field -> [before, after], changed only")
    bulk_change_id: str | None
    carrier_request_id: str | None


class HistoryPage(BaseModel):
    items: list[HistoryEntryOut]
    next_cursor: str | None


class SyncOut(BaseModel):
    devices: int
    rate_plans: int
    pages: int


class RatePlanOut(BaseModel):
    code: str
    name: str
    size_kb: int | None


class CancelOut(BaseModel):
    bulk_change: BulkChangeOut
    cancelled_lines: int


class CallbackAck(BaseModel):
    accepted: int
    duplicates: int


class DeadLetterOut(BaseModel):
    id: int
    message_id: str
    queue: str
    actor: str
    reason: str
    deliveries: int
    created_at: datetime
    replayed_at: datetime | None
    payload: dict[str, Any]
