"""Devices: the carrier sync upserts, lookups chunk their IN-lists, listing pages by ICCID."""

import time

import pytest

from device_change.domain.device import DeviceStatus, RatePlan

pytestmark = pytest.mark.integration


def test_carrier_sync_is_idempotent_and_listing_pages_by_iccid(engine_each_dialect, make):
    from device_change.adapters.db.uow import SqlAlchemyUnitOfWorkFactory

    uow = SqlAlchemyUnitOfWorkFactory(engine_each_dialect)
    tenant = make.tenant()
    states = [make.state() for _ in range(5)]
    states.append(make.state(status=DeviceStatus.SUSPENDED, rate_plan="OTHER"))
    for _ in range(2):
        with uow() as u:
            assert u.devices.upsert_from_carrier(tenant, states) == 6
            u.commit()

    with uow() as u:
        seen, cursor = [], None
        while True:
            page = u.devices.list(
                tenant, status=DeviceStatus.ACTIVE, rate_plan=None, limit=2, cursor=cursor
            )
            seen += [d.iccid for d in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == sorted(s.iccid for s in states[:5])
        other = u.devices.list(tenant, status=None, rate_plan="OTHER", limit=10, cursor=None)
        assert [d.status for d in other.items] == [DeviceStatus.SUSPENDED]
        assert (
            u.devices.list(make.tenant(), status=None, rate_plan=None, limit=5, cursor=None).items
            == []
        )


def test_a_device_pending_at_the_carrier_keeps_its_status(uow_factory, make):
    tenant, active = make.tenant(), make.state()
    new_pending = make.state(status=None)
    with uow_factory() as u:
        u.devices.upsert_from_carrier(tenant, [active])
        u.devices.upsert_from_carrier(
            tenant,
            [make.state(active.iccid, status=None, rate_plan="NEW_PLAN"), new_pending],
        )
        got = u.devices.get_many(tenant, [active.iccid, new_pending.iccid])
    assert got[active.iccid].status is DeviceStatus.ACTIVE
    assert got[active.iccid].rate_plan == "NEW_PLAN"
    assert got[new_pending.iccid].status is DeviceStatus.PENDING_ACTIVATION


def test_lookups_by_iccid_and_msisdn_go_beyond_one_in_list(uow_factory, make):
    tenant = make.tenant()
    states = [make.state() for _ in range(2500)]
    with uow_factory() as u:
        started = time.perf_counter()
        u.devices.upsert_from_carrier(tenant, states[:2000])
        assert time.perf_counter() - started < 5  # one executemany, not 2,000 round trips
        u.devices.upsert_from_carrier(tenant, states[2000:])
        by_iccid = u.devices.get_many(tenant, [s.iccid for s in states] + ["89000"])
        by_msisdn = u.devices.get_many_by_msisdn(tenant, [s.msisdn for s in states if s.msisdn])
        elsewhere = u.devices.get_many(make.tenant(), [s.iccid for s in states[:10]])
    assert len(by_iccid) == 2500 and len(by_msisdn) == 2500
    assert by_iccid[states[1234].iccid].imei == states[1234].imei
    assert elsewhere == {}


def test_identifiers_in_use_are_found_across_tenants(uow_factory, make):
    device = make.state()
    with uow_factory() as u:
        u.devices.upsert_from_carrier(make.tenant(), [device])
        free_iccid, free_imei = make.iccid(), make.imei()
        in_use = u.devices.identifiers_in_use([device.iccid, device.imei, free_iccid, free_imei])
    assert in_use == frozenset({device.iccid, device.imei})


def test_update_applies_changes_and_returns_the_device_as_it_was(uow_factory, make):
    tenant, device = make.tenant(), make.state()
    new_iccid = make.iccid()
    with uow_factory() as u:
        u.devices.upsert_from_carrier(tenant, [device])
        before = u.devices.update(
            tenant, device.iccid, {"status": DeviceStatus.SUSPENDED, "iccid": new_iccid}
        )
        assert u.devices.update(tenant, make.iccid(), {"status": DeviceStatus.ACTIVE}) is None
        after = u.devices.get_many(tenant, [device.iccid, new_iccid])
    assert before is not None and before.status is DeviceStatus.ACTIVE
    assert before.iccid == device.iccid
    assert list(after) == [new_iccid] and after[new_iccid].status is DeviceStatus.SUSPENDED


def test_update_many_applies_each_devices_own_changes_in_one_go(uow_factory, make):
    tenant, other_tenant = make.tenant(), make.tenant()
    devices = [make.state() for _ in range(4)]
    foreign = make.state()
    with uow_factory() as u:
        u.devices.upsert_from_carrier(tenant, devices)
        u.devices.upsert_from_carrier(other_tenant, [foreign])
        befores = u.devices.update_many(
            tenant,
            {
                devices[0].iccid: {"status": DeviceStatus.SUSPENDED},
                devices[1].iccid: {"status": DeviceStatus.SUSPENDED},
                devices[2].iccid: {"rate_plan": "M2M_4G_5GB"},
                foreign.iccid: {"status": DeviceStatus.SUSPENDED},  # another tenant's
            },
        )
        after = u.devices.get_many(tenant, [d.iccid for d in devices])
        untouched = u.devices.get_many(other_tenant, [foreign.iccid])
    assert set(befores) == {d.iccid for d in devices[:3]}
    assert all(b.status is DeviceStatus.ACTIVE for b in befores.values())
    assert [after[d.iccid].status for d in devices] == [
        DeviceStatus.SUSPENDED,
        DeviceStatus.SUSPENDED,
        DeviceStatus.ACTIVE,
        DeviceStatus.ACTIVE,
    ]
    assert after[devices[2].iccid].rate_plan == "M2M_4G_5GB"
    assert after[devices[0].iccid].rate_plan == devices[0].rate_plan
    assert untouched[foreign.iccid].status is DeviceStatus.ACTIVE


def test_rate_plans_are_replaced_per_tenant(uow_factory, make):
    tenant, other = make.tenant(), make.tenant()
    with uow_factory() as u:
        u.plans.replace(other, [RatePlan("KEEP", "kept")])
        u.plans.replace(tenant, [RatePlan("A", "a"), RatePlan("B", "b", 1024)])
        u.plans.replace(tenant, [RatePlan("B", "b", 2048)])
        assert u.plans.all(tenant) == {"B": RatePlan("B", "b", 2048)}
        assert set(u.plans.all(other)) == {"KEEP"}
