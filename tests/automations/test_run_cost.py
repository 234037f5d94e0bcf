"""What one run costs the database, and that its call log is written before its outcome.

Worker processes buffer the SuperOffice call log (crm.call_log); these tests switch this
process to the same mode. A run's queries: the claim (on PostgreSQL one statement that
updates the run and reads it with everything the run needs), then the call log's one
insert and the outcome's update (on PostgreSQL one statement too).
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from automations import services
from automations.models import AutomationType, Run, RunStatus
from campaigns.models import Event, EventType
from crm.models import CrmCall

from ..databases import per_database
from .conftest import claim_next
from .factories import AutomationFactory, CampaignFactory, ContactFactory

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]


@pytest.fixture
def buffered_call_log():
    from crm.call_log import call_log_buffering

    call_log_buffering(on=True)
    yield
    call_log_buffering(on=False)


@pytest.fixture
def task_runs(connected_account):
    campaign = CampaignFactory(account=connected_account)
    AutomationFactory(
        account=connected_account,
        campaign=campaign,
        type=AutomationType.CREATE_TASK,
        settings={"activity_type_id": 1, "owner_id": 2, "description": "Call {email}"},
    )
    contact = ContactFactory(
        account=connected_account, email="kari@example.com", superoffice_person_id=10
    )
    events = [
        Event.objects.create(
            account=connected_account,
            campaign=campaign,
            contact=contact,
            type=EventType.EMAIL_OPENED,
        )
        for _ in range(2)
    ]
    return services.runs_create_for_events(account=connected_account, events=events)


def test_a_run_costs_two_queries_on_postgresql_and_four_on_sqlite(
    sim, task_runs, buffered_call_log
):
    first, second = task_runs
    # The first run signs in and stores the ticket; the second is what every run costs.
    assert services.run_execute(run_id=first.id).status == RunStatus.DONE

    with CaptureQueriesContext(connection) as queries:
        outcome = services.run_execute(run_id=second.id)

    assert outcome.status == RunStatus.DONE
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) <= per_database(postgresql=2, sqlite=4), "\n".join(statements)
    second.refresh_from_db()
    assert second.crm_object_id and second.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_as_a_worker_runs_a_run_sends_no_begin_or_commit(
    sim, task_runs, buffered_call_log
):
    # The call log's flush is one INSERT on its own, not BEGIN, INSERT, COMMIT.
    first, second = task_runs
    assert services.run_execute(run_id=first.id).status == RunStatus.DONE

    with CaptureQueriesContext(connection) as queries:
        assert services.run_execute(run_id=second.id).status == RunStatus.DONE

    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == per_database(postgresql=2, sqlite=4), "\n".join(statements)
    assert not [sql for sql in statements if sql.split(" ", 1)[0] in ("BEGIN", "COMMIT")]
    assert CrmCall.objects.filter(correlation=second.key).exists()


def test_a_runs_calls_are_written_before_its_outcome(sim, task_runs, buffered_call_log):
    from crm.call_log import call_log_buffered

    run = task_runs[0]
    with CaptureQueriesContext(connection) as queries:
        services.run_execute(run_id=run.id)

    statements = [q["sql"] for q in queries.captured_queries]
    call_log_insert = next(
        i for i, sql in enumerate(statements) if 'INSERT INTO "crm_crmcall"' in sql
    )
    outcome_update = max(i for i, sql in enumerate(statements) if 'UPDATE "automations_run"' in sql)
    if connection.vendor == "postgresql":
        # One statement: the calls go in as its WITH, which runs whatever the UPDATE does.
        assert call_log_insert == outcome_update
        assert statements[outcome_update].startswith('WITH logged AS (INSERT INTO "crm_crmcall"')
    else:
        assert call_log_insert < outcome_update
    assert call_log_buffered() == 0
    operations = set(
        CrmCall.objects.filter(correlation=run.key).values_list("operation", flat=True)
    )
    assert "SaveAppointmentEntity" in operations
    assert Run.objects.get(id=run.id).status == RunStatus.DONE


def test_a_claimed_run_comes_with_what_it_needs_and_is_claimed_once(sim, task_runs):
    run = task_runs[0]

    claimed = services.run_claim(run_id=run.id)

    assert claimed is not None
    assert (claimed.status, claimed.attempts) == (RunStatus.RUNNING, 1)
    assert claimed.lease_expires_at is not None and claimed.claimed_by
    with CaptureQueriesContext(connection) as queries:
        assert claimed.account.superoffice_connection.base_url
        assert claimed.automation.campaign_id == claimed.event.campaign.pk
        assert claimed.contact.superoffice_person_id == 10
        assert claimed.event.link is None
    assert queries.captured_queries == []
    assert services.run_claim(run_id=run.id) is None
    stored = Run.objects.get(id=run.id)
    assert (stored.status, stored.attempts, stored.claimed_by) == (
        RunStatus.RUNNING,
        1,
        claimed.claimed_by,
    )


def test_each_claim_takes_its_own_run_with_its_own_values(sim, task_runs, other_account):
    # The claim statements are compiled once and run again with each claim's values.
    first, second = task_runs
    other_campaign = CampaignFactory(account=other_account)
    AutomationFactory(account=other_account, campaign=other_campaign)
    other_contact = ContactFactory(account=other_account, superoffice_person_id=11)
    event = Event.objects.create(
        account=other_account,
        campaign=other_campaign,
        contact=other_contact,
        type=EventType.EMAIL_OPENED,
    )
    (held,) = services.runs_create_for_events(account=other_account, events=[event])
    Run.objects.filter(id=held.id).update(dispatched_at=None)  # held back
    started = timezone.now()

    claims = [
        services.run_claim(run_id=first.id),
        claim_next(account_id=other_account.pk),
        services.run_claim(run_id=second.id),
        claim_next(account_id=other_account.pk),
    ]

    assert [c.id if c else None for c in claims] == [first.id, held.id, second.id, None]
    for claimed in claims[:3]:
        stored = Run.objects.get(id=claimed.id)
        assert (stored.status, stored.attempts) == (RunStatus.RUNNING, 1)
        assert stored.claimed_by == claimed.claimed_by == services._worker_name()
        assert started <= stored.started_at == claimed.started_at <= timezone.now()
        assert stored.lease_expires_at == claimed.lease_expires_at > stored.started_at
    assert claims[1].account_id == other_account.pk
    assert claims[1].contact.superoffice_person_id == 11
    assert claims[2].contact.superoffice_person_id == 10


@pytest.mark.django_db(transaction=True)
def test_a_claim_is_prepared_once_per_database_session_and_again_in_a_new_one(task_runs):
    # Planning the claim cost more than running it on PostgreSQL: each session prepares it
    # once. SQLite has no PREPARE statement; its claim is the plain conditional UPDATE.
    first, second = task_runs
    connection.close()  # a session of its own, whatever ran before
    with CaptureQueriesContext(connection) as queries:
        assert services.run_claim(run_id=first.id).id == first.id
    sent = [q["sql"].split(" ", 1)[0].upper() for q in queries.captured_queries]
    if connection.vendor == "postgresql":
        assert sent == ["PREPARE", "EXECUTE"]
    else:
        assert "PREPARE" not in sent and "EXECUTE" not in sent

    # A new session has none of the old one's statements: the claim is prepared again.
    connection.close()
    with CaptureQueriesContext(connection) as queries:
        claimed = services.run_claim(run_id=second.id)
        assert services.run_claim(run_id=second.id) is None  # taken: not claimed twice
    assert claimed.id == second.id and claimed.contact.superoffice_person_id == 10
    sent = [q["sql"].split(" ", 1)[0].upper() for q in queries.captured_queries]
    if connection.vendor == "postgresql":
        assert sent == ["PREPARE", "EXECUTE", "EXECUTE"]
    else:
        assert "PREPARE" not in sent and "EXECUTE" not in sent


def _call(run, **fields):
    """A call of `run` as the client records it; `fields` change its values."""
    from crm.client import CallRecord

    values = {
        "agent": "Appointment",
        "operation": "SaveAppointmentEntity",
        "started_at": timezone.now(),
        "duration_ms": 3,
        "outcome": CrmCall.Outcome.OK,
        "http_status": 200,
        "error": "",
        "request_excerpt": "",
        "response_excerpt": "",
        "correlation": run.key,
    }
    return CallRecord(**{**values, **fields})


@pytest.mark.django_db(transaction=True)
def test_calls_the_outcomes_statement_cannot_write_stay_buffered_and_the_outcome_is_recorded(
    task_runs, buffered_call_log
):
    from crm.call_log import (
        call_log_buffered,
        call_log_buffering,
        call_log_flush_with,
        call_log_record,
    )

    run = task_runs[0]
    # An agent longer than the column: PostgreSQL refuses the row.
    call = _call(run, agent="A" * 200, started_at=timezone.now())
    call_log_record(account_id=run.account_id, connection_id=0, call=call)

    updated = call_log_flush_with(lambda: Run.objects.filter(id=run.id), {"last_error": "recorded"})

    assert updated == 1 and Run.objects.get(id=run.id).last_error == "recorded"
    if connection.vendor == "postgresql":
        assert call_log_buffered() == 1, "the refused call is kept for the next flush"
        call_log_buffering(on=True)  # forgets it: the next tests' flushes would meet it
    else:
        # SQLite does not enforce a column's length: the call is written.
        assert CrmCall.objects.filter(correlation=run.key).count() == 1


def test_calls_written_with_the_outcome_read_back_as_they_were_recorded(
    task_runs, buffered_call_log
):
    from datetime import UTC, datetime

    from crm.call_log import call_log_buffered, call_log_flush_with, call_log_record
    from crm.client import CallRecord

    run = task_runs[0]
    calls = [
        _call(
            run,
            started_at=datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC),
            duration_ms=12,
            request_excerpt="<Description>Ring Åsa «now» & 'then' 100%</Description>",
            response_excerpt="<AppointmentId>7</AppointmentId>",
        ),
        _call(
            run,
            agent="Person",
            operation="GetPersonEntity",
            started_at=datetime(2026, 3, 4, 5, 6, 8, tzinfo=UTC),
            duration_ms=0,
            outcome=CrmCall.Outcome.TRANSIENT,
            http_status=None,
            error="ConnectionError: reset %s %%",
        ),
    ]
    for call in calls:
        call_log_record(account_id=run.account_id, connection_id=0, call=call)

    assert call_log_flush_with(lambda: Run.objects.filter(id=run.id), {"last_error": "x"}) == 1

    assert call_log_buffered() == 0
    fields = [f for f in CallRecord.__dataclass_fields__]
    stored = list(CrmCall.objects.filter(correlation=run.key).order_by("started_at").values())
    assert [{k: row[k] for k in fields} for row in stored] == [vars(c) for c in calls]
    assert {row["account_id"] for row in stored} == {run.account_id}


def test_an_outcome_is_not_recorded_over_a_run_another_worker_took_over_but_its_calls_are(
    sim, task_runs, buffered_call_log
):
    from datetime import timedelta

    from crm.call_log import call_log_buffered

    run = task_runs[0]
    first = services.run_claim(run_id=run.id)
    # Its lease ends before it is done (a stalled worker): another claim takes the run over.
    Run.objects.filter(id=run.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    second = services.run_claim(run_id=run.id)
    assert second.attempts == 2

    services._run_perform(first)

    stored = Run.objects.get(id=run.id)
    assert (stored.status, stored.attempts) == (RunStatus.RUNNING, 2), "the second claim holds"
    assert stored.crm_object_id is None
    assert call_log_buffered() == 0
    assert CrmCall.objects.filter(correlation=run.key, operation="SaveAppointmentEntity").exists()
