"""Carrier callbacks in a process of their own: `device-change receive-callbacks`.

On the embedded default one process runs the API, the queue workers and the callbacks, and
Python's GIL holds all of it to one core: during a large bulk change, parsing and storing
100,000 callbacks competed with settling them. With `CALLBACK_RECEIVER_PORT` set, `serve`
starts this receiver as a child process: it parses, checks and stores callbacks (the same
`CarrierCallbackLane` and group-commit intake) on a core of its own and answers the carrier,
while the API process settles what it stored, woken by its housekeeper's sweep. Both share
the SQLite file, taking turns to write (`fleetops_common.db`). Callbacks the lane does not
take get the same problem details from the same FastAPI route as on the API.

The child inherits the parent's settings whole (`SETTINGS_ENV`, JSON), is restarted if it
dies, and ends itself when its parent is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import structlog

from device_change.entrypoints.api.app import create_callback_api
from device_change.entrypoints.api.callbacks import CarrierCallbackLane
from device_change.settings import DeviceChangeSettings
from fleetops_common.telemetry import instrument_fastapi

SETTINGS_ENV = "DEVICE_CHANGE_SETTINGS_JSON"
log = structlog.get_logger("device-change.receiver")


def settings_from_parent() -> DeviceChangeSettings:
    """The settings the API process passed down, else the environment's."""
    given = os.environ.get(SETTINGS_ENV)
    return DeviceChangeSettings.model_validate_json(given) if given else DeviceChangeSettings()


def build_callback_receiver(settings: DeviceChangeSettings) -> CarrierCallbackLane:
    """Health, readiness and the callback route behind the callbacks' lane; nothing else."""
    from device_change.entrypoints.runtime import prepare

    container = prepare(settings)
    # On the in-process broker no worker here would ever take a wake-up message.
    container.wakes_settler = not settings.broker_url.startswith("stub")
    app = create_callback_api(container)
    instrument_fastapi(app)
    return CarrierCallbackLane(app, container)


def exit_with_parent(every_s: float = 1.0) -> None:
    """Stop this process (SIGTERM, a clean shutdown) once the process that started it is gone."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class ChildCallbackReceiver:
    """The receiver as a child of the API process: started, watched, restarted, stopped."""

    def __init__(self, settings: DeviceChangeSettings, *, restart_after_s: float = 1.0) -> None:
        self._settings = settings
        self._restart_after_s = restart_after_s
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self._settings.host}:{self._settings.callback_receiver_port}"

    def start(self) -> None:
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="callback-receiver", daemon=True)
        self._watcher.start()

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"the callback receiver did not answer on {self.url}")

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _spawn(self) -> None:
        port = str(self._settings.callback_receiver_port)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "device_change.entrypoints.cli", "receive-callbacks"],
            env={
                **os.environ,
                SETTINGS_ENV: self._settings.model_dump_json(),
                "DEVICE_CHANGE_CALLBACK_RECEIVER_PORT": port,
            },
        )
        log.info("callback receiver started", pid=self._process.pid, url=self.url)

    def _watch(self) -> None:
        while not self._stopping.wait(self._restart_after_s):
            process = self._process
            if process is not None and process.poll() is not None:
                log.error("callback receiver exited; starting it again", code=process.returncode)
                self._spawn()
