"""Fixtures for any test that touches SuperOffice: the NetServer simulator over HTTP.

Register with ``pytest_plugins = ["tests.crm_fixtures"]``. Fixtures:

- ``netserver_simulator`` (session): the simulator running in a subprocess on a free
  port; a ``SimulatorHandle``.
- ``simulator`` (function): the same handle, reset to its seeded state and normal
  behaviour before and after the test.
- ``crm_account``: an Account whose on-site SuperOfficeConnection points at it.
- ``crm_online_account``: the same for an Online (system user) connection.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class SimulatorHandle:
    root_url: str
    username: str = "sim-admin"
    password: str = "sim-password"
    app_token: str = "sim-app-token"
    system_user_token: str = "emhub-sim-SYSTEMTOKEN"
    context_identifier: str = "Cust12345"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/Remote/Services88/"

    def _request(self, method: str, path: str, data: Any = None) -> Any:
        body = None if data is None else json.dumps(data).encode()
        request = urllib.request.Request(  # noqa: S310 - loopback simulator
            f"{self.root_url}{path}",
            data=body,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            raw = response.read()
        content_type = response.headers.get("Content-Type", "")
        return json.loads(raw) if content_type.startswith("application/json") else raw.decode()

    def control(self, **settings: Any) -> None:
        """e.g. control(mode="slow", delay=2), control(mode="throttle", retry_after=7),
        control(mode="fail_ratio", ratio=0.5), control(mode="down"),
        control(mode="entity_bomb"), control(expire_tickets=True), control(refuse_tickets=True),
        control(mode="normal"). ``operations=[...]`` limits a mode to those operations."""
        self._request("POST", "/_sim/control", settings)

    def reset(self) -> None:
        self._request("POST", "/_sim/reset", {})

    def state(self, what: str) -> Any:
        """e.g. state("sales"), state("selections/1"), state("counters"), state("persons/5")."""
        return self._request("GET", f"/_sim/state/{what}")

    def partner_private_key(self) -> str:
        return self._request("GET", "/_sim/partner-key")


def _start_simulator() -> tuple[subprocess.Popen, str]:
    env = os.environ.copy()
    env.setdefault("DJANGO_SETTINGS_MODULE", "emhub.settings.test")
    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "manage.py",
            "netserver_simulator",
            "--port",
            "0",
            "--persons",
            "300",
            # Webhook targets in the tests are the hub's live server on plain-http loopback.
            "--allow-http-webhooks",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    assert process.stdout is not None
    output = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if line.strip().startswith("port="):
            return process, f"http://127.0.0.1:{int(line.strip().split('=', 1)[1])}"
    process.kill()
    raise RuntimeError("The NetServer simulator did not start:\n" + "".join(output))


@pytest.fixture(scope="session")
def netserver_simulator():
    process, root_url = _start_simulator()
    handle = SimulatorHandle(root_url=root_url)
    yield handle
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def simulator(netserver_simulator):
    netserver_simulator.reset()
    yield netserver_simulator
    netserver_simulator.reset()


@pytest.fixture
def crm_account(db, simulator):
    from crm.models import SuperOfficeConnection
    from tests.factories import AccountFactory

    account = AccountFactory(slug="crm-acme", name="CRM Acme")
    SuperOfficeConnection.objects.create(
        account=account,
        base_url=simulator.base_url,
        auth_mode="onsite",
        username=simulator.username,
        password=simulator.password,
        application_token=simulator.app_token,
    )
    return account


@pytest.fixture
def crm_online_account(db, simulator):
    from crm.models import SuperOfficeConnection
    from tests.factories import AccountFactory

    account = AccountFactory(slug="crm-online", name="CRM Online")
    SuperOfficeConnection.objects.create(
        account=account,
        base_url=simulator.base_url,
        auth_mode="online",
        application_token=simulator.app_token,
        system_user_token=simulator.system_user_token,
        private_key=simulator.partner_private_key(),
        context_identifier=simulator.context_identifier,
    )
    return account
