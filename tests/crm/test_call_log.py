"""Every call leaves a CrmCall row; none of them holds a secret."""

import pytest

from crm.client import redact
from crm.models import CrmCall, SuperOfficeConnection
from crm.services import client_for_account

pytestmark = pytest.mark.django_db


def _all_text(account) -> str:
    return "\n".join(
        f"{c.error}\n{c.request_excerpt}\n{c.response_excerpt}\n{c.correlation}"
        for c in CrmCall.objects.filter(account=account)
    )


def test_each_call_is_logged_with_its_outcome_and_correlation(crm_account):
    crm = client_for_account(crm_account, correlation="run:42")
    crm.get_person(person_id=3)
    calls = list(CrmCall.objects.filter(account=crm_account).order_by("id"))
    assert [(c.agent, c.operation, c.outcome) for c in calls] == [
        ("SoPrincipal", "AuthenticateUsernamePassword", "ok"),
        ("Person", "GetPersonEntity", "ok"),
    ]
    assert all(c.correlation == "run:42" and c.http_status == 200 for c in calls)
    assert "<PersonEntityId>3</" in calls[1].request_excerpt.replace("ns0:", "")


def test_no_secret_reaches_the_call_log_onsite(crm_account, simulator):
    crm = client_for_account(crm_account)
    crm.get_person(person_id=3)
    crm.verify_panel_user(usec="usec-ada-0001")
    simulator.control(expire_tickets=True)
    crm.get_person(person_id=4)
    connection = SuperOfficeConnection.objects.get(account=crm_account)
    logged = _all_text(crm_account)
    for secret in (simulator.password, simulator.app_token, connection.ticket, "usec-ada-0001"):
        assert secret and secret not in logged
    assert "7T:" not in logged  # no ticket of any age
    assert "[redacted]" in logged


def test_no_secret_reaches_the_call_log_online(crm_online_account, simulator):
    crm = client_for_account(crm_online_account)
    crm.get_person(person_id=3)
    connection = SuperOfficeConnection.objects.get(account=crm_online_account)
    logged = _all_text(crm_online_account)
    for secret in (simulator.app_token, simulator.system_user_token, connection.ticket):
        assert secret not in logged
    assert "eyJ" not in logged  # no JWT
    assert "PRIVATE KEY" not in logged


def test_redact_masks_secret_elements_and_values():
    text = (
        "<a:Ticket>7T:abc;1</a:Ticket><Password>pw</Password>"
        "<ns0:ApplicationToken>tok</ns0:ApplicationToken><x>my-secret-value</x>"
    )
    redacted = redact(text, ["my-secret-value"])
    assert "7T:abc" not in redacted and ">pw<" not in redacted and ">tok<" not in redacted
    assert "my-secret-value" not in redacted
