"""Consent in seconds: SuperOffice's webhook in, the hub's outbox out, the cycle as the
backstop. The simulator over HTTP delivers signed webhooks to the hub's live test server;
a real Celery worker drains the pushes through the hub's real client."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from consent.models import (
    WITHDRAWN,
    ConsentDecision,
    ConsentPush,
    ConsentSyncCycle,
    CurrentConsent,
    Origin,
    Purpose,
    PushStatus,
    SuperOfficeEvent,
    SuperOfficeWebhook,
)
from consent.push import consent_pushes_drain
from consent.services import consent_record, consent_sync_cycle
from consent.webhooks import consent_webhook_check, consent_webhook_ensure
from crm.services import client_for_account

from .conftest import wait_until
from .factories import ContactFactory

pytestmark = pytest.mark.both_databases

PERSON = 11


def linked_contact(account, sim, person_id=PERSON):
    email = sim.person(person_id)["Emails"][0]
    return ContactFactory(account=account, email=email, superoffice_person_id=person_id)


def current_basis(contact, purpose=Purpose.EMARKETING):
    row = CurrentConsent.objects.filter(contact=contact, purpose=purpose).first()
    return row.legal_basis if row else None


@pytest.fixture
def registered(account, connection, sim, live_hub):
    """Legal-basis sync on and the account's webhook registered in SuperOffice."""
    hook = consent_webhook_ensure(account=account)
    assert hook.state == SuperOfficeWebhook.State.ACTIVE, hook.error
    return hook


def test_turning_sync_on_registers_one_signed_webhook_for_the_consent_events(
    account, connection, sim, live_hub
):
    hook = consent_webhook_ensure(account=account)

    [saved] = sim.webhooks()
    assert saved["WebhookId"] == hook.webhook_id and saved["State"] == "Active"
    assert saved["Events"] == ["person.consented", "person.unconsented", "person.changed"]
    assert saved["TargetUrl"] == f"{live_hub.url}/hooks/superoffice/{hook.token}/"
    assert saved["has_secret"] and len(hook.secret) >= 32
    # SuperOffice tested the receiver before it saved, and the receiver answered 200.
    [test] = [row for row in sim.webhook_log() if row["event"] == "test"]
    assert test["status"] == 200
    # The secret is stored encrypted, never in the clear.
    from django.db import connection as db

    with db.cursor() as cursor:
        cursor.execute("SELECT secret FROM consent_superofficewebhook WHERE id = %s", [hook.pk])
        (stored,) = cursor.fetchone()
    assert hook.secret not in stored
    # Asked again, nothing more is registered.
    consent_webhook_ensure(account=account)
    assert len(sim.webhooks()) == 1


def test_a_consent_changed_in_superoffice_reaches_the_hub_through_the_webhook_and_a_worker(
    account, registered, sim, celery_worker
):
    contact = linked_contact(account, sim)
    consent_record(
        account=account,
        contact=contact,
        purpose=Purpose.EMARKETING,
        legal_basis="61A",
        changed_at=timezone.now() - timedelta(days=2),
        origin=Origin.SUPEROFFICE,
        superoffice_person_id=PERSON,
    )

    client_for_account(account).set_consent(
        person_id=PERSON, purpose_key="EMARKETING", legal_base_key=WITHDRAWN, source_key="USER"
    )

    wait_until(
        lambda: (
            current_basis(contact) == WITHDRAWN
            and not SuperOfficeEvent.objects.filter(status=PushStatus.PENDING).exists()
        ),
        message="the webhook's change",
    )
    [event] = SuperOfficeEvent.objects.filter(account=account)
    assert (event.event, event.person_id, event.status) == (
        "person.unconsented",
        PERSON,
        PushStatus.DONE,
    )
    decision = ConsentDecision.objects.get(
        contact=contact, purpose=Purpose.EMARKETING, action=ConsentDecision.Action.WRITE_HUB
    )
    assert decision.trigger == ConsentDecision.Trigger.SUPEROFFICE_PUSH
    assert decision.cycle is None
    assert decision.reason.startswith("SuperOffice reported person.unconsented for person 11")
    assert "newer than the hub's" in decision.reason
    hook = SuperOfficeWebhook.objects.get(account=account)
    assert hook.deliveries == 1 and hook.last_delivery_at is not None


def _signed_post(client, hook, body: bytes, *, signature=None, token=None):
    from crm.webhooks import webhook_signature

    headers = {}
    if signature is not False:
        headers["HTTP_X_SUPEROFFICE_SIGNATURE"] = signature or webhook_signature(
            secret=hook.secret, body=body
        )
    return client.post(
        f"/hooks/superoffice/{token or hook.token}/",
        data=body,
        content_type="application/json",
        **headers,
    )


def _delivery(event_id="e0b4c1de-0000-4000-8000-000000000001", person_id=PERSON) -> bytes:
    return json.dumps(
        {
            "EventId": event_id,
            "Timestamp": "2025-05-14T10:48:07.8912039Z",
            "Changes": [],
            "Event": "person.unconsented",
            "PrimaryKey": person_id,
            "Entity": "person",
            "ContextIdentifier": "Cust12345",
            "ChangedByAssociateId": 5,
            "WebhookName": "emhub",
        }
    ).encode()


def test_the_receiver_refuses_forged_unsigned_and_other_accounts_deliveries(
    account, other_account, connection, sim, live_hub, client
):
    from crm.models import SuperOfficeConnection
    from tests.consent.conftest import sim_connection_fields

    SuperOfficeConnection.objects.create(account=other_account, **sim_connection_fields(sim))
    ours = consent_webhook_ensure(account=account)
    theirs = consent_webhook_ensure(account=other_account)
    body = _delivery()

    forged = _signed_post(client, ours, body, signature="bm90IHRoZSBzaWduYXR1cmU=")
    unsigned = _signed_post(client, ours, body, signature=False)
    # Signed with this account's secret, posted to the other account's address.
    elsewhere = _signed_post(client, ours, body, token=theirs.token)
    unknown = _signed_post(client, ours, body, token="no-such-receiver")
    tampered = client.post(
        f"/hooks/superoffice/{ours.token}/",
        data=body.replace(b'"PrimaryKey": 11', b'"PrimaryKey": 12'),
        content_type="application/json",
        HTTP_X_SUPEROFFICE_SIGNATURE=_signature(ours, body),
    )

    assert [r.status_code for r in (forged, unsigned, elsewhere, tampered)] == [401] * 4
    assert unknown.status_code == 404
    assert not SuperOfficeEvent.objects.exists()
    ours.refresh_from_db()
    assert ours.refused == 3


def _signature(hook, body):
    from crm.webhooks import webhook_signature

    return webhook_signature(secret=hook.secret, body=body)


def test_a_replayed_event_id_is_acknowledged_and_ignored(
    account, connection, sim, live_hub, client
):
    hook = consent_webhook_ensure(account=account)
    linked_contact(account, sim)
    body = _delivery()

    first = _signed_post(client, hook, body)
    again = _signed_post(client, hook, body)

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.content == b"Already received."
    assert SuperOfficeEvent.objects.filter(account=account).count() == 1
    assert SuperOfficeEvent.objects.get().event_id == "e0b4c1de-0000-4000-8000-000000000001"


def test_reordered_and_duplicated_deliveries_end_in_superoffices_last_state(
    account, registered, sim, celery_worker
):
    contact = linked_contact(account, sim)
    sim.control(webhook_reorder=3, webhook_duplicate=True)
    client = client_for_account(account)

    for legal_base in ("61A", "61F", WITHDRAWN):
        client.set_consent(
            person_id=PERSON, purpose_key="STORE", legal_base_key=legal_base, source_key="USER"
        )

    wait_until(lambda: sim.deliveries_idle(), message="the deliveries")
    # Each sent twice, in groups sent newest first: the receiver kept each event once.
    sent = [row for row in sim.webhook_log() if row["event"] != "test"]
    assert len(sent) == 6 and len({row["event_id"] for row in sent}) == 3
    received = list(SuperOfficeEvent.objects.filter(account=account).order_by("id"))
    assert len(received) == 3
    occurred = [event.occurred_at for event in received]
    assert occurred != sorted(occurred)
    wait_until(
        lambda: not SuperOfficeEvent.objects.filter(status=PushStatus.PENDING).exists(),
        message="the worker",
    )
    assert current_basis(contact, Purpose.STORE) == WITHDRAWN
    assert sim.consents(PERSON)["STORE"]["legal_base"] == WITHDRAWN


def test_many_deliveries_for_one_person_are_read_once(account, registered, sim):
    contact = linked_contact(account, sim)
    client = client_for_account(account)
    for legal_base in ("61A", "61B", "61C", "61F", WITHDRAWN):
        client.set_consent(
            person_id=PERSON, purpose_key="EMARKETING", legal_base_key=legal_base, source_key="USER"
        )
    wait_until(lambda: SuperOfficeEvent.objects.filter(account=account).count() == 5)
    before = sim.operation_counts().get("Person.GetConsentInfos", 0)

    result = consent_pushes_drain(account_id=account.pk)

    assert (result.events, result.contacts) == (5, 1)
    assert sim.operation_counts()["Person.GetConsentInfos"] - before == 1
    assert current_basis(contact) == WITHDRAWN
    assert not SuperOfficeEvent.objects.filter(status=PushStatus.PENDING).exists()


def test_with_deliveries_dropped_the_next_cycle_converges(account, registered, sim):
    contact = linked_contact(account, sim)
    first = consent_sync_cycle(account=account)
    assert first.status == ConsentSyncCycle.Status.SUCCEEDED
    sim.control(webhook_drop=1.0)

    client_for_account(account).set_consent(
        person_id=PERSON, purpose_key="EMARKETING", legal_base_key="61A", source_key="WEBFORM"
    )

    wait_until(lambda: sim.deliveries_idle())
    assert any(row.get("dropped") for row in sim.webhook_log())
    assert not SuperOfficeEvent.objects.exists()
    assert current_basis(contact) is None
    cycle = consent_sync_cycle(account=account)
    assert cycle.kind == ConsentSyncCycle.Kind.INCREMENTAL
    assert current_basis(contact) == "61A"
    assert cycle.written_to_hub == 1


def test_a_hub_change_reaches_superoffice_through_the_outbox_with_superoffice_down_for_a_while(
    account, connection, sim, celery_worker, api_client
):
    contact = linked_contact(account, sim)
    sim.control(mode="down")

    response = api_client.post(
        "/api/v1/consents/",
        {
            "email": contact.email,
            "purpose": "EMARKETING",
            "legal_basis": "61A",
            "source": "WEBFORM",
        },
        format="json",
    )
    assert response.status_code == 201, response.content

    wait_until(
        lambda: ConsentPush.objects.filter(contact=contact, attempts__gte=2).exists(),
        message="retries while SuperOffice is down",
    )
    assert sim.operation_counts().get("Person.SetConsent", 0) == 0
    sim.control(mode="normal")

    wait_until(
        lambda: sim.consents(PERSON).get("EMARKETING", {}).get("legal_base") == "61A",
        message="the write after SuperOffice came back",
    )
    wait_until(lambda: ConsentPush.objects.filter(contact=contact, status=PushStatus.DONE).exists())
    import time

    time.sleep(1.5)
    assert sim.operation_counts()["Person.SetConsent"] == 1
    assert sim.consents(PERSON)["EMARKETING"]["source"] == "WEBFORM"
    decision = ConsentDecision.objects.get(
        contact=contact, action=ConsentDecision.Action.WRITE_SUPEROFFICE
    )
    assert decision.trigger == ConsentDecision.Trigger.HUB_PUSH
    assert decision.reason.startswith("The hub's change, pushed at once.")


def test_an_older_or_unlinked_change_queues_nothing(account, connection, sim):
    contact = linked_contact(account, sim)
    consent_record(account=account, contact=contact, purpose=Purpose.STORE, legal_basis="61A")
    assert ConsentPush.objects.filter(contact=contact, status=PushStatus.PENDING).count() == 1
    # A second change joins the waiting row; an older one moves nothing and queues nothing.
    consent_record(account=account, contact=contact, purpose=Purpose.STORE, legal_basis="61B")
    consent_record(
        account=account,
        contact=contact,
        purpose=Purpose.STORE,
        legal_basis="61C",
        changed_at=timezone.now() - timedelta(days=9),
    )
    assert ConsentPush.objects.filter(contact=contact).count() == 1
    stranger = ContactFactory(account=account, email="nobody@example.com")
    consent_record(account=account, contact=stranger, purpose=Purpose.STORE, legal_basis="61A")
    taken = consent_record(
        account=account,
        contact=contact,
        purpose=Purpose.EMARKETING,
        legal_basis="61A",
        origin=Origin.SUPEROFFICE,
    )
    assert taken.origin == Origin.SUPEROFFICE
    assert ConsentPush.objects.count() == 1


def test_sync_off_queues_nothing_and_removes_the_webhook(
    account, connection, sim, live_hub, client, admin_client
):
    hook = consent_webhook_ensure(account=account)
    connection.legal_basis_sync_enabled = False
    connection.save()

    contact = linked_contact(account, sim)
    consent_record(account=account, contact=contact, purpose=Purpose.STORE, legal_basis="61A")
    assert not ConsentPush.objects.exists()
    consent_webhook_ensure(account=account)

    assert sim.webhooks() == []
    hook.refresh_from_db()
    assert hook.state == SuperOfficeWebhook.State.REMOVED
    # SuperOffice stops a webhook whose target answers 410 Gone.
    assert _signed_post(client, hook, _delivery()).status_code == 410


def test_a_webhook_superoffice_disabled_shows_on_the_connection_page_and_is_registered_again(
    account, registered, sim, admin_client
):
    # The hub refuses every delivery (signed with another secret): after three failed
    # attempts in a row (nine in SuperOffice) SuperOffice disables the webhook.
    sim.control(webhook_sign_with="not-the-secret", webhook_retry_scale=0.01)
    sim.control(webhook_failures_to_disable=3)
    client_for_account(account).set_consent(
        person_id=PERSON, purpose_key="STORE", legal_base_key="61A", source_key="USER"
    )
    wait_until(lambda: sim.webhooks()[0]["State"] == "TooManyErrors")

    hook = consent_webhook_check(account=account)

    assert hook.state == SuperOfficeWebhook.State.DISABLED
    assert hook.refused == 3 and "401" in hook.superoffice_error
    page = admin_client.get("/settings/superoffice/")
    assert b"disabled by superoffice" in page.content
    assert b'data-testid="webhook-register"' in page.content

    sim.control(webhook_sign_with="")
    response = admin_client.post("/consent/webhook/register/")

    assert response.status_code == 302
    hook.refresh_from_db()
    assert hook.state == SuperOfficeWebhook.State.ACTIVE
    assert sim.webhooks()[0]["State"] == "Active"
    assert len(sim.webhooks()) == 1
    page = admin_client.get("/settings/superoffice/")
    assert b"SuperOffice pushes consent changes as they happen." in page.content


def test_without_a_public_https_address_nothing_is_registered(account, connection, sim, settings):
    settings.EMHUB_PUBLIC_URL = "http://hub.internal:8000"
    settings.CRM_ALLOW_PRIVATE_ADDRESSES = False

    hook = consent_webhook_ensure(account=account)

    assert hook.state == SuperOfficeWebhook.State.NOT_REGISTERED
    assert "https" in hook.error
    assert sim.webhooks() == []


def test_the_hubs_own_write_coming_back_through_the_webhook_is_not_read_again(
    account, registered, sim, celery_worker
):
    contact = linked_contact(account, sim)
    consent_record(account=account, contact=contact, purpose=Purpose.STORE, legal_basis="61B")
    wait_until(lambda: sim.consents(PERSON).get("STORE", {}).get("legal_base") == "61B")
    echo = wait_until(
        lambda: SuperOfficeEvent.objects.filter(account=account, status=PushStatus.DONE).first(),
        message="the write's own delivery",
    )
    reads = sim.operation_counts()["Person.GetConsentInfos"]

    assert echo.event == "person.consented" and echo.note.startswith("The hub's own write")
    # A user's change in SuperOffice right after is read and applied as usual.
    sim.consent_at(PERSON, "STORE", "61F", timezone.now())
    wait_until(lambda: current_basis(contact, Purpose.STORE) == "61F")
    assert sim.operation_counts()["Person.GetConsentInfos"] == reads + 1
