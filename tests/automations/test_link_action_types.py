"""The link action types: a click through /t/ executed by a real Celery worker, the link's
page adding, editing and removing actions with SuperOffice's lists, values checked per
field type."""

from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from automations.link_actions import FieldValueInvalid, field_value_encode
from automations.models import Automation, AutomationType, Run, RunStatus
from campaigns.models import Event, EventType
from campaigns.services import tracking_url_for_link

from .conftest import wait_until
from .factories import AutomationFactory, CampaignFactory, ContactFactory, TrackedLinkFactory

pytestmark = pytest.mark.both_databases

T = AutomationType
PERSON = 10


@pytest.fixture
def link(connected_account):
    campaign = CampaignFactory(account=connected_account, name="Autumn webinar")
    return TrackedLinkFactory(campaign=campaign, name="Sign up")


def test_a_click_on_the_hub_endpoint_makes_a_ticket_through_a_real_worker(
    sim, celery_worker_threads, client, link
):
    reader = ContactFactory(
        account=link.account, email="reader@example.com", superoffice_person_id=PERSON
    )
    AutomationFactory(
        account=link.account,
        campaign=link.campaign,
        type=T.CREATE_REQUEST,
        trigger_event_type=EventType.LINK_CLICKED,
        trigger_link=link,
        settings={"request_title": "Wants a demo", "request_assign": "category", "category_id": 2},
    )
    parts = urlsplit(tracking_url_for_link(link=link, contact=reader))

    response = client.get(f"{parts.path}?{parts.query}", HTTP_USER_AGENT="Mozilla/5.0 Firefox")

    assert response.status_code == 302
    run = wait_until(
        lambda: Run.objects.filter(account=link.account, status=RunStatus.DONE).first(),
        timeout=30,
        message="the link action did not run",
    )
    (ticket,) = sim.state("tickets")
    assert ticket["TicketId"] == run.crm_object_id
    # Category 2 ("Support") routes to associate 5 in the simulator.
    assert (ticket["OwnerId"], ticket["PersonId"]) == (5, PERSON)


@pytest.mark.parametrize(
    ("field_type", "value", "encoded"),
    [
        ("Integer", " 7 ", "[I:7]"),
        ("MdoList", "3", "[I:3]"),
        ("Decimal", "3,5", "[F:3.5]"),
        ("Date", "2026-01-31", "[D:01/31/2026]"),
        ("Checkbox", "", "[I:0]"),
        ("ShortText", "Hello", "Hello"),
    ],
)
def test_values_are_encoded_as_netserver_writes_custom_fields(field_type, value, encoded):
    assert field_value_encode(field_type=field_type, value=value) == encoded


@pytest.mark.parametrize(
    ("field_type", "value"),
    [
        ("Integer", "seven"),
        ("Date", "31.01.2026"),
        ("Checkbox", "maybe"),
        ("Blob", "x"),
    ],
)
def test_a_value_that_does_not_fit_the_field_is_refused(field_type, value):
    with pytest.raises(FieldValueInvalid):
        field_value_encode(field_type=field_type, value=value)


@pytest.mark.django_db
def test_the_action_form_offers_the_accounts_fields_scripts_and_request_lists(
    marketer_client, link
):
    response = marketer_client.get(reverse("automations:link_action_create", args=[link.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    for name in (
        "Lead score (Integer)",
        "Last webinar (Date)",
        "echo",
        "lead-router",
        "Sales enquiry",
        "Critical",
    ):
        assert name in html, name
    assert f'name="trigger_link" value="{link.pk}"' in html


@pytest.mark.django_db
def test_a_marketer_adds_edits_and_removes_a_set_field_action_with_a_typed_value(
    marketer_client, link
):
    url = reverse("automations:link_action_create", args=[link.pk])
    bad = marketer_client.post(
        url,
        {
            "type": T.SET_FIELD,
            "field_key": "SuperOffice:2",
            "field_value": "lots",
            "is_enabled": "on",
        },
    )
    assert bad.status_code == 200
    assert "Enter a whole number." in bad.content.decode()
    assert not Automation.objects.exists()

    good = marketer_client.post(
        url,
        {
            "type": T.SET_FIELD,
            "field_key": "SuperOffice:2",
            "field_value": "42",
            "is_enabled": "on",
            "trigger_event_type": "email_opened",
        },
    )
    assert good.status_code == 302
    action = Automation.objects.get()
    assert (action.trigger_event_type, action.trigger_link_id) == ("link_clicked", link.pk)
    assert action.settings == {
        "field_key": "SuperOffice:2",
        "field_type": "Integer",
        "field_value": "42",
    }
    assert action.name == "Set a field of the person · Sign up"

    edit = reverse("automations:link_action_edit", args=[link.pk, action.pk])
    assert 'value="42"' in marketer_client.get(edit).content.decode()
    marketer_client.post(
        edit, {"type": T.RUN_SCRIPT, "name": "Route the lead", "script_id": "2", "is_enabled": "on"}
    )
    action.refresh_from_db()
    assert (action.type, action.settings) == (T.RUN_SCRIPT, {"script_id": 2})

    page = marketer_client.get(reverse("automations:link_detail", args=[link.pk]))
    assert "Route the lead" in page.content.decode()
    marketer_client.post(reverse("automations:link_action_delete", args=[link.pk, action.pk]))
    action.refresh_from_db()
    assert action.deleted_at is not None
    after = marketer_client.get(reverse("automations:link_detail", args=[link.pk]))
    assert list(after.context["actions"]) == []


@pytest.mark.django_db
def test_a_request_needs_a_title_and_an_assignment(marketer_client, link):
    response = marketer_client.post(
        reverse("automations:link_action_create", args=[link.pk]),
        {"type": T.CREATE_REQUEST, "is_enabled": "on"},
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert {"request_title", "request_assign"} <= set(errors)


@pytest.mark.django_db
def test_the_link_page_saves_a_text_response_sanitised(marketer_client, link):
    response = marketer_client.post(
        reverse("automations:link_detail", args=[link.pk]),
        {
            "response_kind": "text",
            "response_title": "Thanks",
            "response_html": "<p>Hi</p><script>x()</script>",
        },
    )
    assert response.status_code == 302
    link.refresh_from_db()
    assert (link.response_kind, link.response_html) == ("text", "<p>Hi</p>")

    empty = marketer_client.post(
        reverse("automations:link_detail", args=[link.pk]),
        {"response_kind": "text", "response_html": ""},
    )
    assert empty.status_code == 200 and "response_html" in empty.context["form"].errors


@pytest.mark.django_db
def test_a_scripts_output_shows_on_the_run_page(marketer_client, link):
    reader = ContactFactory(account=link.account, email="r@example.com")
    automation = AutomationFactory(
        account=link.account, campaign=link.campaign, type=T.RUN_SCRIPT, settings={"script_id": 1}
    )
    event = Event.objects.create(
        account=link.account,
        campaign=link.campaign,
        contact=reader,
        type=EventType.LINK_CLICKED,
        link=link,
    )
    run = Run.objects.create(
        account=link.account,
        automation=automation,
        event=event,
        contact=reader,
        status=RunStatus.DONE,
        key="r-out",
        output="echo:custId=10",
    )

    page = marketer_client.get(reverse("automations:run_detail", args=[run.pk]))

    assert "echo:custId=10" in page.content.decode()


def test_a_tracked_links_page_has_a_copy_button_without_inline_script(marketer_client, account):
    from pathlib import Path

    from django.conf import settings

    campaign = CampaignFactory(account=account)
    link = TrackedLinkFactory(account=account, campaign=campaign)
    html = marketer_client.get(reverse("automations:link_detail", args=[link.pk])).content.decode()

    assert 'data-copy="#tracked-link-url"' in html and 'id="tracked-link-url"' in html
    assert "sendouts add it for each recipient" in html
    assert "<script>" not in html and "onclick" not in html
    script = (Path(settings.BASE_DIR) / "static" / "js" / "app.js").read_text()
    assert "button[data-copy]" in script and "navigator.clipboard.writeText" in script
