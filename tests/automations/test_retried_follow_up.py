"""A follow-up whose first attempt's answer was lost is found, not made again, on retry.

SuperOffice has no idempotency key: the run's marker goes into the follow-up's text, and a
retry looks for it in the Appointment archive (Appointment.GetPersonAppointments serves a
user's own diary only and refuses a contact person). Real client over HTTP, simulator."""

import time

import pytest
from django.utils import timezone

from automations import services
from automations.models import AutomationType, Run, RunStatus

from .factories import AutomationFactory, CampaignFactory, ContactFactory, EventFactory

pytestmark = pytest.mark.django_db


def _with_marker(simulator, marker: str) -> list[dict]:
    return [a for a in simulator.state("appointments") if marker in a["Description"]]


@pytest.mark.parametrize(
    "automation_type", [AutomationType.CREATE_TASK, AutomationType.NOTIFY_SALES_REP]
)
def test_a_retried_follow_up_finds_its_first_attempt_instead_of_making_a_second(
    crm_account, simulator, settings, automation_type
):
    settings.CRM_TIMEOUT_SECONDS = 0.5
    campaign = CampaignFactory(account=crm_account)
    AutomationFactory(
        account=crm_account,
        campaign=campaign,
        type=automation_type,
        settings={"activity_type_id": 1, "owner_id": 2, "description": "Call {email}"},
    )
    contact = ContactFactory(account=crm_account, superoffice_person_id=7)
    event = EventFactory(account=crm_account, campaign=campaign, contact=contact)
    [run] = services.runs_create_for_events(account=crm_account, events=[event])

    # The save reaches SuperOffice, but its answer comes after the hub stopped waiting.
    simulator.control(mode="slow", delay=1.5, operations=["SaveAppointmentEntity"])
    first = services.run_execute(run_id=run.id)
    assert first.status == RunStatus.PENDING  # a timeout: the outcome is unknown
    deadline = time.monotonic() + 10
    while not _with_marker(simulator, run.marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    simulator.control(mode="normal")
    [made] = _with_marker(simulator, run.marker)

    Run.objects.filter(pk=run.pk).update(next_attempt_at=timezone.now())
    second = services.run_execute(run_id=run.id)

    run.refresh_from_db()
    assert second.status == RunStatus.DONE, run.last_error
    assert run.attempts == 2
    assert run.crm_object_id == made["AppointmentId"]
    assert _with_marker(simulator, run.marker) == [made]  # still only the first attempt's
    operations = simulator.state("counters")["operations"]
    assert operations["Appointment.SaveAppointmentEntity"] == 1
    assert "Appointment.GetPersonAppointments" not in operations
    looked_up = [e for e in simulator.state("archive_log") if e["provider"] == "Appointment"]
    assert looked_up and looked_up[0]["restrictions"] == [["personId", "oneOf"]]
