"""Each error class, produced by a real misbehaving NetServer (the simulator) over HTTP."""

import socket
import time

import pytest
import requests

from crm.client import STATS
from crm.errors import (
    ConfigurationCrmError,
    NotFoundCrmError,
    PermanentCrmError,
    TransientCrmError,
)
from crm.models import CrmCall, SuperOfficeConnection
from crm.services import client_for_account

pytestmark = pytest.mark.django_db


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def crm(crm_account):
    return client_for_account(crm_account)


def test_soap_fault_on_bad_data_is_permanent(crm):
    with pytest.raises(PermanentCrmError) as caught:
        crm.create_sale(heading="", text="x", person_id=5, owner_id=2)
    assert not isinstance(caught.value, NotFoundCrmError)
    assert caught.value.exception_type == "SoValidationException"


def test_soap_fault_on_missing_object_is_not_found(crm):
    with pytest.raises(NotFoundCrmError):
        crm.create_sale(heading="H", text="x", person_id=5, owner_id=999)


def test_slow_answer_times_out_as_transient(crm_account, simulator, settings):
    settings.CRM_TIMEOUT_SECONDS = 0.5
    crm = client_for_account(crm_account)
    crm.get_person(person_id=1)  # signs in while the tenant is fast
    simulator.control(mode="slow", delay=2)
    started = time.monotonic()
    with pytest.raises(TransientCrmError, match="did not answer"):
        crm.get_person(person_id=1)
    assert time.monotonic() - started < 1.9
    assert CrmCall.objects.filter(account=crm_account, outcome="transient").exists()


def test_connection_refused_is_transient(crm_account):
    SuperOfficeConnection.objects.filter(account=crm_account).update(
        base_url=f"http://127.0.0.1:{_free_port()}/Remote/Services88/"
    )
    with pytest.raises(TransientCrmError, match="Cannot connect"):
        client_for_account(crm_account).get_person(person_id=1)


def test_dropped_connection_is_transient(crm, simulator):
    crm.get_person(person_id=1)
    simulator.control(mode="down")
    with pytest.raises(TransientCrmError):
        crm.get_person(person_id=1)


def test_throttling_is_transient_with_retry_after(crm, simulator):
    crm.get_person(person_id=1)
    simulator.control(mode="throttle", retry_after=7)
    with pytest.raises(TransientCrmError) as caught:
        crm.get_person(person_id=1)
    assert caught.value.retry_after == 7.0


def test_share_of_5xx_answers_is_transient(crm, simulator):
    crm.get_person(person_id=1)
    simulator.control(mode="fail_ratio", ratio=0.5)
    outcomes = []
    for _ in range(6):
        try:
            crm.get_person(person_id=1)
            outcomes.append("ok")
        except TransientCrmError:
            outcomes.append("transient")
    assert outcomes.count("transient") == 3


def test_bad_password_is_a_configuration_error(crm_account, simulator):
    SuperOfficeConnection.objects.filter(account=crm_account).update(password="wrong")
    with pytest.raises(ConfigurationCrmError, match="user name or password"):
        client_for_account(crm_account).get_person(person_id=1)


def test_wrong_application_token_is_a_configuration_error(crm_account):
    connection = SuperOfficeConnection.objects.get(account=crm_account)
    connection.application_token = "not-the-token"
    connection.save()
    with pytest.raises(ConfigurationCrmError):
        client_for_account(crm_account).get_person(person_id=1)
    connection.refresh_from_db()
    assert "application token" in connection.config_error.lower()


def test_wrong_address_is_a_configuration_error(crm_account, simulator):
    SuperOfficeConnection.objects.filter(account=crm_account).update(
        base_url=f"{simulator.root_url}/Cust999/NotNetServer/"
    )
    with pytest.raises(ConfigurationCrmError, match="404"):
        client_for_account(crm_account).get_person(person_id=1)


def test_expired_ticket_is_renewed_once_and_the_call_succeeds(crm_account, simulator):
    crm = client_for_account(crm_account)
    crm.get_person(person_id=1)
    authentications = simulator.state("counters")["authentications"]
    simulator.control(expire_tickets=True)
    assert crm.get_person(person_id=2).id == 2
    assert simulator.state("counters")["authentications"] == authentications + 1
    outcomes = list(
        CrmCall.objects.filter(account=crm_account).order_by("id").values_list("outcome", flat=True)
    )
    assert outcomes[-3:] == ["ticket_refused", "ok", "ok"]


def test_ticket_refused_after_renewal_is_a_configuration_error(crm_account, simulator):
    crm = client_for_account(crm_account)
    crm.get_person(person_id=1)
    simulator.control(refuse_tickets=True)
    before = simulator.state("counters")["authentications"]
    with pytest.raises(ConfigurationCrmError, match="freshly issued ticket"):
        crm.get_person(person_id=1)
    assert simulator.state("counters")["authentications"] == before + 1


def test_ticket_is_cached_per_account_not_fetched_per_call(crm_account, simulator):
    authentications = STATS["authentications"]
    for person_id in range(1, 11):
        client_for_account(crm_account).get_person(person_id=person_id)
    assert STATS["authentications"] == authentications + 1
    connection = SuperOfficeConnection.objects.get(account=crm_account)
    assert connection.ticket and connection.ticket_expires_at is not None


def test_entity_bomb_in_a_reply_is_refused(crm, simulator):
    crm.get_person(person_id=1)
    simulator.control(mode="entity_bomb")
    with pytest.raises(PermanentCrmError) as caught:
        crm.get_person(person_id=1)
    assert caught.value.exception_type == "UnsafeXml"


def test_simulator_refuses_an_entity_bomb_request(simulator):
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        '<GetPersonEntity xmlns="http://www.superoffice.net/ws/crm/NetServer/Services88">'
        "<PersonEntityId>&b;</PersonEntityId></GetPersonEntity></s:Body></s:Envelope>"
    )
    response = requests.post(f"{simulator.base_url}Person.svc", data=bomb, timeout=5)
    assert response.status_code == 500
    assert "XmlSecurityException" in response.text
    assert "aaaaaaaa" not in response.text


def test_calls_beyond_the_tenant_cap_wait_then_give_up_as_transient(crm_account, simulator):
    import threading

    from crm.client import MemoryTicketStore, NetServerClient
    from crm.services import connection_settings_of

    settings_ = connection_settings_of(SuperOfficeConnection.objects.get(account=crm_account))
    tickets = MemoryTicketStore()
    NetServerClient(connection=settings_, ticket_store=tickets).get_person(person_id=1)
    clients = [
        NetServerClient(
            connection=settings_, ticket_store=tickets, timeout=0.8, max_concurrent_calls=1
        )
        for _ in range(3)
    ]
    simulator.control(mode="slow", delay=0.6, operations=["GetPersonEntity"])
    outcomes = []

    def call(client):
        try:
            client.get_person(person_id=2)
            outcomes.append("ok")
        except TransientCrmError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=call, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert "ok" in outcomes
    assert any("Too many concurrent calls" in o for o in outcomes)
