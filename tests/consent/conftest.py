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

    def webhooks(self) -> list[dict]:
        return self._get("/_sim/state/webhooks")

    def webhook_log(self) -> list[dict]:
        return self._get("/_sim/state/webhook_log")

    def deliveries_idle(self) -> bool:
        return self._get("/_sim/state/webhook_queue")["idle"]


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
        # Webhook deliveries go to the hub's live test server, plain http on loopback.
        allow_http_webhooks=True,
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
    # Deliveries still queued must not reach the next test's hub.
    consent_simulator.reset()


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


@pytest.fixture
def fast_retries(settings):
    """The automations' backoff, short enough for an outage of a few seconds."""
    settings.AUTOMATIONS_RETRY_BASE_SECONDS = 0.2
    settings.AUTOMATIONS_RETRY_CAP_SECONDS = 1.0
    settings.AUTOMATIONS_MAX_ATTEMPTS = 30
    settings.CONSENT_PUSH_REDISPATCH_SECONDS = 1.0
    return settings


@pytest.fixture
def live_hub(live_server, settings, fast_retries):
    """The hub on a live test server: SuperOffice's webhook is registered at this
    address (plain http on loopback, as the operator setting allows)."""
    settings.EMHUB_PUBLIC_URL = live_server.url
    settings.CRM_ALLOW_PRIVATE_ADDRESSES = True
    return live_server


@pytest.fixture
def celery_worker(transactional_db, fast_retries):
    """A real Celery worker on the test broker, in this process (threads pool)."""
    from celery.contrib.testing.worker import start_worker

    from emhub.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")
    with start_worker(
        app,
        pool="threads",
        concurrency=4,
        perform_ping_check=False,
        shutdown_timeout=30,
        loglevel="WARNING",
    ) as worker:
        yield worker


def wait_until(predicate, *, timeout: float = 15.0, interval: float = 0.05, message: str = ""):
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout}s: {message}")
        time.sleep(interval)
