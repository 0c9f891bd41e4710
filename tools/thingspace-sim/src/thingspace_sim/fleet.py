"""A deterministic seeded fleet: same seed and size, same devices."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any


def luhn_check_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


PLANS: list[dict[str, Any]] = [
    {
        "name": "M2M 4G 1 GB",
        "code": "M2M_4G_1GB",
        "sizeKb": 1_048_576,
        "carrierServicePlanCode": "84777",
    },
    {
        "name": "M2M 4G 5 GB",
        "code": "M2M_4G_5GB",
        "sizeKb": 5_242_880,
        "carrierServicePlanCode": "84778",
    },
    {
        "name": "M2M 4G Unlimited",
        "code": "M2M_4G_UNL",
        "sizeKb": 0,
        "carrierServicePlanCode": "84779",
    },
    {
        "name": "IoT LTE-M 100 MB",
        "code": "IOT_LTE_M_100MB",
        "sizeKb": 102_400,
        "carrierServicePlanCode": "91001",
    },
    {
        "name": "IoT NB-IoT 10 MB",
        "code": "IOT_NBIOT_10MB",
        "sizeKb": 10_240,
        "carrierServicePlanCode": "91002",
    },
]


@dataclass
class SimDevice:
    iccid: str
    imei: str
    msisdn: str | None
    state: str  # "pre-active", "active", "suspend", "deactive"
    plan: str
    account: str
    created_at: str
    pending_request: str | None = None
    pending_state: str | None = None
    applied_changes: int = 0
    actions_by_day: dict[str, int] = field(default_factory=dict)
    plan_changes_by_month: dict[str, int] = field(default_factory=dict)


def make_iccid(n: int) -> str:
    body = f"8914800000{n:09d}"
    return body + luhn_check_digit(body)


def make_imei(n: int) -> str:
    body = f"35{n:012d}"
    return body + luhn_check_digit(body)


def seed_fleet(size: int, *, seed: int, account: str) -> dict[str, SimDevice]:
    rng = random.Random(seed)
    devices: dict[str, SimDevice] = {}
    for n in range(1, size + 1):
        roll = rng.random()
        state = (
            "active"
            if roll < 0.80
            else "suspend"
            if roll < 0.90
            else "pre-active"
            if roll < 0.95
            else "deactive"
        )
        iccid = make_iccid(n)
        devices[iccid] = SimDevice(
            iccid=iccid,
            imei=make_imei(n),
            msisdn=None if state == "pre-active" else f"5{n:09d}",
            state=state,
            plan=str(PLANS[n % len(PLANS)]["code"]),
            account=account,
            created_at="2025-01-01T00:00:00Z",
        )
    return devices
