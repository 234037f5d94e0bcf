"""The SOAP client through crm.http, against loopback servers: a redirect from the
SuperOffice address is refused with nothing forwarded, a name that resolves to an internal
address when the call is made is refused, and oversized, gzip-bomb and trickled replies
end with a clear error, the worker's memory bounded and the deadline kept."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crm.client import ConnectionSettings, NetServerClient
from crm.errors import ConfigurationCrmError, TransientCrmError
from crm.models import CrmCall, SuperOfficeConnection
from crm.services import client_for_account, connection_save
from tests.crm.loopback import gzip_bomb, loopback_server, oversized, redirect, trickle
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def netserver():
    with loopback_server() as server:
        yield server


@pytest.fixture
def elsewhere():
    with loopback_server() as server:
        yield server


def _account_at(base_url: str):
    account = AccountFactory()
    SuperOfficeConnection.objects.create(
        account=account,
        base_url=base_url,
        auth_mode="onsite",
        username="hub",
        password="the-password",
        application_token="the-app-token",
    )
    return account


@pytest.mark.parametrize("status", [302, 307])
@pytest.mark.parametrize("target", ["loopback", "another host"])
def test_a_redirect_from_the_superoffice_address_is_refused_and_nothing_is_forwarded(
    netserver, elsewhere, status, target
):
    location = (
        f"{elsewhere.url}/Remote/Services88/SoPrincipal.svc"
        if target == "loopback"
        else "https://elsewhere.example/Remote/Services88/SoPrincipal.svc"
    )
    netserver.behaviour["*"] = redirect(status, location)
    account = _account_at(f"{netserver.url}/Remote/Services88/")

    with pytest.raises(ConfigurationCrmError, match="redirect") as caught:
        client_for_account(account).whoami(fresh=True)

    assert location in str(caught.value)
    assert elsewhere.connections == 0 and elsewhere.requests == []
    # The one request that went out went to the address the admin set.
    [(method, path, _, body)] = netserver.requests
    assert (method, path) == ("POST", "/Remote/Services88/SoPrincipal.svc")
    call = CrmCall.objects.get(account=account)
    assert call.outcome == CrmCall.Outcome.CONFIGURATION
    assert call.response_excerpt == ""
    assert "the-password" not in call.request_excerpt
    connection = SuperOfficeConnection.objects.get(account=account)
    assert "redirect" in connection.config_error


def test_a_redirect_of_the_tenants_wsdl_is_refused_too(netserver, elsewhere):
    netserver.behaviour["*"] = redirect(302, f"{elsewhere.url}/Person.svc?wsdl")
    account = _account_at(f"{netserver.url}/Remote/Services88/")
    SuperOfficeConnection.objects.filter(account=account).update(use_tenant_wsdl=True)

    with pytest.raises(ConfigurationCrmError, match="redirect"):
        client_for_account(account).get_person(person_id=5)

    assert elsewhere.connections == 0


@pytest.mark.parametrize("internal", ["127.0.0.1", "100.64.0.1", "192.0.0.8", "10.1.2.3"])
def test_a_name_that_resolves_to_an_internal_address_at_call_time_is_refused(
    netserver, monkeypatch, settings, internal
):
    """DNS rebinding: public when the admin saved it, internal when the hub calls it."""
    settings.CRM_ALLOW_PRIVATE_ADDRESSES = False
    real = socket.getaddrinfo
    answer = {"tenant.example": "93.184.215.14"}

    def dns(host, port, *args, **kwargs):
        if host in answer:
            return real(answer[host], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", dns)
    account = AccountFactory()
    connection_save(
        account=account,
        base_url=f"https://tenant.example:{netserver.port}/Cust1/",
        auth_mode="onsite",
        username="hub",
        password="the-password",
        application_token="the-app-token",
    )
    answer["tenant.example"] = internal

    with pytest.raises(ConfigurationCrmError, match="internal address"):
        client_for_account(account).whoami(fresh=True)

    assert netserver.connections == 0
    call = CrmCall.objects.get(account=account)
    assert (call.outcome, call.response_excerpt, call.http_status) == (
        CrmCall.Outcome.CONFIGURATION,
        "",
        None,
    )


def _client(url: str) -> NetServerClient:
    return NetServerClient(
        connection=ConnectionSettings(
            base_url=f"{url}/Remote/Services88/",
            auth_mode="onsite",
            username="u",
            password="p",
            application_token="t",
        ),
        timeout=5.0,
    )


@pytest.mark.parametrize(
    "behaviour",
    [oversized(300, declared=True), oversized(300, declared=False), gzip_bomb(1024)],
    ids=["300 MB declared", "300 MB chunked", "gzip bomb 1 GiB"],
)
def test_an_oversized_reply_is_refused_as_a_configuration_error(netserver, behaviour):
    netserver.behaviour["*"] = behaviour

    with pytest.raises(ConfigurationCrmError, match="larger than 20 MB"):
        _client(netserver.url).whoami(fresh=True)


def test_a_trickled_reply_ends_at_the_deadline_as_a_transient_error(netserver, settings):
    settings.CRM_DEADLINE_SECONDS = 2.0
    netserver.behaviour["*"] = trickle(total_bytes=60, every_seconds=0.5)
    started = time.monotonic()

    with pytest.raises(TransientCrmError, match="within 2 s"):
        _client(netserver.url).whoami(fresh=True)

    elapsed = time.monotonic() - started
    # Each byte came well inside the 5 s read timeout; only the deadline ended it.
    assert 1.9 <= elapsed < 3.0, elapsed


def _measure(url: str) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "emhub.settings.test"}
    out = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "tests.crm.reply_memory", f"{url}/Remote/Services88/"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "behaviour",
    [oversized(300, declared=False), gzip_bomb(1024)],
    ids=["300 MB chunked", "gzip bomb 1 GiB"],
)
def test_a_worker_stays_within_its_memory_under_an_oversized_reply(netserver, behaviour):
    netserver.behaviour["*"] = behaviour

    figures = _measure(netserver.url)

    print("worker memory", figures)
    assert "larger than 20 MB" in figures["error"]
    # The cap is 20 MB; the reply is held once while read and once joined.
    assert figures["peak_mb"] - figures["before_mb"] < 60, figures
