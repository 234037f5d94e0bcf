"""Every call leaves a CrmCall row; none of them holds a secret."""

import time

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


# --- buffered, as in a worker process -------------------------------------------------------


@pytest.fixture
def buffered_call_log():
    """This process writes its call log as a Celery worker process does (crm.call_log)."""
    from crm.call_log import call_log_buffering

    call_log_buffering(on=True)
    yield
    call_log_buffering(on=False)


def _inserts_into_the_call_log(queries) -> int:
    return sum(1 for q in queries if q["sql"].startswith('INSERT INTO "crm_crmcall"'))


def test_a_buffered_process_writes_its_calls_in_one_insert_when_flushed(
    crm_account, buffered_call_log
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from crm.call_log import call_log_buffered, call_log_flush

    crm = client_for_account(crm_account, correlation="run:7")
    with CaptureQueriesContext(connection) as during:
        crm.get_person(person_id=3)
        crm.get_person(person_id=4)
    assert _inserts_into_the_call_log(during.captured_queries) == 0
    assert not CrmCall.objects.filter(account=crm_account).exists()
    assert call_log_buffered() == 3

    with CaptureQueriesContext(connection) as flushing:
        assert call_log_flush() == 3

    assert _inserts_into_the_call_log(flushing.captured_queries) == 1
    assert list(
        CrmCall.objects.filter(account=crm_account)
        .order_by("id")
        .values_list("operation", flat=True)
    ) == ["AuthenticateUsernamePassword", "GetPersonEntity", "GetPersonEntity"]
    assert call_log_buffered() == 0
    assert call_log_flush() == 0


@pytest.mark.django_db(transaction=True)
def test_calls_made_in_a_transaction_that_rolls_back_are_still_logged(
    crm_account, buffered_call_log, settings
):
    """The size threshold waits for the transaction to end, so the rows are not written
    inside it and do not roll back with it."""
    from django.db import transaction

    from crm.call_log import call_log_buffered, call_log_flush

    settings.CRM_CALL_LOG_FLUSH_SIZE = 1
    crm = client_for_account(crm_account, correlation="batch:1")
    with pytest.raises(RuntimeError), transaction.atomic():
        crm.get_person(person_id=3)
        crm.get_person(person_id=4)
        raise RuntimeError("the batch's own work failed")

    assert call_log_buffered() == 3
    call_log_flush()
    assert CrmCall.objects.filter(account=crm_account, correlation="batch:1").count() == 3


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_buffer_is_written_when_it_is_full(
    crm_account, buffered_call_log, settings
):
    from crm.call_log import call_log_buffered

    settings.CRM_CALL_LOG_FLUSH_SIZE = 3
    crm = client_for_account(crm_account)
    crm.get_person(person_id=3)  # the sign-in and this call: two rows, below the threshold
    assert call_log_buffered() == 2 and not CrmCall.objects.exists()
    crm.get_person(person_id=4)

    assert call_log_buffered() == 0
    assert CrmCall.objects.filter(account=crm_account).count() == 3


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_buffer_is_written_when_its_oldest_call_is_old(
    crm_account, buffered_call_log, settings
):
    from crm.call_log import call_log_buffered

    settings.CRM_CALL_LOG_FLUSH_SECONDS = 0.3
    crm = client_for_account(crm_account)
    crm.get_person(person_id=3)
    assert call_log_buffered() == 2
    time.sleep(0.35)
    crm.get_person(person_id=4)

    assert call_log_buffered() == 0
    assert CrmCall.objects.filter(account=crm_account).count() == 3


def test_buffered_errors_leave_the_connections_latest_error_in_one_update(
    crm_account, simulator, buffered_call_log
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from crm.call_log import call_log_flush
    from crm.errors import PermanentCrmError, TransientCrmError

    crm = client_for_account(crm_account)
    crm.get_person(person_id=3)
    with pytest.raises(PermanentCrmError):
        crm.get_person(person_id=987654)
    simulator.control(mode="down")
    with pytest.raises(TransientCrmError):
        crm.get_person(person_id=3)

    with CaptureQueriesContext(connection) as flushing:
        call_log_flush()

    updates = [
        q for q in flushing.captured_queries if q["sql"].startswith('UPDATE "crm_superoffice')
    ]
    assert len(updates) == 1
    stored = SuperOfficeConnection.objects.get(account=crm_account)
    last = CrmCall.objects.filter(account=crm_account).order_by("-started_at", "-id").first()
    assert last.outcome == CrmCall.Outcome.TRANSIENT
    assert stored.last_error.startswith("Person.GetPersonEntity: ")
    assert stored.last_error_at == last.started_at
    assert stored.config_error == ""


def test_a_buffered_configuration_error_older_than_the_admins_fix_is_not_written(
    crm_account, buffered_call_log
):
    from crm.call_log import call_log_flush
    from crm.errors import ConfigurationCrmError

    SuperOfficeConnection.objects.filter(account=crm_account).update(password="wrong")
    with pytest.raises(ConfigurationCrmError):
        client_for_account(crm_account).get_person(person_id=1)
    # The admin saves the right password before the worker's buffer is written.
    connection = SuperOfficeConnection.objects.get(account=crm_account)
    connection.password = "fixed"
    connection.save()

    call_log_flush()

    connection.refresh_from_db()
    assert connection.config_error == ""
    assert CrmCall.objects.get(account=crm_account).outcome == CrmCall.Outcome.CONFIGURATION


def test_a_buffered_configuration_error_is_written_to_the_connection(
    crm_account, buffered_call_log
):
    from crm.call_log import call_log_flush
    from crm.errors import ConfigurationCrmError

    SuperOfficeConnection.objects.filter(account=crm_account).update(password="wrong")
    with pytest.raises(ConfigurationCrmError):
        client_for_account(crm_account).get_person(person_id=1)
    assert SuperOfficeConnection.objects.get(account=crm_account).config_error == ""

    call_log_flush()

    stored = SuperOfficeConnection.objects.get(account=crm_account)
    assert "user name or password" in stored.config_error
