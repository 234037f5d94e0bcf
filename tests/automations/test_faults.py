"""Fault tests: nothing acknowledged is lost and nothing is created twice in SuperOffice
when the worker is killed, the CRM is down, the broker is down, or a batch is re-sent.

Each test counts, per run, the objects in the simulator that carry the run's marker:
exactly one for every run (zero lost, zero duplicated).

The subprocess workers use tests/automations/worker_settings.py: a 20 s lease and retries
from 0.5 s capped at 5 s, so a killed worker's runs and an outage's retries come back
within the test. The test process plays beat: it calls the sweeper every second.
"""

import threading
import time
from collections import Counter

import pytest

from automations import services
from automations.models import AutomationType, Run, RunStatus
from campaigns.models import EventType

from .conftest import app_broker, purge_broker, wait_until
from .factories import AutomationFactory, CampaignFactory, ContactFactory

pytestmark = pytest.mark.django_db(transaction=True)

T = AutomationType


@pytest.fixture
def sweeper_settings(settings):
    settings.AUTOMATIONS_REDISPATCH_AFTER_SECONDS = 2.0
    settings.AUTOMATIONS_LEASE_SECONDS = 10.0
    return settings


@pytest.fixture
def campaign(connected_account):
    return CampaignFactory(account=connected_account, name="Fault campaign")


@pytest.fixture
def sale_and_task(campaign):
    sale = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.CREATE_SALE,
        settings={
            "source_id": 1,
            "rating_id": 2,
            "owner_id": 2,
            "description": "Lead from {campaign}",
        },
    )
    task = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=T.CREATE_TASK,
        settings={"activity_type_id": 1, "owner_id": 2, "description": "Call {email}"},
    )
    return sale, task


def _matched_contacts(account, n):
    # Spread over the seeded persons; several events per person are fine, the marker
    # tells each run's object apart.
    return [
        ContactFactory(
            account=account, email=f"fault{i}@example.com", superoffice_person_id=1 + i % 250
        )
        for i in range(n)
    ]


def _batch(campaign, contacts, *, prefix: str):
    return {
        "events": [
            {
                "event_id": f"{prefix}-{i}",
                "type": EventType.EMAIL_OPENED,
                "campaign": campaign.id,
                "email": c.email,
            }
            for i, c in enumerate(contacts)
        ]
    }


def _post(api_client, body):
    response = api_client.post("/api/v1/events/", body, format="json")
    assert response.status_code == 201, response.content
    return response


def _all_done(account) -> bool:
    return not Run.objects.filter(account=account).exclude(status=RunStatus.DONE).exists()


def _sweep_until_done(account, *, timeout: float):
    def done():
        services.runs_sweep()
        return _all_done(account)

    wait_until(
        done,
        timeout=timeout,
        interval=1.0,
        message=f"runs left: {Counter(Run.objects.values_list('status', flat=True))}",
    )


def _objects_per_run(sim, account) -> tuple[int, int, int]:
    """(runs, runs with no object, runs with more than one object)."""
    texts = [s["SaleText"] for s in sim.state("sales")]
    texts += [a["Description"] for a in sim.state("appointments")]
    counts = Counter()
    for text in texts:
        start = text.find("[emhub:")
        if start != -1:
            counts[text[start : text.index("]", start) + 1]] += 1
    runs = list(Run.objects.filter(account=account))
    lost = sum(1 for r in runs if counts[r.marker] == 0)
    duplicated = sum(1 for r in runs if counts[r.marker] > 1)
    assert sum(counts.values()) == sum(counts[r.marker] for r in runs), "objects of no run"
    return len(runs), lost, duplicated


def test_a_worker_killed_with_sigkill_mid_stream_loses_and_duplicates_nothing(
    sim, api_client, campaign, sale_and_task, worker_process, private_redis, sweeper_settings
):
    contacts = _matched_contacts(campaign.account, 250)  # x 2 automations = 500 runs
    sim.control(mode="slow", delay=0.01)
    with app_broker(private_redis.url):
        worker = worker_process(broker_url=private_redis.url, concurrency=4)
        _post(api_client, _batch(campaign, contacts, prefix="kill"))
        assert Run.objects.filter(account=campaign.account).count() == 500

        wait_until(
            lambda: Run.objects.filter(status=RunStatus.DONE).count() >= 60,
            timeout=120,
            message="the worker did not get going",
        )
        in_flight = Run.objects.filter(status=RunStatus.RUNNING).count()
        worker.kill()
        done_at_kill = Run.objects.filter(status=RunStatus.DONE).count()
        assert done_at_kill < 500, "everything finished before the kill; nothing was tested"

        worker_process(broker_url=private_redis.url, concurrency=4)
        _sweep_until_done(campaign.account, timeout=240)

    runs, lost, duplicated = _objects_per_run(sim, campaign.account)
    reclaimed = Run.objects.filter(account=campaign.account, attempts__gt=1).count()
    print(
        f"SIGKILL: {runs} runs, {done_at_kill} done and {in_flight} running at the kill, "
        f"{reclaimed} claimed again; lost={lost} duplicated={duplicated}"
    )
    assert (runs, lost, duplicated) == (500, 0, 0)


def test_a_crm_outage_during_a_stream_of_events_loses_and_duplicates_nothing(
    sim, api_client, campaign, sale_and_task, worker_process, private_redis, sweeper_settings
):
    # SuperOffice down for a full minute while events keep arriving: every run that
    # meets the outage goes through the retry path (0.5 s base, 5 s cap) many times.
    outage = 60.0
    contacts = _matched_contacts(campaign.account, 100)
    with app_broker(private_redis.url):
        worker_process(broker_url=private_redis.url, concurrency=4)

        def outage_window():
            time.sleep(2)
            sim.control(mode="down")
            time.sleep(outage)
            sim.control(mode="normal")

        flipper = threading.Thread(target=outage_window)
        flipper.start()
        started = time.monotonic()
        for n in range(20):  # a batch of 5 events every 3.3 s, across the whole outage
            _post(api_client, _batch(campaign, contacts[n * 5 : (n + 1) * 5], prefix=f"s{n}"))
            time.sleep(max(0.0, started + (n + 1) * 3.3 - time.monotonic()))
        flipper.join()
        retried = Run.objects.filter(attempts__gt=1).count()
        _sweep_until_done(campaign.account, timeout=120)

    runs, lost, duplicated = _objects_per_run(sim, campaign.account)
    print(
        f"CRM down {outage}s: {runs} runs, {retried} retried; lost={lost} duplicated={duplicated}"
    )
    assert retried > 0, "the outage touched no run; nothing was tested"
    assert (runs, lost, duplicated) == (200, 0, 0)


def test_with_the_broker_stopped_events_are_accepted_and_run_after_it_returns(
    sim, api_client, campaign, sale_and_task, worker_process, private_redis, sweeper_settings
):
    contacts = _matched_contacts(campaign.account, 40)
    with app_broker(private_redis.url):
        worker_process(broker_url=private_redis.url, concurrency=2)
        _post(api_client, _batch(campaign, contacts[:10], prefix="before"))
        wait_until(lambda: _all_done(campaign.account), timeout=60)

        private_redis.stop()
        started = time.monotonic()
        for n in range(3):
            _post(
                api_client, _batch(campaign, contacts[10 + n * 10 : 20 + n * 10], prefix=f"down{n}")
            )
        answered_in = (time.monotonic() - started) / 3
        waiting = Run.objects.filter(status=RunStatus.PENDING, dispatched_at__isnull=True).count()
        assert waiting == 60
        time.sleep(2)
        assert Run.objects.filter(status=RunStatus.DONE).count() == 20

        private_redis.start()
        _sweep_until_done(campaign.account, timeout=120)

    runs, lost, duplicated = _objects_per_run(sim, campaign.account)
    print(
        f"Redis down: API answered 201 in {answered_in:.2f}s per batch; {runs} runs; "
        f"lost={lost} duplicated={duplicated}"
    )
    assert answered_in < 5
    assert (runs, lost, duplicated) == (80, 0, 0)


def test_the_same_batch_posted_twice_runs_once(
    sim, api_client, campaign, sale_and_task, celery_worker_threads
):
    contacts = _matched_contacts(campaign.account, 30)
    body = _batch(campaign, contacts, prefix="twice")

    _post(api_client, body)
    second = _post(api_client, body).json()
    wait_until(lambda: _all_done(campaign.account), timeout=60)

    assert (second["stored"], second["duplicates"], second["runs"]) == (0, 30, 0)
    assert {e["status"] for e in second["events"]} == {"duplicate"}
    runs, lost, duplicated = _objects_per_run(sim, campaign.account)
    assert (runs, lost, duplicated) == (60, 0, 0)


def test_a_redelivered_message_of_a_finished_run_does_nothing(
    sim, api_client, campaign, sale_and_task, celery_worker_threads
):
    from automations.tasks import execute_run

    contacts = _matched_contacts(campaign.account, 3)
    _post(api_client, _batch(campaign, contacts, prefix="redeliver"))
    wait_until(lambda: _all_done(campaign.account), timeout=60)

    for run in Run.objects.filter(account=campaign.account):
        execute_run.delay(run.id)
    time.sleep(1)
    purge_broker(execute_run.app)

    assert _objects_per_run(sim, campaign.account) == (6, 0, 0)
