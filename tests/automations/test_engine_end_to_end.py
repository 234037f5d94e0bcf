"""Each automation type end to end: an event posted to the API, a real Celery worker, the
real CRM client over HTTP to the NetServer simulator, the simulator's state checked."""

import pytest

from automations import services
from automations.models import AutomationType, Run, RunStatus
from campaigns.models import EventType

from .conftest import wait_until
from .factories import AutomationFactory, CampaignFactory, ContactFactory, TrackedLinkFactory

pytestmark = pytest.mark.both_databases

T = AutomationType
PERSON = 10  # a seeded simulator person


@pytest.fixture
def campaign(connected_account):
    return CampaignFactory(account=connected_account, name="Spring launch")


def _post_event(api_client, campaign, email, *, event_id, type=EventType.EMAIL_OPENED, **extra):
    body = {"event_id": event_id, "type": type, "campaign": campaign.id, "email": email, **extra}
    response = api_client.post("/api/v1/events/", body, format="json")
    assert response.status_code == 201, response.content
    return response


def _finished(run_ids=None, *, account):
    qs = Run.objects.filter(account=account)
    if run_ids is not None:
        qs = qs.filter(id__in=run_ids)
    open_statuses = [RunStatus.PENDING, RunStatus.RUNNING]
    return qs.exists() and not qs.filter(status__in=open_statuses).exists()


def _run_once(api_client, campaign, automation, *, email, event_id="e-1", **extra) -> Run:
    _post_event(
        api_client, campaign, email, event_id=event_id, type=automation.trigger_event_type, **extra
    )
    wait_until(
        lambda: _finished(account=campaign.account), timeout=30, message="the run did not finish"
    )
    return Run.objects.get(automation=automation)


@pytest.fixture
def contact(connected_account):
    return ContactFactory(
        account=connected_account, email="kari@example.com", superoffice_person_id=PERSON
    )


def test_create_sale_makes_one_open_sale_with_source_rating_and_description(
    sim, celery_worker_threads, api_client, campaign, contact
):
    automation = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.CREATE_SALE,
        settings={
            "source_id": 3,
            "rating_id": 1,
            "owner_id": 2,
            "description": "Opened {campaign} on {time} ({email})",
        },
    )

    run = _run_once(api_client, campaign, automation, email=contact.email)

    assert run.status == RunStatus.DONE, run.last_error
    (sale,) = [s for s in sim.state("sales") if s["PersonId"] == PERSON]
    assert run.crm_object_type == "sale" and run.crm_object_id == sale["SaleId"]
    assert (sale["SourceId"], sale["RatingId"], sale["AssociateId"]) == (3, 1, 2)
    assert sale["Status"] == "Open"
    assert sale["SaleText"].startswith("Opened Spring launch on ")
    assert "(kari@example.com)" in sale["SaleText"]
    assert run.marker in sale["SaleText"]


def test_create_sale_can_also_add_the_person_to_a_selection_and_a_project(
    sim, celery_worker_threads, api_client, campaign, contact
):
    selection_before = set(sim.state("selections", 4)["members"]) - {PERSON}
    automation = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.CREATE_SALE,
        settings={
            "source_id": 1,
            "rating_id": 2,
            "description": "Hot lead",
            "extra_selection_id": 4,
            "extra_project_id": 2,
        },
    )

    run = _run_once(api_client, campaign, automation, email=contact.email)

    assert run.status == RunStatus.DONE, run.last_error
    assert set(sim.state("selections", 4)["members"]) == selection_before | {PERSON}
    assert PERSON in sim.state("projects", 2)["members"]


@pytest.mark.parametrize(
    ("type_", "completed"), [(T.CREATE_TASK, "NotStarted"), (T.NOTIFY_SALES_REP, "Completed")]
)
def test_task_and_notification_make_one_appointment_of_the_activity_type(
    sim, celery_worker_threads, api_client, campaign, contact, type_, completed
):
    link = TrackedLinkFactory(campaign=campaign, name="Pricing")
    automation = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=type_,
        trigger_event_type=EventType.LINK_CLICKED,
        trigger_link=link,
        settings={
            "activity_type_id": 1,
            "owner_id": 3,
            "description": "Call {email}: clicked {link} in {campaign}",
        },
    )

    run = _run_once(api_client, campaign, automation, email=contact.email, link=link.id)

    assert run.status == RunStatus.DONE, run.last_error
    (appointment,) = [a for a in sim.state("appointments") if a["PersonId"] == PERSON]
    assert run.crm_object_id == appointment["AppointmentId"]
    assert (appointment["TaskId"], appointment["AssociateId"]) == (1, 3)
    assert appointment["Completed"] == completed
    assert appointment["Description"].startswith(
        "Call kari@example.com: clicked Pricing in Spring launch"
    )


def test_set_and_unset_interest_change_the_persons_interests(
    sim, celery_worker_threads, api_client, campaign, contact
):
    set_auto = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.SET_INTEREST,
        trigger_event_type=EventType.EMAIL_OPENED,
        settings={"interest_ids": [2, 3]},
    )
    unset_auto = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.UNSET_INTEREST,
        trigger_event_type=EventType.LANDING_PAGE_VISITED,
        settings={"interest_ids": [3]},
    )

    _run_once(api_client, campaign, set_auto, email=contact.email, event_id="open")
    assert {2, 3} <= set(sim.state("persons", PERSON)["Interests"])

    _run_once(api_client, campaign, unset_auto, email=contact.email, event_id="visit")
    interests = set(sim.state("persons", PERSON)["Interests"])
    assert 2 in interests and 3 not in interests


def test_add_to_and_remove_from_project(sim, celery_worker_threads, api_client, campaign, contact):
    add = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.ADD_TO_PROJECT,
        settings={"project_id": 1},
    )
    remove = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.REMOVE_FROM_PROJECT,
        trigger_event_type=EventType.SMS_SENT,
        settings={"project_id": 1},
    )

    _run_once(api_client, campaign, add, email=contact.email, event_id="open")
    members = sim.state("projects", 1)["members"]
    assert members.count(PERSON) == 1

    _run_once(api_client, campaign, remove, email=contact.email, event_id="sms")
    assert PERSON not in sim.state("projects", 1)["members"]


def test_add_to_and_remove_from_selection(
    sim, celery_worker_threads, api_client, campaign, contact
):
    add = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.ADD_TO_SELECTION,
        settings={"selection_id": 2},
    )
    remove = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.REMOVE_FROM_SELECTION,
        trigger_event_type=EventType.SMS_SENT,
        settings={"selection_id": 2},
    )

    _run_once(api_client, campaign, add, email=contact.email, event_id="open")
    assert PERSON in sim.state("selections", 2)["members"]

    _run_once(api_client, campaign, remove, email=contact.email, event_id="sms")
    assert PERSON not in sim.state("selections", 2)["members"]


def test_an_unmatched_contact_waits_then_resumes_when_a_person_is_set(
    sim, celery_worker_threads, api_client, campaign
):
    sale = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.CREATE_SALE,
        settings={"source_id": 1, "rating_id": 1, "description": "New"},
    )
    task = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.CREATE_TASK,
        settings={"activity_type_id": 2, "description": "Follow up"},
    )

    _post_event(api_client, campaign, "new.person@example.com", event_id="e-1")
    runs = list(Run.objects.filter(automation__in=[sale, task]))
    assert {r.status for r in runs} == {RunStatus.WAITING_FOR_MATCH}
    assert sim.state("sales") == [] and sim.state("appointments") == []

    contact = runs[0].contact
    assert services.contact_person_set(contact=contact, person_id=25) == 2

    wait_until(lambda: _finished([r.id for r in runs], account=campaign.account), timeout=30)
    assert set(
        Run.objects.filter(id__in=[r.id for r in runs]).values_list("status", flat=True)
    ) == {RunStatus.DONE}
    assert [s["PersonId"] for s in sim.state("sales")] == [25]
    assert [a["PersonId"] for a in sim.state("appointments")] == [25]


def test_auto_match_uses_the_one_person_with_the_email_and_never_a_shared_email(
    sim, celery_worker_threads, api_client, campaign
):
    services.automation_settings_update(account=campaign.account, auto_match_single_email=True)
    automation = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.ADD_TO_SELECTION,
        settings={"selection_id": 5},
    )
    unique_email = sim.state("persons", 40)["Emails"][0]

    _post_event(api_client, campaign, unique_email, event_id="unique")
    _post_event(api_client, campaign, "duplicate@example.com", event_id="shared")
    wait_until(lambda: _finished(account=campaign.account), timeout=30)

    by_email = {
        r.contact.email: r
        for r in Run.objects.filter(automation=automation).select_related("contact")
    }
    assert by_email[unique_email].status == RunStatus.DONE
    assert by_email[unique_email].contact.superoffice_person_id == 40
    assert 40 in sim.state("selections", 5)["members"]
    assert by_email["duplicate@example.com"].status == RunStatus.WAITING_FOR_MATCH


def test_transient_errors_are_retried_with_backoff_until_they_pass(
    sim, celery_worker_threads, api_client, campaign, contact
):
    automation = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.CREATE_TASK,
        settings={"activity_type_id": 1, "description": "x"},
    )
    sim.control(mode="throttle", retry_after=0.3, operations=["SaveAppointmentEntity"])

    _post_event(api_client, campaign, contact.email, event_id="e-1")
    wait_until(
        lambda: Run.objects.filter(automation=automation, attempts__gte=3).exists(),
        timeout=30,
        message="no retries",
    )
    sim.control(mode="normal")
    wait_until(lambda: _finished(account=campaign.account), timeout=30)

    run = Run.objects.get(automation=automation)
    assert run.status == RunStatus.DONE
    assert run.attempts >= 3
    assert len([a for a in sim.state("appointments") if a["PersonId"] == PERSON]) == 1


def test_transient_errors_fail_the_run_after_the_cap_and_retry_from_the_page_works(
    sim, celery_worker_threads, api_client, campaign, contact, settings
):
    settings.AUTOMATIONS_MAX_ATTEMPTS = 3
    automation = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.ADD_TO_SELECTION,
        settings={"selection_id": 1},
    )
    sim.control(mode="down")

    _post_event(api_client, campaign, contact.email, event_id="e-1")
    wait_until(lambda: _finished(account=campaign.account), timeout=60)
    run = Run.objects.get(automation=automation)
    assert (run.status, run.attempts, run.error_kind) == (RunStatus.FAILED, 3, "transient")

    sim.control(mode="normal")
    services.run_retry(run=run)
    wait_until(lambda: _finished(account=campaign.account), timeout=30)
    run.refresh_from_db()
    assert run.status == RunStatus.DONE
    assert PERSON in sim.state("selections", 1)["members"]


def test_a_permanent_error_fails_the_run_at_once(
    sim, celery_worker_threads, api_client, campaign, contact
):
    automation = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.CREATE_TASK,
        settings={"activity_type_id": 99, "description": "x"},
    )

    run = _run_once(api_client, campaign, automation, email=contact.email)

    assert (run.status, run.attempts, run.error_kind) == (RunStatus.FAILED, 1, "permanent")
    assert run.last_error
    assert sim.state("appointments") == []


def test_a_configuration_error_pauses_the_accounts_crm_work_until_it_is_fixed(
    sim, celery_worker_threads, api_client, campaign, contact
):
    from automations.models import AutomationSettings
    from crm.models import SuperOfficeConnection

    automation = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.ADD_TO_SELECTION,
        settings={"selection_id": 3},
    )
    SuperOfficeConnection.objects.filter(account=campaign.account).update(
        password="wrong", ticket="", ticket_expires_at=None
    )

    _post_event(api_client, campaign, contact.email, event_id="e-1")
    wait_until(
        lambda: AutomationSettings.objects.filter(
            account=campaign.account, crm_paused_at__isnull=False
        ).exists(),
        timeout=30,
        message="account not paused",
    )
    run = Run.objects.get(automation=automation)
    assert run.status == RunStatus.PENDING
    assert run.error_kind == "configuration"
    assert PERSON not in sim.state("selections", 3)["members"]

    from django.conf import settings

    from crm.services import connection_save

    SIM = settings.NETSERVER_SIMULATOR

    connection_save(
        account=campaign.account,
        base_url=sim.base_url,
        auth_mode="onsite",
        username=SIM["USERNAME"],
        password=SIM["PASSWORD"],
        application_token=SIM["APP_TOKEN"],
    )
    services.runs_sweep()
    wait_until(lambda: _finished(account=campaign.account), timeout=30)

    run.refresh_from_db()
    assert run.status == RunStatus.DONE
    assert PERSON in sim.state("selections", 3)["members"]
    assert not AutomationSettings.objects.get(account=campaign.account).is_crm_paused


def test_create_sale_and_create_task_each_cost_at_most_two_soap_calls(
    sim, celery_worker_threads, api_client, campaign, contact
):
    from crm.models import CrmCall

    sale = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.CREATE_SALE,
        settings={"source_id": 1, "rating_id": 1, "owner_id": 2, "description": "x"},
    )
    task = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.CREATE_TASK,
        settings={"activity_type_id": 1, "owner_id": 2, "description": "x"},
    )

    _post_event(api_client, campaign, contact.email, event_id="e-1")
    wait_until(lambda: _finished(account=campaign.account), timeout=30)

    for automation in (sale, task):
        run = Run.objects.get(automation=automation)
        calls = CrmCall.objects.filter(correlation=run.key).exclude(agent="SoPrincipal")
        assert calls.count() <= 2, list(calls.values_list("operation", flat=True))


def test_without_a_named_owner_the_sale_and_task_belong_to_the_companys_owner(
    sim, celery_worker_threads, api_client, campaign, contact
):
    company = sim.state("companies", sim.state("persons", PERSON)["ContactId"])
    AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.CREATE_SALE,
        settings={"source_id": 1, "rating_id": 1, "description": "x"},
    )
    AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.CREATE_TASK,
        settings={"activity_type_id": 1, "description": "x"},
    )

    _post_event(api_client, campaign, contact.email, event_id="e-1")
    wait_until(lambda: _finished(account=campaign.account), timeout=30)

    (sale,) = sim.state("sales")
    (appointment,) = sim.state("appointments")
    assert sale["AssociateId"] == appointment["AssociateId"] == company["AssociateId"]
    assert sale["ContactId"] == company["ContactId"]


def test_a_run_of_a_type_without_an_action_fails_at_once_instead_of_retrying(
    sim, connected_account, campaign, contact
):
    from campaigns.models import Event

    automation = AutomationFactory(
        account=campaign.account, campaign=campaign, type="teleport_contact", settings={}
    )
    event = Event.objects.create(
        account=campaign.account, campaign=campaign, contact=contact, type=EventType.EMAIL_OPENED
    )
    (run,) = services.runs_create_for_events(account=campaign.account, events=[event])

    services.run_execute(run_id=run.id)

    run.refresh_from_db()
    assert (run.status, run.attempts, run.error_kind) == (RunStatus.FAILED, 1, "permanent")
    assert "teleport_contact" in run.last_error
    assert automation.runs.count() == 1
