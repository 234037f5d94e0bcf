"""The automation pages: scoped to the account, paginated, with no N+1 queries."""

import pytest
from django.urls import reverse

from automations import services
from automations.models import Run, RunStatus

from .factories import AutomationFactory, CampaignFactory, ContactFactory, EventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(account):
    return CampaignFactory(account=account, name="Autumn webinar")


def _runs(account, campaign, n, *, person_id=7):
    automation = AutomationFactory(campaign=campaign, account=account, name="Add to webinar list")
    events = [
        EventFactory(
            campaign=campaign,
            account=account,
            contact=ContactFactory(account=account, superoffice_person_id=person_id),
        )
        for _ in range(n)
    ]
    return automation, services.runs_create_for_events(account=account, events=events)


def test_the_campaign_tab_lists_its_automations(marketer_client, account, campaign):
    AutomationFactory(campaign=campaign, account=account, name="Sale on demo request")
    AutomationFactory(account=account, name="Other campaign's")

    response = marketer_client.get(
        reverse("automations:campaign_automations", kwargs={"campaign_id": campaign.id})
    )

    assert response.status_code == 200
    assert b"Sale on demo request" in response.content
    assert b"Other campaign" not in response.content


def test_run_history_shows_runs_with_their_events_in_few_queries(
    marketer_client, account, campaign, django_assert_max_num_queries
):
    _runs(account, campaign, 30)

    with django_assert_max_num_queries(12):
        response = marketer_client.get(reverse("automations:run_list"))

    assert response.status_code == 200
    assert response.content.count(b"data-run=") == 25
    assert b"Email opened" in response.content


def test_run_history_filters_by_status(marketer_client, account, campaign):
    _, runs = _runs(account, campaign, 3)
    Run.objects.filter(id=runs[0].id).update(status=RunStatus.FAILED, last_error="boom")

    response = marketer_client.get(reverse("automations:run_list"), {"status": "failed"})

    assert response.content.count(b"data-run=") == 1
    assert f'data-run="{runs[0].id}"'.encode() in response.content


def test_an_unknown_status_filter_is_ignored_not_a_server_error(marketer_client):
    response = marketer_client.get(reverse("automations:run_list"), {"status": "<script>"})
    assert response.status_code == 200


def test_per_campaign_automation_and_contact_histories_show_only_their_runs(
    marketer_client, account, campaign
):
    automation, runs = _runs(account, campaign, 2)
    _runs(account, CampaignFactory(account=account), 3)

    by_campaign = marketer_client.get(
        reverse("automations:campaign_runs", kwargs={"campaign_id": campaign.id})
    )
    by_automation = marketer_client.get(
        reverse("automations:automation_runs", kwargs={"automation_id": automation.id})
    )
    by_contact = marketer_client.get(
        reverse("automations:contact_runs", kwargs={"contact_id": runs[0].contact_id})
    )

    assert by_campaign.content.count(b"data-run=") == 2
    assert by_automation.content.count(b"data-run=") == 2
    assert by_contact.content.count(b"data-run=") == 1


def test_a_failed_run_can_be_retried_from_its_page(marketer_client, account, campaign):
    _, (run,) = _runs(account, campaign, 1)
    Run.objects.filter(id=run.id).update(status=RunStatus.FAILED, attempts=8, last_error="x")
    url = reverse("automations:run_detail", kwargs={"run_id": run.id})
    assert b"Retry" in marketer_client.get(url).content

    response = marketer_client.post(
        reverse("automations:run_retry", kwargs={"run_id": run.id}), follow=True
    )

    assert response.status_code == 200
    run.refresh_from_db()
    assert run.status == RunStatus.PENDING
    assert run.attempts == 1


def test_the_queue_lists_contacts_with_waiting_runs(marketer_client, account, campaign):
    _runs(account, campaign, 2, person_id=None)
    _runs(account, campaign, 1)

    response = marketer_client.get(reverse("automations:queue"))

    assert response.content.count(b"data-contact=") == 2
    assert b"Add to webinar list" in response.content
    # Matching is done in the SuperOffice panel: the page says so and links to it.
    from leads.selectors import panel_settings_for

    panel = panel_settings_for(account=account)
    panel_url = reverse("leads:queue", kwargs={"panel_key": panel.panel_key})
    assert b"Matching happens in SuperOffice" in response.content
    assert f'href="{panel_url}"'.encode() in response.content


def test_disable_and_delete_are_posts_that_keep_the_history(marketer_client, account, campaign):
    automation, runs = _runs(account, campaign, 1)
    toggle = reverse("automations:automation_toggle", kwargs={"automation_id": automation.id})
    delete = reverse("automations:automation_delete", kwargs={"automation_id": automation.id})

    assert marketer_client.get(toggle).status_code == 405
    marketer_client.post(toggle)
    automation.refresh_from_db()
    assert automation.is_enabled is False

    marketer_client.post(delete)
    automation.refresh_from_db()
    assert automation.deleted_at is not None
    assert Run.objects.filter(id=runs[0].id).exists()


def test_every_page_of_another_account_is_not_found(
    client, signed_in, account, other_account, campaign, marketer
):
    automation, (run,) = _runs(account, campaign, 1)
    from tests.factories import MembershipFactory, UserFactory

    intruder = MembershipFactory(account=other_account, user=UserFactory(username="eve")).user
    signed_in(client, intruder, other_account)
    gets = [
        ("automations:campaign_automations", {"campaign_id": campaign.id}),
        ("automations:automation_create", {"campaign_id": campaign.id}),
        ("automations:campaign_runs", {"campaign_id": campaign.id}),
        ("automations:automation_edit", {"automation_id": automation.id}),
        ("automations:automation_runs", {"automation_id": automation.id}),
        ("automations:run_detail", {"run_id": run.id}),
        ("automations:contact_runs", {"contact_id": run.contact_id}),
    ]
    posts = [
        ("automations:automation_toggle", {"automation_id": automation.id}),
        ("automations:automation_delete", {"automation_id": automation.id}),
        ("automations:run_retry", {"run_id": run.id}),
    ]
    for name, kwargs in gets:
        assert client.get(reverse(name, kwargs=kwargs)).status_code == 404, name
    for name, kwargs in posts:
        assert client.post(reverse(name, kwargs=kwargs)).status_code == 404, name
    assert client.get(reverse("automations:run_list")).content.count(b"data-run=") == 0


def test_an_admin_switches_auto_matching_on_and_a_marketer_cannot(
    admin_client, account, client, signed_in, marketer
):
    url = reverse("automations:settings")

    admin_client.post(url, {"auto_match_single_email": "on"})

    from automations.models import AutomationSettings

    assert AutomationSettings.objects.get(account=account).auto_match_single_email is True
    signed_in(client, marketer, account)
    assert client.get(url).status_code == 403


def test_an_admin_sees_a_crm_pause_and_can_resume_the_held_runs(admin_client, account, campaign):
    _, (run,) = _runs(account, campaign, 1)
    services.account_crm_pause(account=account, reason="Wrong password")
    Run.objects.filter(id=run.id).update(
        next_attempt_at=run.next_attempt_at.replace(year=run.next_attempt_at.year + 1)
    )
    url = reverse("automations:settings")
    assert b"Wrong password" in admin_client.get(url).content

    admin_client.post(url, {"resume": "1"})

    run.refresh_from_db()
    assert run.next_attempt_at.year == run.created_at.year
    assert b"Wrong password" not in admin_client.get(url).content


def test_a_failed_run_says_what_happened_in_plain_words(marketer_client, account, campaign):
    from django.utils import timezone

    from crm.models import CrmCall

    _, (run,) = _runs(account, campaign, 1, person_id=9999)
    Run.objects.filter(id=run.id).update(
        status=RunStatus.FAILED,
        error_kind="permanent",
        last_error="NotFoundCrmError: Person 9999 does not exist",
    )
    CrmCall.objects.create(
        account=account,
        agent="Person",
        operation="GetPersonEntity",
        outcome="not_found",
        started_at=timezone.now(),
        duration_ms=12,
        correlation=run.key,
        error="NotFoundCrmError: Person 9999 does not exist",
    )
    pages = [
        marketer_client.get(reverse("automations:run_detail", kwargs={"run_id": run.id})),
        marketer_client.get(reverse("automations:run_list")),
    ]

    detail = pages[0].content.decode()
    assert "SuperOffice has no person 9999." in detail
    assert "read the person" in detail
    for page in pages:
        html = page.content.decode()
        for internal in ("NotFoundCrmError", "GetPersonEntity", "Person.", "Run key", run.key):
            assert internal not in html


@pytest.mark.parametrize(
    ("automation_type", "settings", "label"),
    [
        ("create_task", {}, "Task #41"),
        ("follow_up", {"follow_up_kind": "task"}, "Task #41"),
        ("follow_up", {"follow_up_kind": "meeting"}, "Meeting #41"),
        ("notify_sales_rep", {}, "Activity #41"),
        ("create_sale", {}, "Sale #41"),
    ],
)
def test_a_run_names_what_it_made_as_a_person_would(
    marketer_client, account, campaign, automation_type, settings, label
):
    from automations.models import Automation

    automation, (run,) = _runs(account, campaign, 1)
    Automation.objects.filter(pk=automation.pk).update(type=automation_type, settings=settings)
    object_type = "sale" if automation_type == "create_sale" else "appointment"
    Run.objects.filter(id=run.id).update(
        status=RunStatus.DONE, crm_object_type=object_type, crm_object_id=41
    )

    detail = marketer_client.get(reverse("automations:run_detail", kwargs={"run_id": run.id}))
    listing = marketer_client.get(reverse("automations:run_list"))

    for page in (detail, listing):
        html = page.content.decode()
        assert label in html
        assert "appointment #" not in html.lower()
