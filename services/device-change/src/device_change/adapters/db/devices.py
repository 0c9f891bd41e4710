"""Devices: rows <-> `Device`; the carrier inventory sync writes here in bulk."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection, RowMapping

from device_change.adapters.db import tables as t
from device_change.adapters.db._shared import (
    chunks,
    decode_cursor,
    encode_cursor,
    insert_for,
    now,
    unique,
)
from device_change.app.ports import CarrierDeviceState, Page
from device_change.domain.device import Device, DeviceStatus
from fleetops_common.db import is_postgres

DeviceIds = dict[tuple[str, str], int]
"""(tenant, ICCID) -> the device's row id, as a unit of work's updates left them."""

_UPDATABLE = frozenset({"status", "rate_plan", "iccid", "imei", "msisdn"})


def _device(r: RowMapping) -> Device:
    return Device(
        tenant=r["tenant"],
        iccid=r["iccid"],
        imei=r["imei"],
        msisdn=r["msisdn"],
        status=DeviceStatus(r["status"]),
        rate_plan=r["rate_plan"],
        account_name=r["account_name"],
    )


class SqlAlchemyDeviceRepository:
    def __init__(self, conn: Connection, *, updated_ids: DeviceIds | None = None) -> None:
        self.conn = conn
        self._updated_ids = updated_ids if updated_ids is not None else {}

    def get_many(self, tenant: str, iccids: Sequence[str]) -> dict[str, Device]:
        out: dict[str, Device] = {}
        for chunk in chunks(unique(iccids)):
            q = select(t.devices).where(t.devices.c.tenant == tenant, t.devices.c.iccid.in_(chunk))
            out.update((r["iccid"], _device(r)) for r in self.conn.execute(q).mappings())
        return out

    def get_many_by_msisdn(self, tenant: str, msisdns: Sequence[str]) -> dict[str, Device]:
        out: dict[str, Device] = {}
        for chunk in chunks(unique(msisdns)):
            q = select(t.devices).where(t.devices.c.tenant == tenant, t.devices.c.msisdn.in_(chunk))
            out.update((r["msisdn"], _device(r)) for r in self.conn.execute(q).mappings())
        return out

    def identifiers_in_use(self, values: Sequence[str]) -> frozenset[str]:
        found: set[str] = set()
        for chunk in chunks(unique(values)):
            for col in (t.devices.c.iccid, t.devices.c.imei):
                found.update(v for (v,) in self.conn.execute(select(col).where(col.in_(chunk))))
        return frozenset(found)

    def update(self, tenant: str, iccid: str, changes: Mapping[str, Any]) -> Device | None:
        return self.update_many(tenant, {iccid: changes}).get(iccid)

    def update_many(
        self, tenant: str, changes: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, Device]:
        """One SELECT per chunk and one executemany per shape of change, not two per device."""
        rows: dict[str, RowMapping] = {}
        for chunk in chunks(list(changes)):
            q = select(t.devices).where(t.devices.c.tenant == tenant, t.devices.c.iccid.in_(chunk))
            if is_postgres(self.conn):
                q = q.with_for_update()  # the "before" we return must be what we overwrite
            rows.update({r["iccid"]: r for r in self.conn.execute(q).mappings()})
        at = now()
        by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for iccid, row in rows.items():
            values = {
                k: (v.value if isinstance(v, DeviceStatus) else v)
                for k, v in changes[iccid].items()
                if k in _UPDATABLE
            }
            if "iccid" in values:  # the row answers to its new ICCID from now on
                self._updated_ids.pop((tenant, iccid), None)
            self._updated_ids[(tenant, values.get("iccid", iccid))] = row["id"]
            shape = tuple(sorted(values))
            by_shape.setdefault(shape, []).append(
                {"row_id": row["id"], "new_updated_at": at}
                | {f"new_{k}": v for k, v in values.items()}
            )
        for shape, params in by_shape.items():
            stmt = (
                update(t.devices)
                .where(t.devices.c.id == bindparam("row_id"))
                .values(
                    {k: bindparam(f"new_{k}") for k in shape}
                    | {"updated_at": bindparam("new_updated_at")}
                )
            )
            self.conn.execute(stmt, params)
        return {iccid: _device(row) for iccid, row in rows.items()}

    def upsert_from_carrier(self, tenant: str, devices: Sequence[CarrierDeviceState]) -> int:
        """Insert or update by ICCID; a device pending at the carrier keeps its status."""
        if not devices:
            return 0
        at = now()
        known: list[dict[str, Any]] = []
        pending: list[dict[str, Any]] = []
        for d in devices:
            row = {
                "tenant": tenant,
                "iccid": d.iccid,
                "imei": d.imei,
                "msisdn": d.msisdn,
                # A new device first seen pending is on the account, not yet active.
                "status": (d.status or DeviceStatus.PENDING_ACTIVATION).value,
                "rate_plan": d.rate_plan,
                "account_name": d.account_name,
                "created_at": at,
                "updated_at": at,
            }
            (known if d.status is not None else pending).append(row)
        for rows, with_status in ((known, True), (pending, False)):
            if not rows:
                continue
            stmt = insert_for(self.conn, t.devices)
            fields = ["imei", "msisdn", "rate_plan", "account_name", "updated_at"]
            if with_status:
                fields.append("status")
            stmt = stmt.on_conflict_do_update(
                index_elements=["iccid"], set_={f: stmt.excluded[f] for f in fields}
            )
            self.conn.execute(stmt, rows)
        return len(devices)

    def list(
        self,
        tenant: str,
        *,
        status: DeviceStatus | None,
        rate_plan: str | None,
        limit: int,
        cursor: str | None,
    ) -> Page[Device]:
        q = select(t.devices).where(t.devices.c.tenant == tenant)
        if status is not None:
            q = q.where(t.devices.c.status == status.value)
        if rate_plan:
            q = q.where(t.devices.c.rate_plan == rate_plan)
        after = decode_cursor(cursor)
        if after:
            q = q.where(t.devices.c.iccid > after)
        rows = list(self.conn.execute(q.order_by(t.devices.c.iccid).limit(limit + 1)).mappings())
        items = [_device(r) for r in rows[:limit]]
        return Page(items, encode_cursor(items[-1].iccid) if len(rows) > limit else None)
