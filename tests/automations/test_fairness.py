"""Fair dispatch: an account's runs in flight are kept to its limit, so its backlog waits
in the ledger instead of filling the broker's queue ahead of another account's runs."""

import pytest

from automations import services
from automations.models import Run
from campaigns.models import EventType

from .conftest import purge_broker, queued_messages
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


def _published(app) -> list[list[int]]:
    return [args[0] for name, args in queued_messages(app) if name == "automations.execute_runs"]


def test_a_backlog_goes_out_up_to_the_limit_one_run_per_message_and_the_rest_waits(
    account, other_account, limit, app
):
    backlog = _runs(account, 30)
    fresh = _runs(other_account, 2)

    assert services.runs_dispatch(run_ids=backlog, account_id=account.pk) == LIMIT
    assert services.runs_dispatch(run_ids=fresh, account_id=other_account.pk) == 2

    # Behind the other account's fresh runs in the queue: the limit's worth, not 30.
    assert _published(app) == [[backlog[0]], [backlog[1]], [backlog[2]], fresh]
    waiting = Run.objects.filter(id__in=backlog[LIMIT:], dispatched_at__isnull=True)
    assert waiting.count() == 30 - LIMIT


def test_runs_that_fit_the_limit_go_out_together(account, limit, app):
    click_actions = _runs(account, 2)

    assert services.runs_dispatch(run_ids=click_actions, account_id=account.pk) == 2
    assert _published(app) == [click_actions]


def test_a_finished_message_of_a_held_back_account_publishes_its_next_oldest_run(
    connected_account, limit, app
):
    backlog = _runs(connected_account, 10)
    services.runs_dispatch(run_ids=backlog, account_id=connected_account.pk)
    purge_broker(app)

    outcomes = services.runs_execute(run_ids=[backlog[0]], account_id=connected_account.pk)

    assert [o.status for o in outcomes] == ["done"]
    # Two of the limit are still in flight; the finished one's place goes to the next.
    assert _published(app) == [[backlog[LIMIT]]]
    assert Run.objects.get(id=backlog[LIMIT]).dispatched_at is not None


def test_the_sweeper_takes_each_accounts_oldest_runs_up_to_the_limit(
    account, other_account, limit, app
):
    backlog = _runs(account, 30)
    fresh = _runs(other_account, 2)
    Run.objects.update(dispatched_at=None)  # lost wake-ups: the broker was down

    assert services.runs_sweep() == LIMIT + 2

    published = sorted(run_id for message in _published(app) for run_id in message)
    assert published == sorted(backlog[:LIMIT] + fresh)
