"""The push queue's rows: what every recorder queues, what the drain makes of deliveries
nobody or several contacts stand behind, a configuration error, and the sweeper that
wakes an account whose wake-up was lost. The simulator over HTTP, the real client."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from automations.models import AutomationSettings
from consent.models import (
    WITHDRAWN,
    ConsentDecision,
    ConsentPush,
    ConsentPushLease,
    CurrentConsent,
    Origin,
    Purpose,
    PushStatus,
    SuperOfficeEvent,
)
from consent.push import (
    consent_pushes_drain,
    consent_pushes_sweep,
    push_lease_acquire,
)
from consent.services import BulkChange, consent_bulk_record, consent_record
from crm.services import client_for_account
from crm.webhooks import BadDelivery, webhook_delivery_parse, webhook_signature_valid

from .conftest import wait_until
from .factories import ContactFactory

pytestmark = pytest.mark.both_databases

# Seeded simulator persons 2, 5 and 8 share this address, registered in that order.
DUPLICATE_EMAIL = "duplicate@example.com"


def event(account, person_id, *, name="person.consented", event_id=None, **fields):
    return SuperOfficeEvent.objects.create(
        account=account,
        event_id=event_id or f"ev-{person_id}-{SuperOfficeEvent.objects.count()}",
        event=name,
        person_id=person_id,
        **fields,
    )


def test_an_import_queues_each_linked_contact_whose_state_moved_once(account, connection, sim):
    linked = [ContactFactory(account=account, superoffice_person_id=20 + i) for i in range(3)]
    unlinked = ContactFactory(account=account)
    now = timezone.now()
    changes = [BulkChange(c.pk, p, "61A", now) for c in linked for p in Purpose.values]
    changes.append(BulkChange(unlinked.pk, Purpose.STORE, "61A", now))
    result = consent_bulk_record(account=account, changes=changes, origin=Origin.IMPORT)

    assert result.recorded == 7
    pushes = ConsentPush.objects.filter(account=account, status=PushStatus.PENDING)
    assert sorted(p.contact_id for p in pushes) == sorted(c.pk for c in linked)
    # Older changes move nothing, so they queue nothing more.
    ConsentPush.objects.all().delete()
    consent_bulk_record(
        account=account,
        changes=[
            BulkChange(c.pk, Purpose.STORE, WITHDRAWN, now - timedelta(days=1)) for c in linked
        ],
    )
    assert not ConsentPush.objects.exists()


def test_a_delivery_for_a_person_no_contact_stands_behind_is_done_with_a_note(
    account, connection, sim
):
    row = event(account, 33)

    result = consent_pushes_drain(account_id=account.pk)

    row.refresh_from_db()
    assert (row.status, result.events, result.contacts) == (PushStatus.DONE, 1, 0)
    assert "No contact" in row.note
    assert sim.operation_counts().get("Person.GetConsentInfos", 0) == 0


def test_a_delivery_on_the_oldest_of_persons_sharing_an_email_finds_the_contact_it_counts_for(
    account, connection, sim
):
    from consent.services import consent_sync_cycle

    contact = ContactFactory(account=account, email=DUPLICATE_EMAIL, superoffice_person_id=8)
    consent_sync_cycle(account=account, kind="full")
    client_for_account(account).set_consent(
        person_id=2, purpose_key="EMARKETING", legal_base_key="61A", source_key="USER"
    )
    event(account, 2)

    consent_pushes_drain(account_id=account.pk)

    state = CurrentConsent.objects.get(contact=contact, purpose=Purpose.EMARKETING)
    assert state.legal_basis == "61A"
    decision = ConsentDecision.objects.get(
        contact=contact, purpose=Purpose.EMARKETING, action=ConsentDecision.Action.WRITE_HUB
    )
    assert decision.superoffice_person_id == 2
    assert "the oldest, person 2, counts" in decision.reason


def test_a_configuration_error_holds_the_pushes_and_pauses_the_accounts_crm_work(
    account, connection, sim
):
    contact = ContactFactory(account=account, superoffice_person_id=12, email="x@example.com")
    consent_record(account=account, contact=contact, purpose=Purpose.STORE, legal_basis="61A")
    connection.password = "wrong"
    connection.save()

    result = consent_pushes_drain(account_id=account.pk)

    assert result.stopped.startswith("paused")
    push = ConsentPush.objects.get(contact=contact)
    assert (push.status, push.attempts) == (PushStatus.PENDING, 0)
    assert AutomationSettings.objects.get(account=account).is_crm_paused
    assert consent_pushes_drain(account_id=account.pk).stopped == "paused"
    assert sim.operation_counts().get("Person.SetConsent", 0) == 0


def test_the_sweeper_wakes_an_account_whose_wake_up_was_lost_and_not_one_being_drained(
    account, connection, sim, settings, monkeypatch
):
    settings.CONSENT_PUSH_REDISPATCH_SECONDS = 5
    published = []
    monkeypatch.setattr(
        "consent.push.consent_pushes_publish",
        lambda *, account_id, countdown=None: published.append(account_id) or True,
    )
    contact = ContactFactory(account=account, superoffice_person_id=13, email="y@example.com")
    consent_record(account=account, contact=contact, purpose=Purpose.STORE, legal_basis="61A")
    # Just queued: its own wake-up is on the way.
    assert consent_pushes_sweep() == 0
    ConsentPush.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=6))
    holder = push_lease_acquire(account_id=account.pk)
    assert consent_pushes_sweep() == 0
    ConsentPushLease.objects.filter(account=account).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert consent_pushes_sweep() == 1
    assert published == [account.pk]
    assert holder


def test_a_drain_that_finds_the_lease_taken_leaves_the_rows_to_the_holder(account, connection, sim):
    contact = ContactFactory(account=account, superoffice_person_id=14, email="z@example.com")
    consent_record(account=account, contact=contact, purpose=Purpose.STORE, legal_basis="61A")
    push_lease_acquire(account_id=account.pk)

    assert consent_pushes_drain(account_id=account.pk) is None
    assert ConsentPush.objects.get(contact=contact).status == PushStatus.PENDING


def test_a_push_recorded_while_a_drain_syncs_is_taken_by_that_drain_after_it_lets_go(
    transactional_db, account, connection, sim
):
    import threading

    from consent.services import consent_sync_cycle

    first = ContactFactory(account=account, superoffice_person_id=15, email="a15@example.com")
    second = ContactFactory(account=account, superoffice_person_id=16, email="a16@example.com")
    consent_sync_cycle(account=account, kind="full")
    consent_record(account=account, contact=first, purpose=Purpose.STORE, legal_basis="61A")
    calls_before = sum(sim.operation_counts().values())
    sim.control(mode="slow", delay=0.3)
    results = []

    def run_drain():
        from django.db import connections

        try:
            results.append(consent_pushes_drain(account_id=account.pk))
        finally:
            connections.close_all()

    drain = threading.Thread(target=run_drain)
    drain.start()
    try:
        # The drain has read its batch and is asking SuperOffice about the first contact.
        wait_until(lambda: sum(sim.operation_counts().values()) > calls_before)
        consent_record(account=account, contact=second, purpose=Purpose.STORE, legal_basis="61A")
    finally:
        drain.join(30)
        sim.control(mode="normal")

    [result] = results
    # The second push found the first drain's wake-up pending; that drain took it after
    # letting the lease go, not a message or the sweeper.
    assert (result.pushes, result.stopped) == (2, "")
    assert set(ConsentPush.objects.values_list("contact_id", "status")) == {
        (first.pk, PushStatus.DONE),
        (second.pk, PushStatus.DONE),
    }
    assert sim.consents(16)["STORE"]["legal_base"] == "61A"


def _queued_messages() -> int:
    from emhub.celery import app

    with app.connection_for_write() as conn:
        return conn.default_channel.queue_declare("celery", passive=True).message_count


def _receive(hook, person_id: int, event_id: str):
    from consent.push import superoffice_event_receive
    from crm.webhooks import webhook_signature

    body = json.dumps(
        {
            "EventId": event_id,
            "Timestamp": "2025-05-14T10:48:07.8912039Z",
            "Event": "person.consented",
            "PrimaryKey": person_id,
            "Entity": "person",
        }
    ).encode()
    signature = webhook_signature(secret=hook.secret, body=body)
    return superoffice_event_receive(token=hook.token, body=body, signature=signature)


def test_a_burst_of_deliveries_publishes_one_wake_up_until_a_drain_takes_the_lease(account):
    from consent.models import SuperOfficeWebhook
    from consent.push import push_lease_release
    from emhub.celery import app

    hook = SuperOfficeWebhook.objects.create(
        account=account,
        token="burst",
        secret="s" * 32,
        name="emhub",
        events=["person.consented"],
        state=SuperOfficeWebhook.State.ACTIVE,
    )
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")

    for i in range(5):
        assert _receive(hook, 20 + i, f"burst-{i}").status == 200
    assert SuperOfficeEvent.objects.filter(account=account).count() == 5
    assert _queued_messages() == 1
    # A drain took the lease and reads from here on: the next delivery may have come
    # after its read, so it wakes again; the rest of that burst does not.
    holder = push_lease_acquire(account_id=account.pk)
    _receive(hook, 30, "burst-5")
    _receive(hook, 31, "burst-6")
    assert _queued_messages() == 2
    push_lease_release(account_id=account.pk, holder=holder)
    _receive(hook, 32, "burst-7")
    assert _queued_messages() == 3
    # The receiver wrote the deliveries alone; the webhook's figures are the drain's.
    hook.refresh_from_db()
    assert hook.deliveries == 0
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")


# -- the delivery as a receiver reads it ----------------------------------------------------


def test_a_delivery_is_read_by_name_and_anything_else_is_refused():
    body = json.dumps(
        {
            "EventId": "88f91933-edce-4c1a-8ded-ade8e2f72434",
            "Timestamp": "2025-05-14T10:48:07.8912039Z",
            "Changes": ["consentperson_id", "legalBase_id"],
            "Event": "person.consented",
            "PrimaryKey": 18,
            "Entity": "person",
            "ContextIdentifier": "Cust1234",
            "ChangedByAssociateId": 5,
            "WebhookName": "emhub",
            "FieldValues": {"person_id": 18},
            # A field a later SuperOffice adds is ignored.
            "SomethingNew": [1, 2],
        }
    ).encode()
    delivery = webhook_delivery_parse(body)
    assert (delivery.event, delivery.primary_key, delivery.entity) == (
        "person.consented",
        18,
        "person",
    )
    assert delivery.occurred_at.isoformat() == "2025-05-14T10:48:07.891203+00:00"
    for bad in (
        b"not json",
        b"[]",
        b'{"Event": "person.consented", "PrimaryKey": 1}',
        b'{"EventId": "x", "Event": "person.consented", "PrimaryKey": "1"}',
        b'{"EventId": "x", "Event": "person.consented", "PrimaryKey": true}',
    ):
        with pytest.raises(BadDelivery):
            webhook_delivery_parse(bad)


def test_the_signature_is_the_base64_hmac_of_the_raw_body():
    # A vector worked out with the sample algorithm of docs/en/automation/webhook/dev/
    # security.md: base64(HMAC-SHA256(secret, body)).
    body = b'{"EventId":"1","Event":"test"}'
    import base64
    import hashlib
    import hmac

    good = base64.b64encode(hmac.new(b"k", body, hashlib.sha256).digest()).decode()
    assert webhook_signature_valid(secret="k", body=body, signature=good)
    assert not webhook_signature_valid(secret="k", body=body + b" ", signature=good)
    assert not webhook_signature_valid(secret="other", body=body, signature=good)
    assert not webhook_signature_valid(secret="k", body=body, signature=None)
    assert not webhook_signature_valid(secret="", body=body, signature=good)


def test_finished_deliveries_and_pushes_are_forgotten_after_the_days_kept(account):
    old = timezone.now() - timedelta(days=31)
    contact = ContactFactory(account=account)
    done = event(account, 1, status=PushStatus.DONE, processed_at=old)
    waiting = event(account, 2, next_attempt_at=old)
    recent = event(account, 3, status=PushStatus.DONE, processed_at=timezone.now())
    ConsentPush.objects.create(
        account=account, contact=contact, status=PushStatus.DONE, finished_at=old
    )

    from consent.push import consent_pushes_prune

    assert consent_pushes_prune(keep_days=30) == 2
    assert set(SuperOfficeEvent.objects.values_list("pk", flat=True)) == {waiting.pk, recent.pk}
    assert not ConsentPush.objects.exists()
    assert done.pk not in SuperOfficeEvent.objects.values_list("pk", flat=True)
