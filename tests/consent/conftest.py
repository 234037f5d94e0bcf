"""The consent tests' SuperOffice: the NetServer simulator over loopback HTTP, reached
through the hub's real client. One server per session, reset before each test."""

import json
import urllib.request

import pytest
from django.conf import settings

from crm.models import SuperOfficeConnection
from crm.simulator.server import make_server, serve_in_thread
from crm.simulator.state import Tenant

SIM_PERSONS = 40


class SimulatorHandle:
    """The simulator's control and state endpoints, as the tests use them."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.netserver_url = f"{base}/Remote/Services88/"

    def _post(self, path: str, data: dict) -> dict:
        request = urllib.request.Request(  # noqa: S310 - loopback test server
            f"{self.base}{path}",
            data=json.dumps(data).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return json.loads(response.read())

    def _get(self, path: str):
        with urllib.request.urlopen(f"{self.base}{path}", timeout=5) as response:  # noqa: S310
            return json.loads(response.read())

    def reset(self) -> None:
        self._post("/_sim/reset", {})

    def control(self, **settings) -> None:
        self._post("/_sim/control", settings)

    def person(self, person_id: int) -> dict:
        return self._get(f"/_sim/state/persons/{person_id}")

    def consents(self, person_id: int) -> dict:
        return self._get(f"/_sim/state/consents/{person_id}")

    def consent_at(self, person_id: int, purpose: str, legal_base: str, when) -> None:
        """Someone changes the person's consent in SuperOffice at ``when``."""
        self._post(
            "/_sim/consent",
            {
                "person_id": person_id,
                "purpose": purpose,
                "legal_base": legal_base,
                "updated": when.isoformat(),
            },
        )

    def operation_counts(self) -> dict:
        return self._get("/_sim/state/counters")["operations"]


@pytest.fixture(scope="session")
def consent_simulator():
    tenant = Tenant(
        username=settings.NETSERVER_SIMULATOR["USERNAME"],
        password=settings.NETSERVER_SIMULATOR["PASSWORD"],
        app_token=settings.NETSERVER_SIMULATOR["APP_TOKEN"],
        persons=SIM_PERSONS,
        seed=7,
        system_user_token=settings.NETSERVER_SIMULATOR["SYSTEM_USER_TOKEN"],
        context_identifier=settings.NETSERVER_SIMULATOR["CONTEXT_IDENTIFIER"],
        ticket_ttl=6 * 3600,
    )
    server = make_server(host="127.0.0.1", port=0, tenant=tenant)
    serve_in_thread(server)
    host, port = server.server_address[:2]
    yield SimulatorHandle(f"http://{host}:{port}")
    server.shutdown()
    server.server_close()


@pytest.fixture
def sim(consent_simulator):
    consent_simulator.reset()
    yield consent_simulator
    consent_simulator.control(mode="normal", operations=[])


def sim_connection_fields(sim) -> dict:
    return {
        "base_url": sim.netserver_url,
        "auth_mode": SuperOfficeConnection.AuthMode.ONSITE,
        "username": settings.NETSERVER_SIMULATOR["USERNAME"],
        "password": settings.NETSERVER_SIMULATOR["PASSWORD"],
        "application_token": settings.NETSERVER_SIMULATOR["APP_TOKEN"],
        "legal_basis_sync_enabled": True,
    }


@pytest.fixture
def connection(account, sim):
    """The account's SuperOffice connection to the simulator, legal-basis sync on."""
    return SuperOfficeConnection.objects.create(account=account, **sim_connection_fields(sim))
