"""The run ledger without SuperOffice: which runs an event makes, claims, sweeps, the queue."""

from datetime import timedelta

import pytest
from django.utils import timezone

from automations import services
from automations.models import Run, RunStatus
from campaigns.models import EventType

from ..databases import per_database
from .factories import (
    AutomationFactory,
    CampaignFactory,
    ContactFactory,
    EventFactory,
    FormFactory,
    TrackedLinkFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]


@pytest.fixture
def campaign(account):
    return CampaignFactory(account=account)


@pytest.fixture
def matched_contact(account):
    return ContactFactory(account=account, superoffice_person_id=17)


def _event(campaign, contact, **kw):
    return EventFactory(campaign=campaign, account=campaign.account, contact=contact, **kw)


def _runs_of_one_automation(campaign, contact, count: int) -> list[Run]:
    """`count` events of the contact, each making one pending run of one automation."""
    AutomationFactory(campaign=campaign, account=campaign.account)
    return services.runs_create_for_events(
        account=campaign.account, events=[_event(campaign, contact) for _ in range(count)]
    )


def test_an_event_makes_one_pending_run_per_matching_enabled_automation(
    account, campaign, matched_contact
):
    wanted = AutomationFactory(campaign=campaign, account=account)
    AutomationFactory(campaign=campaign, account=account, is_enabled=False)
    AutomationFactory(campaign=campaign, account=account, trigger_event_type=EventType.EMAIL_SENT)
    AutomationFactory(account=account, campaign=CampaignFactory(account=account))
    deleted = AutomationFactory(campaign=campaign, account=account)
    services.automation_delete(automation=deleted)

    runs = services.runs_create_for_events(
        account=account, events=[_event(campaign, matched_contact)]
    )

    assert [r.automation_id for r in runs] == [wanted.id]
    assert runs[0].status == RunStatus.PENDING
    assert runs[0].contact_id == matched_contact.id


def test_a_link_or_form_trigger_matches_only_that_link_or_form(account, campaign, matched_contact):
    link, other_link = TrackedLinkFactory(campaign=campaign), TrackedLinkFactory(campaign=campaign)
    form = FormFactory(campaign=campaign)
    on_link = AutomationFactory(
        campaign=campaign,
        account=account,
        trigger_event_type=EventType.LINK_CLICKED,
        trigger_link=link,
    )
    any_link = AutomationFactory(
        campaign=campaign, account=account, trigger_event_type=EventType.LINK_CLICKED
    )
    on_form = AutomationFactory(
        campaign=campaign,
        account=account,
        trigger_event_type=EventType.FORM_SUBMITTED,
        trigger_form=form,
    )

    clicked_other = _event(campaign, matched_contact, type=EventType.LINK_CLICKED, link=other_link)
    clicked = _event(campaign, matched_contact, type=EventType.LINK_CLICKED, link=link)
    submitted = _event(campaign, matched_contact, type=EventType.FORM_SUBMITTED, form=form)
    runs = services.runs_create_for_events(
        account=account, events=[clicked_other, clicked, submitted]
    )

    pairs = {(r.event_id, r.automation_id) for r in runs}
    assert pairs == {
        (clicked_other.id, any_link.id),
        (clicked.id, any_link.id),
        (clicked.id, on_link.id),
        (submitted.id, on_form.id),
    }


def test_a_batch_costs_a_bounded_number_of_queries(
    account, campaign, django_assert_max_num_queries
):
    AutomationFactory.create_batch(3, campaign=campaign, account=account)
    contacts = ContactFactory.create_batch(20, account=account, superoffice_person_id=5)
    events = [_event(campaign, c) for c in contacts for _ in range(5)]

    with django_assert_max_num_queries(per_database(postgresql=5, sqlite=12)):
        runs = services.runs_create_for_events(account=account, events=events)

    assert len(runs) == 300


def test_once_per_contact_keeps_one_run_per_contact_across_batches_and_within_one(
    account, campaign, matched_contact
):
    automation = AutomationFactory(campaign=campaign, account=account, once_per_contact=True)
    other = ContactFactory(account=account, superoffice_person_id=18)

    first = services.runs_create_for_events(
        account=account,
        events=[
            _event(campaign, matched_contact),
            _event(campaign, matched_contact),
            _event(campaign, other),
        ],
    )
    second = services.runs_create_for_events(
        account=account, events=[_event(campaign, matched_contact)]
    )

    assert len(first) == 2
    assert second == []
    assert Run.objects.filter(automation=automation, contact=matched_contact).count() == 1


def test_the_same_event_given_twice_makes_its_runs_once(account, campaign, matched_contact):
    AutomationFactory(campaign=campaign, account=account)
    event = _event(campaign, matched_contact)

    services.runs_create_for_events(account=account, events=[event])
    again = services.runs_create_for_events(account=account, events=[event])

    assert again == []
    assert Run.objects.filter(event=event).count() == 1


def test_events_of_another_account_make_no_runs(account, other_account, campaign, matched_contact):
    AutomationFactory(campaign=campaign, account=account)
    event = _event(campaign, matched_contact)

    assert services.runs_create_for_events(account=other_account, events=[event]) == []


def test_a_contact_without_a_person_waits_for_a_match_at_once(account, campaign):
    AutomationFactory(campaign=campaign, account=account)
    contact = ContactFactory(account=account)

    (run,) = services.runs_create_for_events(account=account, events=[_event(campaign, contact)])

    assert run.status == RunStatus.WAITING_FOR_MATCH
    assert run.waiting_since is not None


def test_with_auto_match_on_an_unmatched_contact_still_goes_to_a_worker(account, campaign):
    services.automation_settings_update(account=account, auto_match_single_email=True)
    AutomationFactory(campaign=campaign, account=account)

    (run,) = services.runs_create_for_events(
        account=account, events=[_event(campaign, ContactFactory(account=account))]
    )

    assert run.status == RunStatus.PENDING


def test_runs_are_dispatched_only_after_the_transaction_commits(
    account, campaign, matched_contact, django_capture_on_commit_callbacks
):
    AutomationFactory(campaign=campaign, account=account)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.runs_create_for_events(account=account, events=[_event(campaign, matched_contact)])
    assert len(callbacks) == 1


def test_only_one_of_two_claims_of_a_run_wins(account, campaign, matched_contact):
    AutomationFactory(campaign=campaign, account=account)
    (run,) = services.runs_create_for_events(
        account=account, events=[_event(campaign, matched_contact)]
    )

    first = services.run_claim(run_id=run.id)
    second = services.run_claim(run_id=run.id)

    assert first is not None and first.status == RunStatus.RUNNING and first.attempts == 1
    assert second is None


def test_a_run_not_yet_due_cannot_be_claimed_but_an_expired_lease_can(
    account, campaign, matched_contact
):
    AutomationFactory(campaign=campaign, account=account)
    (run,) = services.runs_create_for_events(
        account=account, events=[_event(campaign, matched_contact)]
    )
    Run.objects.filter(id=run.id).update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    assert services.run_claim(run_id=run.id) is None

    Run.objects.filter(id=run.id).update(
        status=RunStatus.RUNNING,
        attempts=1,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    reclaimed = services.run_claim(run_id=run.id)
    assert reclaimed is not None and reclaimed.attempts == 2


def test_the_sweeper_redispatches_lost_and_expired_runs_but_not_fresh_ones(
    account, campaign, matched_contact
):
    lost, fresh, expired, later = _runs_of_one_automation(campaign, matched_contact, 4)
    now = timezone.now()
    Run.objects.filter(id=lost.id).update(dispatched_at=None)
    Run.objects.filter(id=expired.id).update(
        status=RunStatus.RUNNING,
        lease_expires_at=now - timedelta(seconds=5),
        dispatched_at=now - timedelta(hours=1),
    )
    Run.objects.filter(id=later.id).update(
        dispatched_at=None, next_attempt_at=now + timedelta(minutes=5)
    )

    assert services.runs_sweep() == 2
    assert Run.objects.get(id=lost.id).dispatched_at is not None
    assert services.runs_sweep() == 0


def test_setting_a_person_resumes_all_waiting_runs_of_the_contact(account, campaign):
    AutomationFactory.create_batch(2, campaign=campaign, account=account)
    contact = ContactFactory(account=account)
    other = ContactFactory(account=account)
    services.runs_create_for_events(
        account=account, events=[_event(campaign, contact), _event(campaign, other)]
    )

    resumed = services.contact_person_set(contact=contact, person_id=99)

    assert resumed == 2
    contact.refresh_from_db()
    assert contact.superoffice_person_id == 99
    assert set(Run.objects.filter(contact=contact).values_list("status", flat=True)) == {
        RunStatus.PENDING
    }
    assert set(Run.objects.filter(contact=other).values_list("status", flat=True)) == {
        RunStatus.WAITING_FOR_MATCH
    }


def test_dismissing_a_contact_cancels_its_waiting_runs_with_the_reason(account, campaign):
    AutomationFactory(campaign=campaign, account=account)
    contact = ContactFactory(account=account)
    services.runs_create_for_events(account=account, events=[_event(campaign, contact)])

    assert services.runs_dismiss_for_contact(contact=contact, reason="Not a customer") == 1

    run = Run.objects.get(contact=contact)
    assert (run.status, run.cancel_reason) == (RunStatus.CANCELLED, "Not a customer")


def test_the_sweeper_resumes_a_waiting_run_whose_contact_got_a_person(account, campaign):
    AutomationFactory(campaign=campaign, account=account)
    contact = ContactFactory(account=account)
    (run,) = services.runs_create_for_events(account=account, events=[_event(campaign, contact)])
    type(contact).objects.filter(pk=contact.pk).update(superoffice_person_id=5)

    services.runs_sweep()

    assert Run.objects.get(id=run.id).status == RunStatus.PENDING


def test_backoff_grows_is_capped_and_honours_retry_after(settings):
    settings.AUTOMATIONS_RETRY_BASE_SECONDS = 10
    settings.AUTOMATIONS_RETRY_CAP_SECONDS = 100
    first = [services.backoff_seconds(attempt=1) for _ in range(50)]
    fourth = [services.backoff_seconds(attempt=4) for _ in range(50)]
    tenth = [services.backoff_seconds(attempt=10) for _ in range(50)]

    assert all(5 <= d <= 10 for d in first)
    assert all(40 <= d <= 80 for d in fourth)
    assert all(50 <= d <= 100 for d in tenth)
    assert len(set(fourth)) > 1  # jitter
    assert services.backoff_seconds(attempt=1, retry_after=42) == 42


@pytest.mark.parametrize("n_runs", [3, 60])
def test_with_the_broker_unreachable_dispatch_never_raises_and_leaves_runs_to_the_sweeper(
    account, campaign, matched_contact, n_runs
):
    from .conftest import app_broker, free_port

    runs = _runs_of_one_automation(campaign, matched_contact, n_runs)
    ids = [r.id for r in runs]

    with app_broker(f"redis://127.0.0.1:{free_port()}/0"):
        assert services.runs_dispatch(run_ids=ids) == 0

    assert not Run.objects.filter(id__in=ids, dispatched_at__isnull=False).exists()


def test_a_small_batch_wakes_up_in_messages_of_a_few_runs_and_a_large_one_fans_out(
    account, campaign, matched_contact, settings
):
    from emhub.celery import app

    from .conftest import purge_broker, queued_messages

    # How messages are made, with no limit on an account's runs in flight (test_fairness).
    settings.AUTOMATIONS_IN_FLIGHT_PER_ACCOUNT = 0

    runs = _runs_of_one_automation(campaign, matched_contact, 30)
    ids = [r.id for r in runs]
    purge_broker(app)

    assert services.runs_dispatch(run_ids=ids[:12]) == 12
    assert services.runs_dispatch(run_ids=ids) == 30
    # The filesystem broker (the embedded default) does not keep messages published within
    # the same instant in order, so the messages are compared as a set.
    assert sorted(queued_messages(app), key=repr) == sorted(
        [
            ("automations.execute_runs", [ids[0:5]]),
            ("automations.execute_runs", [ids[5:10]]),
            ("automations.execute_runs", [ids[10:12]]),
            ("automations.dispatch_runs", [ids]),
        ],
        key=repr,
    )


def test_when_a_run_of_a_message_is_put_back_the_rest_wait_for_the_sweeper(
    account, campaign, matched_contact
):
    runs = _runs_of_one_automation(campaign, matched_contact, 3)
    ids = [r.id for r in runs]
    # SuperOffice refused the account's configuration: its runs are held, not tried.
    services.account_crm_pause(account=account, reason="Ticket refused")

    outcomes = services.runs_execute(run_ids=ids)

    assert [(o.status, o.detail) for o in outcomes] == [(RunStatus.PENDING, "account paused")]
    held = Run.objects.filter(id__in=ids)
    assert {(r.status, r.attempts, r.dispatched_at) for r in held} == {(RunStatus.PENDING, 0, None)}


def test_a_batch_claim_takes_due_pending_runs_once(account, campaign, matched_contact):
    runs = _runs_of_one_automation(campaign, matched_contact, 5)
    Run.objects.filter(id=runs[0].id).update(next_attempt_at=timezone.now() + timedelta(hours=1))

    first = services.runs_claim_batch(limit=3)
    second = services.runs_claim_batch(limit=10)

    assert len(first) == 3 and len(second) == 1
    assert not {r.id for r in first} & {r.id for r in second}
    assert {r.status for r in first + second} == {RunStatus.RUNNING}


def test_descriptions_fill_event_facts_and_leave_anything_else_as_typed(account, campaign):
    from automations.actions import description_render

    link = TrackedLinkFactory(campaign=campaign, name="Pricing")
    contact = ContactFactory(account=account, email="ola@example.com", superoffice_person_id=3)
    AutomationFactory(campaign=campaign, account=account, trigger_event_type=EventType.LINK_CLICKED)
    event = _event(campaign, contact, type=EventType.LINK_CLICKED, link=link)
    (run,) = services.runs_create_for_events(account=account, events=[event])

    text = description_render(
        template="{email} clicked {link} in {campaign} {form}| {contact.__class__} {0} "
        "{unknown} {email!r} {time:%Y}",
        run=run,
    )

    assert text.startswith(f"ola@example.com clicked Pricing in {campaign.name} | ")
    assert text.endswith("{contact.__class__} {0} {unknown} {email!r} {time:%Y}")
