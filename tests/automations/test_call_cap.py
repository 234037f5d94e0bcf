"""The cap on concurrent SuperOffice calls with real Celery workers: it holds across a
worker's pool processes, and the slots of a worker killed with SIGKILL mid-call come back
when their leases end (short calls and leases here, set through the worker's settings)."""

import time

import pytest

from automations.models import AutomationType
from campaigns.models import EventType
from crm import call_cap
from crm.client import slots
from crm.errors import TransientCrmError
from crm.services import client_for_account

from .conftest import purge_broker, wait_until
from .factories import AutomationFactory, CampaignFactory, ContactFactory

pytestmark = pytest.mark.django_db(transaction=True)

CAP = 2
CALL_SECONDS = 1.5
TIMEOUT = 2.5
LEASE = 3.0


@pytest.fixture
def capped(settings, sim):
    settings.CRM_MAX_CONCURRENT_CALLS_PER_ACCOUNT = CAP
    settings.CRM_CALL_SLOT_LEASE_SECONDS = LEASE
    shared = call_cap.call_slots_for(base_url=sim.base_url)
    assert isinstance(shared, slots.SharedSlots)
    shared.redis.delete(shared.key)
    yield shared
    shared.redis.delete(shared.key)


def _worker_env() -> dict:
    return {
        "CRM_MAX_CONCURRENT_CALLS_PER_ACCOUNT": str(CAP),
        "CRM_TIMEOUT_SECONDS": str(TIMEOUT),
        "CRM_CALL_SLOT_LEASE_SECONDS": str(LEASE),
    }


def _post_events(api_client, account, n: int) -> None:
    campaign = CampaignFactory(account=account, name="Cap campaign")
    AutomationFactory(
        account=account,
        campaign=campaign,
        type=AutomationType.CREATE_TASK,
        settings={"activity_type_id": 1, "owner_id": 2, "description": "Call {email}"},
    )
    contacts = [
        ContactFactory(account=account, email=f"cap{i}@example.com", superoffice_person_id=1 + i)
        for i in range(n)
    ]
    body = {
        "events": [
            {
                "event_id": f"cap-{i}",
                "type": EventType.EMAIL_OPENED,
                "campaign": campaign.id,
                "email": c.email,
            }
            for i, c in enumerate(contacts)
        ]
    }
    response = api_client.post("/api/v1/events/", body, format="json")
    assert response.status_code == 201, response.content


def test_a_worker_killed_holding_call_slots_gives_them_back_when_their_leases_end(
    sim, connected_account, api_client, worker_process, capped, settings
):
    from emhub.celery import app

    purge_broker(app)
    sim.control(mode="slow", delay=CALL_SECONDS)
    # Three pool processes, three messages of runs: more callers than slots.
    worker = worker_process(concurrency=3, env=_worker_env())
    _post_events(api_client, connected_account, 15)
    wait_until(lambda: capped.holders() == CAP, timeout=30, message="no slots were taken")

    worker.kill()
    killed_at = time.monotonic()
    assert capped.holders() == CAP, "a killed worker's slots stay leased until the lease ends"
    settings.CRM_CALL_SLOT_WAIT_SECONDS = 0.2
    with pytest.raises(TransientCrmError, match="Too many concurrent calls"):
        client_for_account(connected_account).get_person(person_id=1)

    sim.control(mode="normal")
    wait_until(lambda: capped.holders() == 0, timeout=LEASE + 2, interval=0.05)
    returned_after = time.monotonic() - killed_at
    assert returned_after <= LEASE + 0.5
    assert client_for_account(connected_account).get_person(person_id=1).id == 1
    assert sim.state("counters")["most_in_flight"] <= CAP
