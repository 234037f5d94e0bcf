"""The cap on concurrent SuperOffice calls per tenant: shared in Redis it holds across
processes, as the simulator counts the calls it answers at once; per process it does not."""

import multiprocessing

import pytest
from django.core import checks

from crm import call_cap
from crm.client import ConnectionSettings, MemoryTicketStore, NetServerClient, slots
from crm.errors import TransientCrmError

from .slot_callers import call_from_threads

CAP = 2


@pytest.fixture
def slots_url(settings):
    assert settings.CRM_CALL_SLOTS_URL.startswith("redis://")
    return settings.CRM_CALL_SLOTS_URL


@pytest.fixture
def no_slots_held(simulator, slots_url):
    """The simulator tenant's slots in Redis start empty (a killed test leaves leases)."""
    client = slots._redis_client(slots_url)
    client.delete(slots.key_of(simulator.base_url))
    yield client
    client.delete(slots.key_of(simulator.base_url))


def _run_two_processes(simulator, *, slots_url: str) -> int:
    """Two processes of 4 threads each call the slow simulator; the most calls it
    answered at once."""
    context = multiprocessing.get_context("spawn")
    kwargs = {
        "base_url": simulator.base_url,
        "username": simulator.username,
        "password": simulator.password,
        "app_token": simulator.app_token,
        "slots_url": slots_url,
        "limit": CAP,
        "lease_seconds": 30.0,
        "threads": 4,
        "calls": 2,
    }
    simulator.control(mode="slow", delay=0.15)
    processes = [context.Process(target=call_from_threads, kwargs=kwargs) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [p.exitcode for p in processes] == [0, 0], "a process's calls failed"
    return simulator.state("counters")["most_in_flight"]


def test_the_shared_cap_holds_across_two_processes(simulator, slots_url, no_slots_held):
    assert _run_two_processes(simulator, slots_url=slots_url) == CAP
    assert no_slots_held.zcard(slots.key_of(simulator.base_url)) == 0, "slots not given back"


def test_a_cap_per_process_lets_two_processes_exceed_it(simulator):
    # What the shared cap is for: each process alone keeps to the cap, together they don't.
    assert _run_two_processes(simulator, slots_url="") == 2 * CAP


def _client(simulator, call_slots, *, wait: float) -> NetServerClient:
    return NetServerClient(
        connection=ConnectionSettings(
            base_url=simulator.base_url,
            auth_mode="onsite",
            application_token=simulator.app_token,
            username=simulator.username,
            password=simulator.password,
        ),
        ticket_store=MemoryTicketStore(),
        timeout=5.0,
        call_slots=call_slots,
        slot_wait_seconds=wait,
    )


def test_with_every_shared_slot_leased_a_call_waits_then_fails_as_transient(
    simulator, slots_url, no_slots_held
):
    shared = slots.shared_slots(simulator.base_url, CAP, url=slots_url, lease_seconds=30.0)
    tokens = [shared.acquire(timeout=0.1) for _ in range(CAP)]
    assert all(tokens) and shared.acquire(timeout=0.1) is None
    with pytest.raises(TransientCrmError, match="Too many concurrent calls"):
        _client(simulator, shared, wait=0.3).get_person(person_id=1)
    shared.release(tokens[0])
    assert _client(simulator, shared, wait=0.3).get_person(person_id=1).id == 1
    assert shared.holders() == CAP - 1


def test_an_ended_lease_frees_its_slot(simulator, slots_url, no_slots_held):
    shared = slots.shared_slots(simulator.base_url, 1, url=slots_url, lease_seconds=0.3)
    assert shared.acquire(timeout=0.1) is not None  # never given back, as by a dead worker
    assert shared.acquire(timeout=0.05) is None
    assert shared.acquire(timeout=2.0) is not None


def test_with_redis_unreachable_calls_go_on_under_the_process_cap(simulator, monkeypatch):
    monkeypatch.setattr(slots, "_redis_down_until", {})
    # A port nobody listens on.
    shared = slots.SharedSlots(
        redis_client=slots._redis_client("redis://127.0.0.1:9/0"),
        tenant=simulator.base_url,
        limit=1,
        lease_seconds=30.0,
        fallback=slots.ProcessSlots(1),
    )
    assert _client(simulator, shared, wait=1.0).get_person(person_id=1).id == 1
    token = shared.acquire(timeout=0.1)
    assert token is shared.fallback
    assert shared.acquire(timeout=0.05) is None, "the process cap still applies"
    shared.release(token)


def test_settings_choose_the_shared_cap_with_redis_and_the_process_cap_without(settings):
    settings.CRM_CALL_SLOTS_URL = "redis://127.0.0.1:6379/4"
    assert isinstance(call_cap.call_slots_for(base_url="https://x.example/"), slots.SharedSlots)
    settings.CRM_CALL_SLOTS_URL = ""  # the embedded default: filesystem broker, no Redis
    assert isinstance(call_cap.call_slots_for(base_url="https://x.example/"), slots.ProcessSlots)


def test_a_lease_no_longer_than_the_call_timeout_is_refused_at_start(settings):
    settings.CRM_CALL_SLOTS_URL = "redis://127.0.0.1:6379/4"
    settings.CRM_TIMEOUT_SECONDS = 30.0
    settings.CRM_CALL_SLOT_LEASE_SECONDS = 30.0
    assert "crm.E001" in [m.id for m in checks.run_checks()]  # what `manage.py check` runs
    settings.CRM_CALL_SLOT_LEASE_SECONDS = 45.0
    settings.CRM_DEADLINE_SECONDS = 60.0
    assert [m.id for m in call_cap.check_call_slot_lease()] == ["crm.W001"]
    settings.CRM_CALL_SLOT_LEASE_SECONDS = 75.0
    assert call_cap.check_call_slot_lease() == []


def _members(redis_client, simulator) -> list[bytes]:
    return redis_client.zrange(slots.key_of(simulator.base_url), 0, -1)


def test_a_runs_calls_go_out_under_one_slot_taken_once_and_given_back_at_the_end(
    simulator, slots_url, no_slots_held
):
    shared = slots.shared_slots(
        simulator.base_url, CAP, url=slots_url, lease_seconds=30.0, longest_call_seconds=10.0
    )
    client = _client(simulator, shared, wait=0.3)
    seen = []
    with client.one_slot():
        for _ in range(3):
            assert client.get_person(person_id=1).id == 1
            seen.append(_members(no_slots_held, simulator))
    assert len(seen[0]) == 1 and seen == [seen[0]] * 3, "one slot, the same for every call"
    assert _members(no_slots_held, simulator) == []
    # Outside one_slot each call gives its slot back at once.
    client.get_person(person_id=1)
    assert _members(no_slots_held, simulator) == []


def test_a_kept_slot_whose_lease_would_not_outlast_the_next_call_is_taken_anew(
    simulator, slots_url, no_slots_held
):
    # Lease 10 s, calls up to 10 s: no time left to keep a slot for another call.
    shared = slots.shared_slots(
        simulator.base_url, 1, url=slots_url, lease_seconds=10.0, longest_call_seconds=10.0
    )
    assert shared.reuse_seconds == 0
    client = _client(simulator, shared, wait=0.3)
    seen = []
    with client.one_slot():
        for _ in range(2):
            client.get_person(person_id=1)
            seen.append(_members(no_slots_held, simulator))
    assert len(seen[0]) == len(seen[1]) == 1 and seen[0] != seen[1], "given back, taken anew"
    assert _members(no_slots_held, simulator) == []


def test_under_one_slot_a_call_still_waits_for_a_free_slot(simulator, slots_url, no_slots_held):
    shared = slots.shared_slots(
        simulator.base_url, 1, url=slots_url, lease_seconds=30.0, longest_call_seconds=10.0
    )
    taken = shared.acquire(timeout=0.1)
    client = _client(simulator, shared, wait=0.2)
    with pytest.raises(TransientCrmError, match="Too many concurrent calls"), client.one_slot():
        client.get_person(person_id=1)
    shared.release(taken)
    assert _members(no_slots_held, simulator) == []


def test_the_runs_of_a_worker_keep_one_slot_of_a_tenant_from_one_run_to_the_next(
    simulator, slots_url, no_slots_held
):
    shared = slots.shared_slots(
        simulator.base_url, CAP, url=slots_url, lease_seconds=30.0, longest_call_seconds=10.0
    )
    hold = slots.SlotHold()
    seen = []
    for _ in range(3):  # a client per run, as the engine makes them
        client = _client(simulator, shared, wait=0.3)
        with client.one_slot(hold):
            client.get_person(person_id=1)
        seen.append(_members(no_slots_held, simulator))
    assert len(seen[0]) == 1 and seen == [seen[0]] * 3, "kept by the worker between runs"
    hold.release_all()
    assert _members(no_slots_held, simulator) == []
