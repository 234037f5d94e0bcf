"""The sync engine against the NetServer simulator, through the hub's real client."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.utils import timezone

from consent.models import (
    WITHDRAWN,
    ConsentChange,
    ConsentDecision,
    ConsentSyncCycle,
    ConsentSyncLease,
    CurrentConsent,
    Origin,
    Purpose,
)
from consent.services import (
    consent_lease_acquire,
    consent_record,
    consent_sync_cycle,
    consent_sync_for_contacts,
)
from crm.services import client_for_account

from .factories import ContactFactory

pytestmark = pytest.mark.both_databases

FULL = ConsentSyncCycle.Kind.FULL
# Seeded simulator persons 2, 5 and 8 share this address, registered in that order.
DUPLICATE_EMAIL = "duplicate@example.com"


def linked_contact(account, sim, person_id):
    email = sim.person(person_id)["Emails"][0]
    return ContactFactory(account=account, email=email, superoffice_person_id=person_id)


def current(contact, purpose):
    return CurrentConsent.objects.filter(contact=contact, purpose=purpose).first()


@pytest.mark.parametrize("purpose", Purpose.values)
@pytest.mark.parametrize("legal_basis", ["61A", WITHDRAWN])
def test_a_newer_hub_change_is_written_to_superoffice_and_a_second_cycle_changes_nothing(
    account, connection, sim, purpose, legal_basis
):
    contact = linked_contact(account, sim, 11)
    consent_record(
        account=account,
        contact=contact,
        purpose=purpose,
        legal_basis=legal_basis,
        source="WEBFORM",
        origin=Origin.FORM,
    )

    cycle = consent_sync_cycle(account=account, kind=FULL)

    assert cycle.status == ConsentSyncCycle.Status.SUCCEEDED
    assert sim.consents(11)[purpose]["legal_base"] == legal_basis
    assert sim.consents(11)[purpose]["source"] == "WEBFORM"
    decision = ConsentDecision.objects.get(cycle=cycle, contact=contact, purpose=purpose)
    assert decision.action == ConsentDecision.Action.WRITE_SUPEROFFICE
    assert decision.superoffice_person_id == 11
    assert "written to SuperOffice" in decision.reason
    assert cycle.written_to_superoffice >= 1 and cycle.crm_calls >= 3

    again = consent_sync_cycle(account=account, kind=FULL)
    assert (again.written_to_superoffice, again.written_to_hub) == (0, 0)
    assert current(contact, purpose).legal_basis == legal_basis


@pytest.mark.parametrize("purpose", Purpose.values)
def test_a_newer_superoffice_change_is_written_to_the_hub_with_superoffices_time(
    account, connection, sim, purpose
):
    contact = linked_contact(account, sim, 12)
    consent_record(
        account=account,
        contact=contact,
        purpose=purpose,
        legal_basis="61A",
        changed_at=timezone.now() - timedelta(days=1),
        origin=Origin.API,
    )
    client_for_account(account).set_consent(
        person_id=12, purpose_key=purpose, legal_base_key=WITHDRAWN, source_key="USER"
    )

    cycle = consent_sync_cycle(account=account, kind=FULL)

    state = current(contact, purpose)
    assert state.legal_basis == WITHDRAWN
    assert state.origin == Origin.SUPEROFFICE
    so_updated = sim.consents(12)[purpose]["updated"]
    assert state.changed_at.isoformat(sep=" ")[:19] == so_updated[:19]
    assert cycle.written_to_hub >= 1
    assert ConsentChange.objects.filter(contact=contact, purpose=purpose).count() == 2
    assert "newer than the hub's" in state.change.reason

    again = consent_sync_cycle(account=account, kind=FULL)
    assert (again.written_to_superoffice, again.written_to_hub) == (0, 0)


def test_among_persons_sharing_an_email_the_oldest_counts_and_only_it_is_written(
    account, connection, sim
):
    client = client_for_account(account)
    purpose = Purpose.EMARKETING
    # The oldest person grants; a younger one withdraws later. The oldest counts.
    client.set_consent(person_id=2, purpose_key=purpose, legal_base_key="61A", source_key="USER")
    client.set_consent(
        person_id=5, purpose_key=purpose, legal_base_key=WITHDRAWN, source_key="USER"
    )
    contact = ContactFactory(account=account, email=DUPLICATE_EMAIL, superoffice_person_id=8)

    cycle = consent_sync_cycle(account=account, kind=FULL)

    assert current(contact, purpose).legal_basis == "61A"
    decision = ConsentDecision.objects.get(cycle=cycle, purpose=purpose)
    assert decision.superoffice_person_id == 2
    assert decision.conflict is True
    assert "the oldest, person 2, counts" in decision.reason
    assert cycle.conflicts >= 1

    consent_record(account=account, contact=contact, purpose=purpose, legal_basis=WITHDRAWN)
    person_8_before = sim.consents(8).get(purpose)
    consent_sync_cycle(account=account, kind=FULL)

    assert sim.consents(2)[purpose]["legal_base"] == WITHDRAWN
    assert sim.consents(8).get(purpose) == person_8_before


def test_with_sync_off_a_cycle_does_nothing_at_all(account, connection, sim):
    connection.legal_basis_sync_enabled = False
    connection.save()
    contact = linked_contact(account, sim, 13)
    consent_record(account=account, contact=contact, purpose=Purpose.STORE, legal_basis="61B")
    calls_before = sum(sim.operation_counts().values())

    assert consent_sync_cycle(account=account, kind=FULL) is None
    assert consent_sync_for_contacts(account=account, contact_ids=[contact.pk]) is None

    assert ConsentSyncCycle.objects.count() == 0
    assert sum(sim.operation_counts().values()) == calls_before
    assert sim.consents(13).get(Purpose.STORE, {}).get("legal_base") != "61B"


def test_turning_sync_on_takes_effect_at_the_next_cycle(account, connection, sim):
    connection.legal_basis_sync_enabled = False
    connection.save()
    assert consent_sync_cycle(account=account) is None
    connection.legal_basis_sync_enabled = True
    connection.save()
    assert consent_sync_cycle(account=account) is not None


def test_superoffice_down_mid_cycle_leaves_no_half_written_state_and_the_next_cycle_completes(
    account, connection, sim
):
    client = client_for_account(account)
    # First contact: SuperOffice is newer, so the hub is written (reads still work).
    first = linked_contact(account, sim, 14)
    consent_record(
        account=account,
        contact=first,
        purpose=Purpose.STORE,
        legal_basis="61A",
        changed_at=timezone.now() - timedelta(days=1),
    )
    client.set_consent(
        person_id=14, purpose_key=Purpose.STORE, legal_base_key="61F", source_key="USER"
    )
    # Second contact: the hub is newer, so SuperOffice must be written; it is down for writes.
    second = linked_contact(account, sim, 15)
    consent_record(account=account, contact=second, purpose=Purpose.STORE, legal_basis=WITHDRAWN)
    second_so_before = sim.consents(15).get(Purpose.STORE)
    sim.control(mode="down", operations=["SetConsent"])

    failed = consent_sync_cycle(account=account, kind=FULL)

    assert failed.status == ConsentSyncCycle.Status.FAILED
    assert failed.watermark is None and failed.error
    # The first contact was handled whole: its hub write and its decision, together.
    assert current(first, Purpose.STORE).legal_basis == "61F"
    assert ConsentDecision.objects.filter(
        cycle=failed,
        contact=first,
        purpose=Purpose.STORE,
        action=ConsentDecision.Action.WRITE_HUB,
    ).exists()
    # The second was not touched on either side, and nothing claims it was written.
    assert sim.consents(15).get(Purpose.STORE) == second_so_before
    assert current(second, Purpose.STORE).legal_basis == WITHDRAWN
    assert not ConsentDecision.objects.filter(
        contact=second,
        action=ConsentDecision.Action.WRITE_SUPEROFFICE,
        outcome=ConsentDecision.Outcome.DONE,
    ).exists()
    assert ConsentSyncLease.objects.get(account=account).holder == ""

    sim.control(mode="normal", operations=[])
    recovered = consent_sync_cycle(account=account)

    assert recovered.status == ConsentSyncCycle.Status.SUCCEEDED
    assert sim.consents(15)[Purpose.STORE]["legal_base"] == WITHDRAWN
    assert current(first, Purpose.STORE).legal_basis == "61F"
    assert ConsentChange.objects.filter(contact=first, origin=Origin.SUPEROFFICE).count() == 1


def test_a_cycle_does_not_start_while_another_holds_the_accounts_lease(account, connection, sim):
    linked_contact(account, sim, 16)
    assert consent_lease_acquire(account=account) is not None

    assert consent_sync_cycle(account=account) is None
    assert ConsentSyncCycle.objects.count() == 0


def test_an_expired_lease_of_a_dead_worker_is_taken_over(account, connection, sim):
    consent_lease_acquire(account=account)
    ConsentSyncLease.objects.filter(account=account).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert consent_sync_cycle(account=account) is not None


@pytest.mark.django_db(transaction=True)
def test_two_cycles_started_at_once_run_exactly_one(account, connection, sim):
    for person_id in (17, 18, 19):
        contact = linked_contact(account, sim, person_id)
        consent_record(account=account, contact=contact, purpose=Purpose.STORE, legal_basis="61C")
    # Slow SuperOffice: the first cycle is still running when the second starts.
    sim.control(mode="slow", delay=0.2)
    barrier = threading.Barrier(2)
    results = []

    def run():
        barrier.wait()
        try:
            results.append(consent_sync_cycle(account=account, kind=FULL))
        finally:
            db_connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(r is None for r in results) == [False, True]
    assert ConsentSyncCycle.objects.filter(account=account).count() == 1
    assert ConsentSyncCycle.objects.get().written_to_superoffice == 3


def test_an_on_demand_sync_handles_only_the_given_contacts_and_keeps_the_watermark(
    account, connection, sim
):
    wanted = linked_contact(account, sim, 20)
    other = linked_contact(account, sim, 21)
    for contact in (wanted, other):
        consent_record(account=account, contact=contact, purpose=Purpose.STORE, legal_basis="61D")

    cycle = consent_sync_for_contacts(account=account, contact_ids=[wanted.pk])

    assert cycle.kind == ConsentSyncCycle.Kind.ON_DEMAND
    assert cycle.contacts_checked == 1 and cycle.watermark is None
    assert sim.consents(20)[Purpose.STORE]["legal_base"] == "61D"
    assert sim.consents(21).get(Purpose.STORE, {}).get("legal_base") != "61D"


def test_an_incremental_cycle_handles_only_what_changed_on_either_side_since_the_watermark(
    account, connection, sim
):
    contacts = [linked_contact(account, sim, person_id) for person_id in (22, 24, 25, 26)]
    first = consent_sync_cycle(account=account)
    consent_record(account=account, contact=contacts[1], purpose=Purpose.STORE, legal_basis="61E")
    client_for_account(account).set_consent(
        person_id=25, purpose_key=Purpose.EMARKETING, legal_base_key="61D", source_key="USER"
    )
    calls_before = sum(sim.operation_counts().values())

    second = consent_sync_cycle(account=account)

    assert first.watermark_from is None and first.watermark == first.started_at
    assert first.contacts_checked == 4
    assert second.watermark_from < first.watermark
    assert second.contacts_checked == 2
    assert sim.consents(24)[Purpose.STORE]["legal_base"] == "61E"
    assert current(contacts[2], Purpose.EMARKETING).legal_basis == "61D"
    # One "changed since" query, then per changed contact a lookup by email and a
    # consent read, and one write: proportional to the changes, not to the contacts.
    assert sum(sim.operation_counts().values()) - calls_before == second.crm_calls == 6
    assert second.error == ""


def test_an_incremental_cycle_picks_up_a_change_superoffice_made_today_and_one_made_yesterday(
    account, connection, sim
):
    # consentPerson/updatedDate, which lists SuperOffice's changes, is a date: a change
    # made yesterday after the last cycle, and one made today, are both in the window.
    contacts = {pid: linked_contact(account, sim, pid) for pid in (30, 31, 32)}
    first = consent_sync_cycle(account=account)
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    ConsentSyncCycle.objects.filter(pk=first.pk).update(watermark=midnight - timedelta(minutes=10))
    yesterday = midnight - timedelta(minutes=5)
    sim.consent_at(30, Purpose.EMARKETING, "61A", yesterday)
    client_for_account(account).set_consent(
        person_id=31, purpose_key=Purpose.STORE, legal_base_key="61C", source_key="USER"
    )
    consent_record(account=account, contact=contacts[32], purpose=Purpose.STORE, legal_basis="61E")

    second = consent_sync_cycle(account=account)

    assert second.status == ConsentSyncCycle.Status.SUCCEEDED
    assert second.contacts_checked == 3
    assert sim.consents(32)[Purpose.STORE]["legal_base"] == "61E"
    assert current(contacts[30], Purpose.EMARKETING).legal_basis == "61A"
    assert current(contacts[30], Purpose.EMARKETING).changed_at == yesterday
    assert current(contacts[31], Purpose.STORE).legal_basis == "61C"

    # The next cycle gets the same days' rows again, and the hub's change is still in its
    # overlap; the hub has decided on all three, so it reads no person: one archive page
    # and the legal-basis list, whatever the day held.
    calls_before = sum(sim.operation_counts().values())
    third = consent_sync_cycle(account=account)
    assert third.contacts_checked == 0
    assert sum(sim.operation_counts().values()) - calls_before == third.crm_calls == 2

    # A change today on a person the hub already saw today is read again.
    client_for_account(account).set_consent(
        person_id=30, purpose_key=Purpose.EMARKETING, legal_base_key="WITHDRAWN", source_key="USER"
    )
    fourth = consent_sync_cycle(account=account)
    assert fourth.contacts_checked == 1
    assert current(contacts[30], Purpose.EMARKETING).legal_basis == WITHDRAWN


def test_an_incremental_cycle_notices_a_change_on_the_oldest_duplicate_it_counted_before(
    account, connection, sim
):
    contact = ContactFactory(account=account, email=DUPLICATE_EMAIL, superoffice_person_id=8)
    consent_sync_cycle(account=account)
    client_for_account(account).set_consent(
        person_id=2, purpose_key=Purpose.STORE, legal_base_key="61C", source_key="USER"
    )

    second = consent_sync_cycle(account=account)

    assert second.contacts_checked == 1
    assert current(contact, Purpose.STORE).legal_basis == "61C"


def test_contacts_of_another_account_are_never_synced(account, other_account, connection, sim):
    stranger = ContactFactory(
        account=other_account, email="x@example.com", superoffice_person_id=23
    )
    consent_record(
        account=other_account, contact=stranger, purpose=Purpose.STORE, legal_basis="61E"
    )

    cycle = consent_sync_cycle(account=account, kind=FULL)

    assert cycle.contacts_checked == 0
    assert sim.consents(23).get(Purpose.STORE, {}).get("legal_base") != "61E"


def test_a_consent_gone_from_superoffice_counts_as_a_withdrawal_not_a_gap_to_refill(
    account, connection
):
    # A real tenant may delete the consent row (no time left to compare). The simulator
    # always keeps a WITHDRAWN row, so this checks the engine's reading of a gap directly.
    from consent.rules import ConsentState, PersonConsent, decide_for_contact
    from consent.services import SyncScope, _explain_removal, _vanished_as_withdrawn

    contact = ContactFactory(account=account, superoffice_person_id=31)
    consent_record(
        account=account,
        contact=contact,
        purpose=Purpose.EMARKETING,
        legal_basis="61A",
        origin=Origin.SUPEROFFICE,
        superoffice_person_id=31,
        changed_at=timezone.now() - timedelta(days=1),
    )
    never_there = ContactFactory(account=account, superoffice_person_id=32)
    consent_record(
        account=account, contact=never_there, purpose=Purpose.EMARKETING, legal_basis="61A"
    )
    cycle = ConsentSyncCycle.objects.create(account=account, kind=FULL)

    def decided(contact, person_id):
        hub = current(contact, Purpose.EMARKETING)
        hub_state = ConsentState(hub.legal_basis, hub.changed_at, hub.source)
        persons = _vanished_as_withdrawn(
            scope=SyncScope(account=account, cycle=cycle),
            contact=contact,
            purpose=Purpose.EMARKETING,
            hub=hub_state,
            persons=[PersonConsent(person_id, None, None)],
        )
        return _explain_removal(decide_for_contact(hub=hub_state, persons=persons))

    removed = decided(contact, 31)
    assert removed.result.is_withdrawn and removed.action.value == "write_hub"
    assert "removed there" in removed.reason
    # A grant SuperOffice never held is simply written there.
    assert decided(never_there, 32).action.value == "write_superoffice"


@pytest.mark.django_db(transaction=True)
def test_a_cycle_that_lost_its_lease_stops_and_says_so(account, connection, sim):
    for person_id in (27, 28):
        linked_contact(account, sim, person_id)
    sim.control(mode="slow", delay=0.3)
    results = []
    runner = threading.Thread(
        target=lambda: (
            results.append(consent_sync_cycle(account=account, kind=FULL)),
            db_connection.close(),
        )
    )
    runner.start()
    # Another worker takes over after the lease "expired" (as a too-slow cycle's would).
    time.sleep(0.5)
    ConsentSyncLease.objects.filter(account=account).update(holder="someone-else")
    runner.join(timeout=60)

    cycle = results[0]
    assert cycle.status == ConsentSyncCycle.Status.FAILED
    assert "lease was lost" in cycle.error
    assert ConsentSyncLease.objects.get(account=account).holder == "someone-else"


def test_a_connection_with_a_configuration_error_fails_the_cycle_without_calling_superoffice(
    account, connection, sim
):
    linked_contact(account, sim, 29)
    connection.config_error = "SuperOffice refused the user name or password"
    connection.save()
    calls_before = sum(sim.operation_counts().values())

    cycle = consent_sync_cycle(account=account)

    assert cycle.status == ConsentSyncCycle.Status.FAILED
    assert "configuration error" in cycle.error
    assert sum(sim.operation_counts().values()) == calls_before
