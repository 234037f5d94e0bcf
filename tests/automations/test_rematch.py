"""A run that failed after a wrong match, matched to another person and retried from its
page: the person looked up in SuperOffice (the simulator over HTTP) first, only failed runs
of matched contacts, the ledger's retry rules kept."""

import pytest
from django.urls import reverse

from automations import services
from automations.models import Run, RunStatus
from emhub.models import Membership
from tests.factories import MembershipFactory, UserFactory

from .factories import AutomationFactory, CampaignFactory, ContactFactory, EventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def crm_marketer_client(client, crm_account, signed_in):
    user = UserFactory(username="mia")
    MembershipFactory(user=user, account=crm_account, role=Membership.Role.MARKETER)
    return signed_in(client, user, crm_account)


def _failed_run(account, *, person_id=9999, **contact):
    """A run that failed for a contact matched to ``person_id``, as the engine leaves it."""
    campaign = CampaignFactory(account=account)
    AutomationFactory(account=account, campaign=campaign, name="Key account list")
    contact = ContactFactory(account=account, superoffice_person_id=person_id, **contact)
    event = EventFactory(account=account, campaign=campaign, contact=contact)
    (run,) = services.runs_create_for_events(account=account, events=[event])
    Run.objects.filter(id=run.id).update(
        status=RunStatus.FAILED, attempts=1, last_error="NotFoundCrmError: no person 9999"
    )
    run.refresh_from_db()
    return run


def _like(person):
    return {
        "email": person["Emails"][0],
        "first_name": person["Firstname"],
        "last_name": person["Lastname"],
    }


def _detail(run):
    return reverse("automations:run_detail", kwargs={"run_id": run.id})


def test_the_page_of_a_failed_matched_run_offers_to_match_another_person(
    crm_marketer_client, crm_account
):
    run = _failed_run(crm_account)

    body = crm_marketer_client.get(_detail(run)).content.decode()

    assert 'data-testid="rematch"' in body
    assert "is SuperOffice person #9999" in body
    assert reverse("automations:run_rematch", kwargs={"run_id": run.id}) not in body


def test_the_lookup_shows_the_person_as_superoffice_has_it_before_the_match(
    crm_marketer_client, crm_account, simulator
):
    person = simulator.state("persons/5")
    run = _failed_run(crm_account, **_like(person))

    body = crm_marketer_client.get(_detail(run), {"person_id": 5}).content.decode()

    assert 'data-testid="rematch-preview"' in body
    assert f"{person['Firstname']} {person['Lastname']}" in body
    assert "differs" not in body
    assert reverse("automations:run_rematch", kwargs={"run_id": run.id}) in body


def test_a_person_superoffice_does_not_have_is_refused_in_plain_words(
    crm_marketer_client, crm_account, simulator
):
    run = _failed_run(crm_account, person_id=5)

    body = crm_marketer_client.get(_detail(run), {"person_id": 8888}).content.decode()
    posted = crm_marketer_client.post(
        reverse("automations:run_rematch", kwargs={"run_id": run.id}),
        {"person_id": 8888},
        follow=True,
    )

    assert "SuperOffice has no person 8888." in body
    assert "SuperOffice has no person 8888." in posted.content.decode()
    run.contact.refresh_from_db()
    assert run.contact.superoffice_person_id == 5


def test_a_person_whose_name_differs_needs_the_confirmation(
    crm_marketer_client, crm_account, simulator
):
    run = _failed_run(crm_account, email="kari@example.com", first_name="Kari", last_name="N")
    url = reverse("automations:run_rematch", kwargs={"run_id": run.id})

    unconfirmed = crm_marketer_client.post(url, {"person_id": 5}, follow=True)
    run.contact.refresh_from_db()
    assert run.contact.superoffice_person_id == 9999
    assert "confirm it is the same person" in unconfirmed.content.decode()

    confirmed = crm_marketer_client.post(url, {"person_id": 5, "confirmed": "1"}, follow=True)

    run.contact.refresh_from_db()
    assert run.contact.superoffice_person_id == 5
    assert "is now SuperOffice person #5" in confirmed.content.decode()
    # Matched, not yet acted: the marketer retries when ready.
    assert Run.objects.get(id=run.id).status == RunStatus.FAILED


def test_re_matching_then_retrying_puts_the_run_back_to_pending_keeping_one_attempt(
    crm_marketer_client, crm_account, simulator
):
    run = _failed_run(crm_account, **_like(simulator.state("persons/5")))
    Run.objects.filter(id=run.id).update(attempts=3)

    crm_marketer_client.post(
        reverse("automations:run_rematch", kwargs={"run_id": run.id}), {"person_id": 5}
    )
    crm_marketer_client.post(reverse("automations:run_retry", kwargs={"run_id": run.id}))

    run.refresh_from_db()
    assert run.contact.superoffice_person_id == 5
    assert (run.status, run.attempts, run.finished_at) == (RunStatus.PENDING, 1, None)


def test_only_a_failed_run_of_a_matched_contact_can_be_re_matched(crm_account):
    done = _failed_run(crm_account)
    Run.objects.filter(id=done.id).update(status=RunStatus.DONE)
    unmatched = _failed_run(crm_account)
    type(unmatched.contact).objects.filter(id=unmatched.contact_id).update(
        superoffice_person_id=None
    )

    for run in (done, unmatched):
        with pytest.raises(services.RunNotRematchable):
            services.run_contact_rematch(run=run, person_id=5, by="mia")
        run.contact.refresh_from_db()
        assert run.contact.superoffice_person_id in (9999, None)


def test_a_done_run_page_offers_no_rematch_and_its_post_changes_nothing(
    crm_marketer_client, crm_account
):
    run = _failed_run(crm_account)
    Run.objects.filter(id=run.id).update(status=RunStatus.DONE)

    body = crm_marketer_client.get(_detail(run)).content.decode()
    posted = crm_marketer_client.post(
        reverse("automations:run_rematch", kwargs={"run_id": run.id}), {"person_id": 5}
    )

    assert 'data-testid="rematch"' not in body
    assert posted.status_code == 302
    run.contact.refresh_from_db()
    assert run.contact.superoffice_person_id == 9999


def test_bad_input_is_a_form_error_not_a_500(crm_marketer_client, crm_account):
    run = _failed_run(crm_account)

    page = crm_marketer_client.get(_detail(run), {"person_id": "abc"})
    posted = crm_marketer_client.post(
        reverse("automations:run_rematch", kwargs={"run_id": run.id}),
        {"person_id": "-1"},
        follow=True,
    )

    assert page.status_code == 200 and b"Enter a whole number." in page.content
    assert posted.status_code == 200 and b"Enter a SuperOffice person number." in posted.content
