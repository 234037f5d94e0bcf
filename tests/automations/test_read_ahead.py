"""Persons read ahead: a lane's claimed runs whose actions read a person only for its
company (the automation names the owner) have their persons read in one
Person.GetPersonList instead of a Person.GetPersonEntity each; everything else, and
every failure of that read, goes on as before. Through the real client over HTTP to the
simulator."""

import pytest

from automations import services
from automations.models import AutomationType, Run, RunStatus
from campaigns.models import EventType
from crm.models import CrmCall

from .conftest import purge_broker
from .factories import AutomationFactory, CampaignFactory, ContactFactory, EventFactory

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

# Seeded simulator persons, at the companies the seed gave them (more than one: checked
# where it matters).
PERSONS = [11, 14, 17, 20, 23, 26, 29]
# The automations' owner: Sven Support, who owns no seeded company (their owners are 2, 3
# or 7), so an object owned by the company's owner cannot pass for one owned by him.
OWNER = 5


@pytest.fixture
def lane(settings):
    """One run in flight per account, and a lane long enough for all of a test's runs."""
    settings.AUTOMATIONS_IN_FLIGHT_PER_ACCOUNT = 1
    settings.AUTOMATIONS_LANE_RUNS = 50
    settings.AUTOMATIONS_LANE_SECONDS = 60
    from emhub.celery import app

    purge_broker(app)
    yield
    purge_broker(app)
    services._read_ahead_refused_until.clear()


def _automation(campaign, *, kind=AutomationType.CREATE_TASK, owner=True, description="Call"):
    settings = (
        {"activity_type_id": 1, "description": description}
        if kind != AutomationType.CREATE_SALE
        else {"source_id": 1, "rating_id": 1, "description": description}
    )
    if owner:
        settings["owner_id"] = OWNER
    return AutomationFactory(
        account=campaign.account, campaign=campaign, type=kind, settings=settings
    )


def _runs(account, *, kind=AutomationType.CREATE_TASK, owner=True, persons=PERSONS):
    campaign = CampaignFactory(account=account)
    _automation(campaign, kind=kind, owner=owner)
    return _events_of(campaign, persons)


def _events_of(campaign, persons) -> list[int]:
    """An e-mail opened by a contact of each person: the campaign's automations' runs."""
    account = campaign.account
    events = [
        EventFactory(
            account=account,
            campaign=campaign,
            contact=ContactFactory(account=account, superoffice_person_id=person_id),
            type=EventType.EMAIL_OPENED,
        )
        for person_id in persons
    ]
    runs = services.runs_create_for_events(account=account, events=events)
    return [r.id for r in runs]


def _execute_as_a_lane(account, run_ids):
    """Dispatch the account's runs (one goes out, the rest are held back) and run the
    message that went out, whose worker takes the held-back ones itself."""
    from emhub.celery import app

    services.runs_dispatch(run_ids=run_ids, account_id=account.pk)
    purge_broker(app)
    return services.runs_execute(run_ids=[run_ids[0]], account_id=account.pk)


def _operations(sim) -> dict[str, int]:
    return sim.state("counters")["operations"]


def test_a_lanes_runs_read_their_persons_in_one_call_and_file_each_task_at_its_company(
    connected_account, sim, lane
):
    run_ids = _runs(connected_account)

    outcomes = _execute_as_a_lane(connected_account, run_ids)

    assert [o.status for o in outcomes] == [RunStatus.DONE] * len(PERSONS)
    operations = _operations(sim)
    # The message's own run reads its person; the six the lane claimed, one call for all.
    assert operations["Person.GetPersonList"] == 1
    assert operations["Person.GetPersonEntity"] == 1
    assert operations["Appointment.SaveAppointmentEntity"] == len(PERSONS)
    appointments = {a["PersonId"]: a for a in sim.state("appointments")}
    assert sorted(appointments) == PERSONS
    # The persons are at several companies, so a company given to the wrong run shows.
    assert len({sim.state("persons", p)["ContactId"] for p in PERSONS}) > 1
    for person_id, appointment in appointments.items():
        company_id = sim.state("persons", person_id)["ContactId"]
        assert appointment["ContactId"] == company_id, person_id
        assert appointment["AssociateId"] == OWNER
    # The read is in the call log, found from the first run the lane claimed.
    read = CrmCall.objects.get(operation="GetPersonList")
    first_claimed = Run.objects.filter(id__in=run_ids[1:]).order_by("id").first()
    assert read.correlation == f"read-ahead:{first_claimed.key}"
    assert read.outcome == CrmCall.Outcome.OK


def test_sales_are_read_ahead_too(connected_account, sim, lane):
    run_ids = _runs(connected_account, kind=AutomationType.CREATE_SALE, persons=PERSONS[:4])

    outcomes = _execute_as_a_lane(connected_account, run_ids)

    assert [o.status for o in outcomes] == [RunStatus.DONE] * 4
    assert _operations(sim)["Person.GetPersonList"] == 1
    assert _operations(sim)["Person.GetPersonEntity"] == 1  # the message's own run
    sales = {s["PersonId"]: s for s in sim.state("sales")}
    for person_id in PERSONS[:4]:
        assert sales[person_id]["ContactId"] == sim.state("persons", person_id)["ContactId"]


def test_without_an_owner_each_run_reads_its_person_for_the_companys_owner(
    connected_account, sim, lane
):
    run_ids = _runs(connected_account, owner=False, persons=PERSONS[:4])

    outcomes = _execute_as_a_lane(connected_account, run_ids)

    assert [o.status for o in outcomes] == [RunStatus.DONE] * 4
    operations = _operations(sim)
    assert "Person.GetPersonList" not in operations
    assert operations["Person.GetPersonEntity"] == 4
    for appointment in sim.state("appointments"):
        company = sim.state("companies", appointment["ContactId"])
        assert appointment["AssociateId"] == company["AssociateId"]


def test_when_the_read_ahead_fails_each_run_reads_its_own_person(connected_account, sim, lane):
    run_ids = _runs(connected_account, persons=PERSONS[:4])
    sim.control(mode="down", operations=["GetPersonList"])

    outcomes = _execute_as_a_lane(connected_account, run_ids)

    assert [o.status for o in outcomes] == [RunStatus.DONE] * 4
    assert _operations(sim)["Person.GetPersonEntity"] == 4
    assert len(sim.state("appointments")) == 4
    read = CrmCall.objects.get(operation="GetPersonList")
    assert read.outcome != CrmCall.Outcome.OK


def test_a_person_superoffice_does_not_answer_for_fails_its_own_run_only(
    connected_account, sim, lane
):
    persons = [*PERSONS[:3], 999_999]
    run_ids = _runs(connected_account, persons=persons)

    outcomes = _execute_as_a_lane(connected_account, run_ids)

    statuses = {
        r.contact.superoffice_person_id: r.status
        for r in Run.objects.filter(id__in=run_ids).select_related("contact")
    }
    assert statuses == {
        PERSONS[0]: RunStatus.DONE,
        PERSONS[1]: RunStatus.DONE,
        PERSONS[2]: RunStatus.DONE,
        999_999: RunStatus.FAILED,
    }
    assert len(outcomes) == 4
    # The unknown person was asked for in the read ahead, then by itself, as before.
    assert _operations(sim)["Person.GetPersonList"] == 1
    assert _operations(sim)["Person.GetPersonEntity"] == 2


def test_nothing_is_read_ahead_for_a_paused_account(connected_account, sim, lane):
    run_ids = _runs(connected_account, persons=PERSONS[:3])
    services.runs_dispatch(run_ids=run_ids, account_id=connected_account.pk)
    services.account_crm_pause(account=connected_account, reason="test")
    claimed = services.runs_claim_next(account_id=connected_account.pk, count=5)

    read = services._persons_read_ahead(claimed, hold=None)

    assert read == {} and len(claimed) == 2
    assert "Person.GetPersonList" not in _operations(sim)


def test_a_person_read_ahead_for_an_automation_with_an_owner_is_read_again_for_one_without(
    connected_account, sim, lane
):
    # Each e-mail opened makes a task (owner named) and a notification (the company's
    # owner) for the same person: the notification must not take the person read ahead,
    # which does not tell the company's owner.
    campaign = CampaignFactory(account=connected_account)
    _automation(campaign, description="Task")
    _automation(campaign, kind=AutomationType.NOTIFY_SALES_REP, owner=False, description="Note")
    run_ids = _events_of(campaign, PERSONS[:3])

    outcomes = _execute_as_a_lane(connected_account, run_ids)

    assert [o.status for o in outcomes] == [RunStatus.DONE] * 6
    assert _operations(sim)["Person.GetPersonList"] == 1
    appointments = sim.state("appointments")
    assert len(appointments) == 6
    for appointment in appointments:
        company = sim.state("companies", appointment["ContactId"])
        assert (
            appointment["ContactId"] == sim.state("persons", appointment["PersonId"])["ContactId"]
        )
        if appointment["Description"].startswith("Note"):
            assert appointment["AssociateId"] == company["AssociateId"] != OWNER
        else:
            assert appointment["AssociateId"] == OWNER


def test_two_runs_of_one_person_are_read_ahead_in_one_call(connected_account, sim, lane):
    run_ids = _runs(connected_account, persons=[PERSONS[0]] * 3)

    outcomes = _execute_as_a_lane(connected_account, run_ids)

    assert [o.status for o in outcomes] == [RunStatus.DONE] * 3
    # The message's own run reads the person; the lane's two, one call between them.
    assert _operations(sim)["Person.GetPersonList"] == 1
    assert _operations(sim)["Person.GetPersonEntity"] == 1


def test_after_superoffice_refuses_a_read_ahead_none_is_tried_for_a_while(
    connected_account, sim, lane
):
    sim.control(mode="entity_bomb", operations=["GetPersonList"])
    first = _runs(connected_account, persons=PERSONS[:3])

    outcomes = _execute_as_a_lane(connected_account, first)

    assert [o.status for o in outcomes] == [RunStatus.DONE] * 3
    refused = CrmCall.objects.get(operation="GetPersonList")
    assert refused.outcome == CrmCall.Outcome.PERMANENT
    sim.control(mode="normal", operations=[])
    later = _runs(connected_account, persons=PERSONS[3:6])

    outcomes = _execute_as_a_lane(connected_account, later)

    assert [o.status for o in outcomes] == [RunStatus.DONE] * 3
    assert CrmCall.objects.filter(operation="GetPersonList").count() == 1  # not tried again
    assert "Person.GetPersonList" not in _operations(sim)
    assert _operations(sim)["Person.GetPersonEntity"] == 6
