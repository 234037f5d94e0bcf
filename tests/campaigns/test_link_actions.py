"""Link actions through the hub's real click endpoint: what the recipient's browser gets,
and what the click does in SuperOffice (the NetServer simulator over HTTP), with the
automation engine executing the runs the click wrote."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from automations import services as automation_services
from automations.models import Automation, AutomationType, Run, RunStatus
from campaigns import link_responses
from campaigns.models import Event, EventType, LinkResponse
from campaigns.services import tracking_url_for_link
from campaigns.tasks import drain_clicks
from crm.models import SuperOfficeConnection
from tests.automations.factories import (
    AutomationFactory,
    CampaignFactory,
    ContactFactory,
    TrackedLinkFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

T = AutomationType
PERSON = 10  # a seeded simulator person
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36"
)


@pytest.fixture
def shop(account, simulator):
    """The marketer's account, connected to the simulator."""
    SuperOfficeConnection.objects.create(
        account=account,
        base_url=simulator.base_url,
        auth_mode="onsite",
        username=simulator.username,
        password=simulator.password,
        application_token=simulator.app_token,
    )
    return account


@pytest.fixture
def campaign(shop):
    return CampaignFactory(account=shop, name="Autumn webinar")


@pytest.fixture
def link(campaign):
    return TrackedLinkFactory(campaign=campaign, name="Sign up", url="https://example.com/signup")


@pytest.fixture
def reader(shop):
    return ContactFactory(account=shop, email="reader@example.com", superoffice_person_id=PERSON)


def _path(link, contact) -> str:
    parts = urlsplit(tracking_url_for_link(link=link, contact=contact))
    return f"{parts.path}?{parts.query}"


def _click(client, link, contact, *, user_agent=BROWSER, method="get", drain=True):
    """Follow the link as the recipient's browser does; then, unless told not to, run the
    drain a worker runs (campaigns.tasks.drain_clicks), which stores the click's event."""
    response = getattr(client, method)(_path(link, contact), HTTP_USER_AGENT=user_agent)
    if drain:
        drain_clicks()
    return response


def _action(link, type_, settings, **kwargs) -> Automation:
    return AutomationFactory(
        account=link.account,
        campaign=link.campaign,
        type=type_,
        settings=settings,
        trigger_event_type=EventType.LINK_CLICKED,
        trigger_link=link,
        **kwargs,
    )


def _execute_all(account) -> list[Run]:
    """Execute every pending run with the real engine (claim, CRM client, record)."""
    for run_id in Run.objects.filter(account=account, status=RunStatus.PENDING).values_list(
        "id", flat=True
    ):
        automation_services.run_execute(run_id=run_id)
    return list(Run.objects.filter(account=account).order_by("id"))


# --- the response ---------------------------------------------------------------------------


def test_a_click_redirects_to_the_link_or_to_another_page_the_marketer_chose(client, link, reader):
    response = _click(client, link, reader)
    assert response.status_code == 302 and response["Location"] == "https://example.com/signup"

    link_responses.tracked_link_response_set(
        link=link, kind=LinkResponse.REDIRECT, url="https://example.com/thanks"
    )
    response = _click(client, link, reader)
    assert response.status_code == 302 and response["Location"] == "https://example.com/thanks"
    assert response["Cache-Control"].startswith("no-cache")
    assert Event.objects.filter(link=link, type=EventType.LINK_CLICKED).count() == 2


def test_a_text_page_is_served_with_unsafe_html_stripped(client, link, reader):
    link_responses.tracked_link_response_set(
        link=link,
        kind=LinkResponse.TEXT,
        title="You're signed up",
        html=(
            '<p>See you <b>Thursday</b>.</p><script>alert("x")</script>'
            '<a href="javascript:alert(1)" onclick="steal()">bad</a>'
            '<a href="https://example.com/agenda">Agenda</a>'
            '<img src="https://example.com/a.png" onerror="steal()">'
            '<style>body{display:none}</style><iframe src="https://evil.example"></iframe>'
        ),
    )

    response = _click(client, link, reader)

    html = response.content.decode()
    assert response.status_code == 200
    assert "You&#x27;re signed up" in html or "You're signed up" in html
    assert "<p>See you <b>Thursday</b>.</p>" in html
    assert 'href="https://example.com/agenda"' in html
    for unsafe in ("<script>alert", "javascript:", "onclick", "onerror", "<iframe", "display:none"):
        assert unsafe not in html, unsafe
    assert Event.objects.filter(link=link).count() == 1
    # The next click is served from the cache: the same sanitised page.
    again = _click(client, link, reader).content.decode()
    assert "<p>See you <b>Thursday</b>.</p>" in again and "<script>alert" not in again
    assert Event.objects.filter(link=link).count() == 2


# --- the actions in SuperOffice ---------------------------------------------------------------


def test_set_field_writes_each_value_typed_by_its_field(client, simulator, link, reader):
    _action(
        link,
        T.SET_FIELD,
        {"field_key": "SuperOffice:2", "field_type": "Integer", "field_value": "42"},
    )
    _action(
        link,
        T.SET_FIELD,
        {"field_key": "SuperOffice:3", "field_type": "Date", "field_value": "2026-12-01"},
    )
    _action(
        link,
        T.SET_FIELD,
        {"field_key": "SuperOffice:4", "field_type": "Checkbox", "field_value": "1"},
    )
    _action(
        link,
        T.SET_FIELD,
        {
            "field_key": "x_campaign_note",
            "field_type": "LongText",
            "field_value": "Clicked sign up",
        },
    )

    _click(client, link, reader)
    runs = _execute_all(link.account)

    assert [r.status for r in runs] == [RunStatus.DONE] * 4, [r.last_error for r in runs]
    fields = simulator.state(f"persons/{PERSON}")["CustomFields"]
    assert fields["SuperOffice:2"] == "[I:42]"
    assert fields["SuperOffice:3"] == "[D:12/01/2026]"
    assert fields["SuperOffice:4"] == "[I:1]"
    assert fields["x_campaign_note"] == "Clicked sign up"


def test_follow_ups_are_a_meeting_in_the_diary_and_a_task_in_the_checklist(
    client, simulator, link, reader
):
    meeting = _action(
        link,
        T.FOLLOW_UP,
        {
            "follow_up_kind": "meeting",
            "activity_type_id": 2,
            "project_id": 3,
            "owner_id": 4,
            "duration_minutes": 60,
            "due_in_days": 1,
            "description": "Meet {email} about {link}",
        },
    )
    task = _action(
        link,
        T.FOLLOW_UP,
        {
            "follow_up_kind": "task",
            "activity_type_id": 1,
            "description": "Call back",
        },
    )

    _click(client, link, reader)
    runs = {r.automation_id: r for r in _execute_all(link.account)}

    assert all(r.status == RunStatus.DONE for r in runs.values())
    appointments = {a["AppointmentId"]: a for a in simulator.state("appointments")}
    m = appointments[runs[meeting.id].crm_object_id]
    assert (m["Type"], m["TaskId"], m["ProjectId"], m["AssociateId"]) == ("inDiary", 2, 3, 4)
    assert "Meet reader@example.com about Sign up" in m["Description"]
    assert runs[meeting.id].marker in m["Description"]
    t = appointments[runs[task.id].crm_object_id]
    assert (t["Type"], t["TaskId"], t["PersonId"]) == ("inChecklist", 1, PERSON)
    # No owner chosen: the owner of the person's company.
    company = simulator.state(f"persons/{PERSON}")["ContactId"]
    assert t["AssociateId"] == simulator.state(f"companies/{company}")["AssociateId"]


def test_requests_are_created_unassigned_or_assigned_by_the_category_rules(
    client, simulator, link, reader
):
    unassigned = _action(
        link,
        T.CREATE_REQUEST,
        {
            "request_title": "Question from {email}",
            "request_assign": "unassigned",
            "category_id": 3,
            "priority_id": 2,
        },
    )
    by_rules = _action(
        link,
        T.CREATE_REQUEST,
        {
            "request_title": "Sales enquiry",
            "request_assign": "category",
            "category_id": 1,
        },
    )
    owned = _action(
        link,
        T.CREATE_REQUEST,
        {
            "request_title": "For Mia",
            "request_assign": "owner",
            "owner_id": 4,
        },
    )

    _click(client, link, reader)
    runs = {r.automation_id: r for r in _execute_all(link.account)}

    tickets = {t["TicketId"]: t for t in simulator.state("tickets")}
    first = tickets[runs[unassigned.id].crm_object_id]
    assert (first["OwnerId"], first["CategoryId"], first["PriorityId"]) == (0, 3, 2)
    assert first["Title"].startswith("Question from reader@example.com")
    assert runs[unassigned.id].marker in first["Title"]
    # The simulator's category 1 ("Sales enquiry") is routed to associate 2.
    assert tickets[runs[by_rules.id].crm_object_id]["OwnerId"] == 2
    assert tickets[runs[owned.id].crm_object_id]["OwnerId"] == 4
    assert {t["PersonId"] for t in tickets.values()} == {PERSON}


def test_a_request_whose_outcome_was_lost_is_found_by_its_marker_not_made_twice(
    client, simulator, link, reader
):
    _action(link, T.CREATE_REQUEST, {"request_title": "Call me", "request_assign": "unassigned"})
    _click(client, link, reader)
    (run,) = _execute_all(link.account)
    assert run.status == RunStatus.DONE

    # As if the worker died after SuperOffice saved the ticket: the run is tried again.
    Run.objects.filter(pk=run.pk).update(status=RunStatus.PENDING, next_attempt_at=timezone.now())
    (again,) = _execute_all(link.account)

    assert again.status == RunStatus.DONE and again.attempts == 2
    assert again.crm_object_id == run.crm_object_id
    assert len(simulator.state("tickets")) == 1


def test_a_script_gets_the_link_variables_and_its_output_is_kept_on_the_run(client, link, reader):
    link_responses.tracked_link_response_set(
        link=link, kind=LinkResponse.REDIRECT, url="https://example.com/welcome"
    )
    sent = Event.objects.create(
        account=link.account,
        campaign=link.campaign,
        contact=reader,
        type=EventType.EMAIL_SENT,
        occurred_at=timezone.now() - timedelta(hours=1),
        data={"sendout": 77},
    )
    assert sent.pk
    script = _action(link, T.RUN_SCRIPT, {"script_id": 1})

    _click(client, link, reader)
    _click(client, link, reader)
    runs = [r for r in _execute_all(link.account) if r.automation_id == script.id]

    assert [r.status for r in runs] == [RunStatus.DONE, RunStatus.DONE]
    # The simulator's script 1 echoes its parameters, sorted: name=value;...
    params = dict(p.split("=", 1) for p in runs[1].output.split(":", 1)[1].split(";"))
    assert params == {
        "custId": str(PERSON),
        "linkId": str(link.pk),
        "shipmentId": "77",
        "linkUrl": "https://example.com/signup",
        "linkHits": "2",
        "returnUrl": "https://example.com/welcome",
        "emhubRunKey": runs[1].key,
    }
    assert "linkHits=1;" in runs[0].output
    assert runs[1].crm_object_type == "script" and runs[1].crm_object_id == 1


# --- scanners, previews and once per recipient ------------------------------------------------


def test_scanner_preview_and_head_clicks_create_nothing_and_show_as_filtered(
    client, marketer_client, simulator, link, reader
):
    _action(link, T.CREATE_REQUEST, {"request_title": "Hot lead", "request_assign": "unassigned"})
    scanner_ua = "Mozilla/5.0 (compatible; Proofpoint URL Defense)"
    _click(client, link, reader, user_agent=scanner_ua)
    _click(client, link, reader, user_agent="Slackbot-LinkExpanding 1.0")
    head = _click(client, link, reader, method="head")
    Event.objects.create(
        account=link.account,
        campaign=link.campaign,
        contact=reader,
        type=EventType.EMAIL_SENT,
        occurred_at=timezone.now(),
    )
    _click(client, link, reader)  # a second after delivery: a gateway, not the reader

    assert head.status_code == 302
    assert not Run.objects.exists()
    _execute_all(link.account)
    assert simulator.state("tickets") == []
    reasons = sorted(Event.objects.filter(link=link).values_list("data__filtered", flat=True))
    assert reasons == ["head", "scanner", "scanner", "too_soon"]

    page = marketer_client.get(reverse("automations:link_detail", args=[link.pk]))
    assert page.context["summary"].filtered == 4 and page.context["summary"].human == 0
    assert "filtered: Security scanner or link preview" in page.content.decode()
    tab = marketer_client.get(reverse("campaigns:campaign_links", args=[link.campaign_id]))
    assert "+4 filtered" in tab.content.decode()


def test_a_link_limited_to_once_acts_once_for_two_clicks(
    client, marketer_client, simulator, link, reader
):
    _action(link, T.CREATE_REQUEST, {"request_title": "Once", "request_assign": "unassigned"})
    response = marketer_client.post(reverse("automations:link_once", args=[link.pk]), {"once": "1"})
    assert response.status_code == 302

    _click(client, link, reader)
    _click(client, link, reader)
    runs = _execute_all(link.account)

    assert len(runs) == 1 and runs[0].status == RunStatus.DONE
    assert len(simulator.state("tickets")) == 1
    assert Event.objects.filter(link=link, type=EventType.LINK_CLICKED).count() == 2


def test_a_recipient_without_a_superoffice_person_waits_in_the_queue(client, link, shop):
    stranger = ContactFactory(account=shop, email="new@example.com")
    _action(link, T.RUN_SCRIPT, {"script_id": 1})

    _click(client, link, stranger)

    assert Run.objects.get().status == RunStatus.WAITING_FOR_MATCH


def test_html_stored_around_the_form_is_still_served_sanitised(client, link, reader):
    type(link).objects.filter(pk=link.pk).update(
        response_kind=LinkResponse.TEXT,
        response_title="Hi",
        response_html='<p onmouseover="x()">Hello</p><script>steal()</script>',
    )

    html = _click(client, link, reader).content.decode()

    assert "<p>Hello</p>" in html
    assert "steal()" not in html and "onmouseover" not in html


# --- the wake-up a click publishes -----------------------------------------------------------


def test_a_click_with_three_actions_publishes_one_wake_up_that_carries_out_all_three(
    client, simulator, link, reader, django_capture_on_commit_callbacks
):
    from automations.tasks import execute_runs
    from emhub.celery import app
    from tests.automations.conftest import purge_broker, queued_messages

    _action(link, T.CREATE_REQUEST, {"request_title": "Call me", "request_assign": "unassigned"})
    _action(link, T.RUN_SCRIPT, {"script_id": 1})
    _action(
        link,
        T.FOLLOW_UP,
        {
            "follow_up_kind": "task",
            "description": "Call back",
            "activity_type_id": 1,
            "due_in_days": 1,
        },
    )
    purge_broker(app)

    with django_capture_on_commit_callbacks(execute=True):
        assert _click(client, link, reader, drain=False).status_code == 302
    # The click wakes the drain; the drain stores its event and runs, and publishes theirs.
    assert queued_messages(app) == [("campaigns.drain_clicks", [])]
    assert not Run.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert drain_clicks() == 1
    messages = queued_messages(app)

    run_ids = list(Run.objects.order_by("id").values_list("id", flat=True))
    assert messages == [("automations.execute_runs", [run_ids])]
    # What the worker does with that message: every run in turn, each done in SuperOffice.
    assert execute_runs(*messages[0][1]) == [RunStatus.DONE] * 3
    assert len(simulator.state("tickets")) == 1
    assert len(simulator.state("appointments")) == 1
