"""The device history: keyed by the device, not the ICCID, so it survives an ICCID swap."""

from datetime import UTC, datetime, timedelta

import pytest

from device_change.app.ports import AuditEntry

pytestmark = pytest.mark.integration

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def entry(tenant, iccid, action, at, **after):
    return AuditEntry(tenant, iccid, action, {}, after, "alice", at, bulk_change_id="b-1")


def test_history_follows_a_device_across_an_iccid_swap(uow_factory, make):
    tenant, device = make.tenant(), make.state()
    new_iccid = make.iccid()
    with uow_factory() as u:
        u.devices.upsert_from_carrier(tenant, [device])
        u.audit.record([entry(tenant, device.iccid, "suspend", T0, status="SUSPENDED")])
        u.devices.update(tenant, device.iccid, {"iccid": new_iccid})
        u.audit.record(
            [
                entry(tenant, new_iccid, "change_identifier", T0 + timedelta(1), imei="x"),
                entry(tenant, new_iccid, "restore", T0 + timedelta(2), status="ACTIVE"),
            ]
        )
        u.commit()

    with uow_factory() as u:
        first = u.audit.history(tenant, new_iccid, limit=2, cursor=None)
        rest = u.audit.history(tenant, new_iccid, limit=2, cursor=first.next_cursor)
        assert u.audit.history(tenant, device.iccid, limit=5, cursor=None).items == []
        assert u.audit.history(make.tenant(), new_iccid, limit=5, cursor=None).items == []
    actions = [e.action for e in first.items + rest.items]
    assert actions == ["restore", "change_identifier", "suspend"]
    assert rest.items[0].iccid == device.iccid  # the ICCID the device had at the time
    assert first.items[0].after == {"status": "ACTIVE"} and first.items[0].at == T0 + timedelta(2)
    assert rest.next_cursor is None


def test_plan_changes_since_counts_plan_changes_per_device(uow_factory, make):
    tenant = make.tenant()
    a, b, c = make.state(), make.state(), make.state()
    with uow_factory() as u:
        u.devices.upsert_from_carrier(tenant, [a, b, c])
        u.audit.record(
            [
                entry(tenant, a.iccid, "change_plan", T0 - timedelta(days=1)),  # before since
                entry(tenant, a.iccid, "change_plan", T0),
                entry(tenant, a.iccid, "change_plan", T0 + timedelta(days=3)),
                entry(tenant, a.iccid, "suspend", T0 + timedelta(days=3)),
                entry(tenant, b.iccid, "change_plan", T0 + timedelta(days=1)),
            ]
        )
        counts = u.audit.plan_changes_since(tenant, [a.iccid, b.iccid, c.iccid], T0)
    assert counts == {a.iccid: 2, b.iccid: 1}
