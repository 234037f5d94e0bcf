"""Fair dispatch: an account's runs in flight are kept to its limit, so its backlog waits
in the ledger instead of filling the broker's queue ahead of another account's runs."""

import pytest

from automations import services
from automations.models import Run
from campaigns.models import EventType

from .conftest import claim_next, purge_broker, queued_messages
from .factories import AutomationFactory, CampaignFactory, ContactFactory, EventFactory

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

LIMIT = 3


@pytest.fixture
def limit(settings):
    settings.AUTOMATIONS_IN_FLIGHT_PER_ACCOUNT = LIMIT


@pytest.fixture
def app():
    from emhub.celery import app

    purge_broker(app)
    yield app
    purge_broker(app)


def _runs(account, count: int) -> list[int]:
    """`count` events of one matched contact of `account`, each making one pending run."""
    campaign = CampaignFactory(account=account)
    AutomationFactory(campaign=campaign, account=account)
    contact = ContactFactory(account=account, superoffice_person_id=17)
    events = [
        EventFactory(
            campaign=campaign, account=account, contact=contact, type=EventType.EMAIL_OPENED
        )
        for _ in range(count)
    ]
    runs = services.runs_create_for_events(account=account, events=events)
    return [r.id for r in runs]


def _slots_held(account) -> int:
    from crm.call_cap import call_slots_for

    return call_slots_for(base_url=account.superoffice_connection.base_url).holders()


def _published(app) -> list[list[int]]:
    return [args[0] for name, args in queued_messages(app) if name == "automations.execute_runs"]


def test_a_backlog_goes_out_up_to_the_limit_one_run_per_message_and_the_rest_waits(
    account, other_account, limit, app
):
    backlog = _runs(account, 30)
    fresh = _runs(other_account, 2)

    assert services.runs_dispatch(run_ids=backlog, account_id=account.pk) == LIMIT
    assert services.runs_dispatch(run_ids=fresh, account_id=other_account.pk) == 2

    # Ahead of the other account's fresh runs in the queue: the limit's worth, not 30.
    published = _published(app)
    expected = [[backlog[0]], [backlog[1]], [backlog[2]], fresh]
    if app.conf.broker_url.startswith("filesystem"):
        # The filesystem broker names a message by the millisecond it was written and a
        # random uuid, and reads them sorted by name (kombu/transport/filesystem.py), so
        # messages written in the same millisecond come out in any order.
        assert sorted(published) == sorted(expected)
    else:
        assert published == expected
    waiting = Run.objects.filter(id__in=backlog[LIMIT:], dispatched_at__isnull=True)
    assert waiting.count() == 30 - LIMIT


def test_runs_that_fit_the_limit_go_out_together(account, limit, app):
    click_actions = _runs(account, 2)

    assert services.runs_dispatch(run_ids=click_actions, account_id=account.pk) == 2
    assert _published(app) == [click_actions]


def test_a_finished_message_of_a_held_back_account_publishes_its_next_oldest_run(
    connected_account, limit, app, settings
):
    settings.AUTOMATIONS_LANE_SECONDS = 0  # its time is up after its own run
    backlog = _runs(connected_account, 10)
    services.runs_dispatch(run_ids=backlog, account_id=connected_account.pk)
    purge_broker(app)

    outcomes = services.runs_execute(run_ids=[backlog[0]], account_id=connected_account.pk)

    assert [o.status for o in outcomes] == ["done"]
    # Two of the limit are still in flight; the finished one's place goes to the next.
    assert _published(app) == [[backlog[LIMIT]]]
    assert Run.objects.get(id=backlog[LIMIT]).dispatched_at is not None


def test_the_worker_of_a_held_back_account_takes_its_next_runs_itself_up_to_the_lane_size(
    connected_account, limit, app, settings
):
    settings.AUTOMATIONS_LANE_RUNS = 3
    settings.AUTOMATIONS_LANE_SECONDS = 60
    backlog = _runs(connected_account, 10)
    services.runs_dispatch(run_ids=backlog, account_id=connected_account.pk)
    purge_broker(app)

    outcomes = services.runs_execute(run_ids=[backlog[0]], account_id=connected_account.pk)

    # Its own run, then the two oldest held back, each claimed by this worker without a
    # message; then the account's place goes on to the next oldest, through the broker.
    assert [o.status for o in outcomes] == ["done", "done", "done"]
    done = set(Run.objects.filter(status="done").values_list("id", flat=True))
    assert done == {backlog[0], backlog[LIMIT], backlog[LIMIT + 1]}
    assert _published(app) == [[backlog[LIMIT + 2]]]
    # The runs in flight were never more than the limit: two published, one executing.
    assert Run.objects.filter(id__in=backlog[1:LIMIT], status="pending").count() == 2
    # The slot of the tenant's cap its runs kept from one to the next is given back.
    assert _slots_held(connected_account) == 0


def test_claiming_an_accounts_next_run_takes_one_held_back_run_once(account, limit, app):
    backlog = _runs(account, 6)
    services.runs_dispatch(run_ids=backlog, account_id=account.pk)

    first = claim_next(account_id=account.pk)
    second = claim_next(account_id=account.pk)

    # The oldest held back, one per claim (not the runs whose wake-up is out).
    assert (first.id, second.id) == (backlog[LIMIT], backlog[LIMIT + 1])
    assert first.status == "running" and first.attempts == 1
    running = Run.objects.filter(status="running").values_list("id", flat=True)
    assert sorted(running) == [backlog[LIMIT], backlog[LIMIT + 1]]
    assert claim_next(account_id=account.pk).id == backlog[LIMIT + 2]
    assert claim_next(account_id=account.pk) is None
    # A claimed run is not claimed again by its own message.
    assert services.run_execute(run_id=first.id).status == "skipped"


def test_the_sweeper_takes_each_accounts_oldest_runs_up_to_the_limit(
    account, other_account, limit, app
):
    backlog = _runs(account, 30)
    fresh = _runs(other_account, 2)
    Run.objects.update(dispatched_at=None)  # lost wake-ups: the broker was down

    assert services.runs_sweep() == LIMIT + 2

    published = sorted(run_id for message in _published(app) for run_id in message)
    assert published == sorted(backlog[:LIMIT] + fresh)


def test_a_lane_claims_its_next_runs_together_and_gives_back_those_it_did_not_start(
    connected_account, limit, app, settings, sim
):
    settings.AUTOMATIONS_LANE_RUNS = 10
    settings.AUTOMATIONS_LANE_SECONDS = 60
    backlog = _runs(connected_account, 12)
    services.runs_dispatch(run_ids=backlog, account_id=connected_account.pk)
    purge_broker(app)
    # The message's own run looks up the selection's members; the next look-up fails (503),
    # so the lane stops there.
    sim.control(mode="fail_ratio", ratio=0.5, operations=["GetArchiveListByColumns"])

    outcomes = services.runs_execute(run_ids=[backlog[0]], account_id=connected_account.pk)

    assert [o.status for o in outcomes] == ["done", "pending"]
    # Its first claim took the next nine held back (the time left held them all, and
    # the lane had nine runs left); the one that failed waits for its retry, and the
    # eight it never started are as they were: pending, no attempt counted, no wake-up out.
    given_back = Run.objects.filter(id__in=backlog[LIMIT + 1 : LIMIT + 8])
    assert (
        sorted(given_back.values_list("status", "attempts", "lease_expires_at"))
        == [("pending", 0, None)] * 7
    )
    assert not given_back.filter(dispatched_at__isnull=False).exists()
    retried = Run.objects.get(id=backlog[LIMIT])
    assert (retried.status, retried.attempts) == ("pending", 1) and retried.last_error
    assert claim_next(account_id=connected_account.pk).id == backlog[LIMIT + 1]


def test_claiming_several_next_runs_takes_the_oldest_held_back_once(account, limit, app):
    backlog = _runs(account, 10)
    services.runs_dispatch(run_ids=backlog, account_id=account.pk)

    first = services.runs_claim_next(account_id=account.pk, count=2)
    second = services.runs_claim_next(account_id=account.pk, count=4)

    assert [r.id for r in first] == backlog[LIMIT : LIMIT + 2]
    assert [r.id for r in second] == backlog[LIMIT + 2 : LIMIT + 6]
    assert {r.status for r in first + second} == {"running"}
    assert [r.id for r in services.runs_claim_next(account_id=account.pk, count=8)] == backlog[
        LIMIT + 6 :
    ]
    assert services.runs_claim_next(account_id=account.pk, count=8) == []


@pytest.mark.django_db(transaction=True)
def test_claims_of_any_number_of_runs_are_one_statement_prepared_once(account, limit, app):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    backlog = _runs(account, 12)
    services.runs_dispatch(run_ids=backlog, account_id=account.pk)
    connection.close()  # a session of its own, whatever ran before

    with CaptureQueriesContext(connection) as queries:
        claimed = [
            [r.id for r in services.runs_claim_next(account_id=account.pk, count=n)]
            for n in (1, 3, 5)
        ]

    assert claimed == [backlog[3:4], backlog[4:7], backlog[7:12]]
    sent = [q["sql"].split(" ", 1)[0].upper() for q in queries.captured_queries]
    if connection.vendor == "postgresql":
        # The number of runs is a parameter of the statement, not a statement of its own.
        assert sent == ["PREPARE", "EXECUTE", "EXECUTE", "EXECUTE"]
    else:
        assert "PREPARE" not in sent
