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


def test_history_of_devices_just_updated_is_written_without_looking_them_up_again(
    uow_factory, make
):
    from sqlalchemy import event

    tenant, devices = make.tenant(), [make.state() for _ in range(3)]
    with uow_factory() as u:
        u.devices.upsert_from_carrier(tenant, devices)
        u.devices.update_many(tenant, {d.iccid: {"status": "SUSPENDED"} for d in devices})
        statements: list[str] = []
        event.listen(u._conn, "before_cursor_execute", lambda *a: statements.append(a[2]))
        u.audit.record([entry(tenant, d.iccid, "suspend", T0, status="SUSPENDED") for d in devices])
        u.commit()
    assert len(statements) == 1 and statements[0].lstrip().upper().startswith("INSERT")
    with uow_factory() as u:
        for d in devices:
            assert [
                e.action for e in u.audit.history(tenant, d.iccid, limit=5, cursor=None).items
            ] == ["suspend"]


def test_an_iccid_given_up_in_a_unit_of_work_names_its_new_holder_in_history(uow_factory, make):
    tenant, first = make.tenant(), make.state()
    new_iccid = make.iccid()
    with uow_factory() as u:
        u.devices.upsert_from_carrier(tenant, [first])
        u.devices.update(tenant, first.iccid, {"status": "SUSPENDED"})
        u.devices.update(tenant, first.iccid, {"iccid": new_iccid})
        # the freed ICCID goes to another SIM of the fleet, in the same transaction
        second = make.state(iccid=first.iccid)
        u.devices.upsert_from_carrier(tenant, [second])
        u.audit.record([entry(tenant, first.iccid, "activate", T0, status="ACTIVE")])
        u.commit()
    with uow_factory() as u:
        assert u.audit.history(tenant, new_iccid, limit=5, cursor=None).items == []
        [held] = u.audit.history(tenant, first.iccid, limit=5, cursor=None).items
        assert held.action == "activate"
