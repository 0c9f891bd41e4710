"""Carrier callbacks taken by `receive-callbacks`, a child process of the API."""

import os
import signal
import time

import psutil
import pytest

from fleetops_devstack.processes import wait_until_ok
from fleetops_devstack.servers import free_port

from .platform import running_platform

pytestmark = pytest.mark.e2e


def receivers() -> list[psutil.Process]:
    """The receive-callbacks processes this test started, alive (not yet-unreaped ones)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "receive-callbacks" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:  # gone, or a zombie its parent has not reaped yet
            continue
    return found


def suspend(platform, count: int) -> dict:
    iccids = platform.active_iccids(count)
    r = platform.http.post(
        "/v1/bulk-changes",
        json={
            "change_type": "update_device_status",
            "devices": [{"iccid": i} for i in iccids],
            "params": {"target_status": "SUSPENDED"},
        },
    )
    assert r.status_code == 202, r.text
    # polls come only after a minute: settling in time means the callbacks were taken
    return platform.wait_finished(r.json()["id"], timeout_s=45)


def test_the_receiver_takes_the_callbacks_and_the_api_process_settles_them(tmp_path):
    port = free_port()
    with running_platform(
        f"sqlite:///{tmp_path / 'dc.db'}",
        fleet_size=600,
        callback_receiver_port=port,
        first_poll_after_s=60,
    ) as platform:
        assert platform.settings.registered_callback_url() == (
            f"http://127.0.0.1:{port}/v1/callbacks/thingspace"
        )
        [receiver] = receivers()
        state = suspend(platform, 300)
        assert state["counts"]["SUCCEEDED"] == 300 and state["status"] == "COMPLETED"
        assert platform.sim_stats()["devices_changed_more_than_once"] == 0
        # the API process's own intake never stored a callback: its writer never started
        assert platform.container.callback_intake._writer is None

        # A receiver that dies is started again, and callbacks flow again
        os.kill(receiver.pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while not (again := [p for p in receivers() if p.pid != receiver.pid]):
            assert time.monotonic() < deadline, "the receiver was not started again"
            time.sleep(0.2)
        # callbacks sent before it listens are lost to it, and polls come only after a minute
        wait_until_ok(f"http://127.0.0.1:{port}/readyz", timeout_s=20)
        state = suspend(platform, 100)
        assert state["counts"]["SUCCEEDED"] == 100
    # and it ends with the API
    assert not again[0].is_running() or again[0].status() == psutil.STATUS_ZOMBIE
