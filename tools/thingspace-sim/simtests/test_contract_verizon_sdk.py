"""The simulator's fidelity, proven with Verizon's own published Python SDK."""

from __future__ import annotations

import pytest
from verizon.configuration import Environment, Server
from verizon.http.auth.thingspace_oauth import ThingspaceOauthCredentials
from verizon.http.auth.vz_m2m_token import VZM2mTokenCredentials
from verizon.models.account_device_list import AccountDeviceList
from verizon.models.account_device_list_request import AccountDeviceListRequest
from verizon.models.carrier_actions_request import CarrierActionsRequest
from verizon.models.carrier_activate_request import CarrierActivateRequest
from verizon.models.carrier_deactivate_request import CarrierDeactivateRequest
from verizon.models.device_id import DeviceId
from verizon.models.log_in_request import LogInRequest
from verizon.models.register_callback_request import RegisterCallbackRequest
from verizon.models.service_plan_update_request import ServicePlanUpdateRequest
from verizon.verizon_client import VerizonClient

from .conftest import ACCOUNT


@pytest.fixture
def sdk(sim, monkeypatch):
    from verizon.configuration import Configuration

    env = dict(Configuration.environments[Environment.PRODUCTION])
    env[Server.THINGSPACE] = f"{sim.url}/api"
    env[Server.OAUTH_SERVER] = f"{sim.url}/api/ts/v1"
    monkeypatch.setitem(Configuration.environments, Environment.PRODUCTION, env)

    def client(m2m_token: str = "") -> VerizonClient:
        return VerizonClient(
            environment=Environment.PRODUCTION,
            thingspace_oauth_credentials=ThingspaceOauthCredentials(
                oauth_client_id="fleetops-sim-client", oauth_client_secret="fleetops-sim-secret"
            ),
            vz_m2m_token_credentials=VZM2mTokenCredentials(vz_m2m_token=m2m_token),
        )

    anonymous = client()
    token = anonymous.auth_managers["thingspace_oauth"].fetch_token()
    assert token.access_token and token.expires_in
    login = client().session_management.start_connectivity_management_session(
        body=LogInRequest(username="fleetops", password="fleetops-sim-password")
    )
    assert login.status_code == 200, login.text
    return client(login.body.session_token)


def ids(*pairs: tuple[str, str]) -> list[AccountDeviceList]:
    return [AccountDeviceList(device_ids=[DeviceId(id=i, kind=k)]) for i, k in pairs]


def test_sdk_lists_devices_and_plans(sdk):
    listed = sdk.device_management.list_devices_information(
        AccountDeviceListRequest(account_name=ACCOUNT)
    )
    assert listed.status_code == 200 and len(listed.body.devices) == 200
    first = listed.body.devices[0]
    assert {d.kind for d in first.device_ids} >= {"iccid", "imei"}
    assert first.carrier_informations[0].state in {"active", "suspend", "pre-active", "deactive"}
    plans = sdk.service_plans.list_account_service_plans(ACCOUNT)
    assert plans.status_code == 200
    assert "M2M_4G_1GB" in {p.code for p in plans.body}


def test_sdk_drives_every_action_and_registers_a_callback(sdk):
    devices = sdk.device_management.list_devices_information(
        AccountDeviceListRequest(account_name=ACCOUNT)
    ).body.devices
    by_state: dict[str, list[str]] = {}
    for d in devices:
        iccid = next(x.id for x in d.device_ids if x.kind == "iccid")
        by_state.setdefault(d.carrier_informations[0].state, []).append(iccid)

    registered = sdk.connectivity_callbacks.register_callback(
        ACCOUNT, RegisterCallbackRequest(name="CarrierService", url="http://127.0.0.1:9/cb")
    )
    assert registered.status_code == 200 and registered.body.service_name == "CarrierService"

    active, suspended = by_state["active"], by_state["suspend"]
    calls = [
        sdk.device_management.suspend_service_for_devices(
            CarrierActionsRequest(account_name=ACCOUNT, devices=ids((active[0], "iccid")))
        ),
        sdk.device_management.restore_service_for_suspended_devices(
            CarrierActionsRequest(account_name=ACCOUNT, devices=ids((suspended[0], "iccid")))
        ),
        sdk.device_management.deactivate_service_for_devices(
            CarrierDeactivateRequest(
                account_name=ACCOUNT,
                devices=ids((active[1], "iccid")),
                reason_code="FF",
                etf_waiver=True,
            )
        ),
        sdk.device_management.activate_service_for_devices(
            CarrierActivateRequest(
                devices=ids((by_state["pre-active"][0], "iccid")),
                service_plan="M2M_4G_1GB",
                mdn_zip_code="98101",
                account_name=ACCOUNT,
            )
        ),
        sdk.device_management.change_devices_service_plan(
            ServicePlanUpdateRequest(
                devices=ids((active[2], "iccid")), service_plan="M2M_4G_5GB", account_name=ACCOUNT
            )
        ),
    ]
    for call in calls:
        assert call.status_code == 200, call.text
        assert call.body.request_id
