"""The consent API: `/api/v1/consents/`."""

from datetime import timedelta

from django.utils import timezone
from rest_framework.test import APIClient

from campaigns.models import Contact
from consent.models import WITHDRAWN, ConsentChange, Origin, Purpose
from consent.services import consent_record

from .factories import ContactFactory

URL = "/api/v1/consents/"


def test_reading_a_contacts_consents_gives_the_current_state_per_purpose_and_the_history(
    account, api_client
):
    contact = ContactFactory(account=account, email="kari@example.com", superoffice_person_id=9)
    earlier = timezone.now() - timedelta(days=2)
    consent_record(
        account=account,
        contact=contact,
        purpose=Purpose.EMARKETING,
        legal_basis="61A",
        changed_at=earlier,
        origin=Origin.FORM,
        source="WEBFORM",
    )
    consent_record(
        account=account, contact=contact, purpose=Purpose.EMARKETING, legal_basis=WITHDRAWN
    )

    response = api_client.get(URL, {"email": "KARI@example.com"})

    assert response.status_code == 200
    body = response.json()
    assert body["superoffice_person_id"] == 9
    states = {s["purpose"]: s for s in body["consents"]}
    assert states["EMARKETING"]["legal_basis"] == WITHDRAWN
    assert states["EMARKETING"]["granted"] is False
    assert states["STORE"] == {
        "purpose": "STORE",
        "purpose_name": "Store and process",
        "legal_basis": None,
        "granted": False,
        "source": None,
        "changed_at": None,
        "origin": None,
    }
    assert body["history"]["count"] == 2
    assert [h["legal_basis"] for h in body["history"]["results"]] == [WITHDRAWN, "61A"]


def test_reading_an_unknown_email_is_404(api_client):
    assert api_client.get(URL, {"email": "nobody@example.com"}).status_code == 404


def test_a_contact_of_another_account_is_404_for_this_accounts_key(api_client, other_account):
    ContactFactory(account=other_account, email="theirs@example.com")
    assert api_client.get(URL, {"email": "theirs@example.com"}).status_code == 404


def test_reading_without_an_email_is_a_400_naming_the_field(api_client):
    response = api_client.get(URL, {"email": "not-an-email"})
    assert response.status_code == 400
    assert "email" in response.json()


def test_the_history_is_paginated(account, api_client):
    contact = ContactFactory(account=account, email="many@example.com")
    start = timezone.now() - timedelta(days=30)
    for day in range(5):
        consent_record(
            account=account,
            contact=contact,
            purpose=Purpose.STORE,
            legal_basis="61F",
            changed_at=start + timedelta(days=day),
        )
    body = api_client.get(URL, {"email": "many@example.com", "limit": 2}).json()
    assert body["history"]["count"] == 5
    assert len(body["history"]["results"]) == 2
    assert "offset=2" in body["history"]["next"]


def test_recording_a_consent_creates_the_contact_and_moves_the_current_state(account, api_client):
    response = api_client.post(
        URL,
        {
            "email": "New@Example.com",
            "purpose": "EMARKETING",
            "legal_basis": "61a",
            "source": "WEBFORM",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["legal_basis"] == "61A"
    assert body["current"]["granted"] is True
    contact = Contact.objects.get(account=account, email="new@example.com")
    change = ConsentChange.objects.get(contact=contact)
    assert change.origin == Origin.API and change.source == "WEBFORM"


def test_an_older_recorded_change_goes_to_the_history_but_does_not_replace_a_newer_one(
    account, api_client
):
    contact = ContactFactory(account=account, email="late@example.com")
    consent_record(account=account, contact=contact, purpose=Purpose.STORE, legal_basis=WITHDRAWN)
    older = (timezone.now() - timedelta(days=1)).isoformat()

    response = api_client.post(
        URL,
        {
            "email": "late@example.com",
            "purpose": "STORE",
            "legal_basis": "61A",
            "changed_at": older,
        },
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["current"]["legal_basis"] == WITHDRAWN
    assert ConsentChange.objects.filter(contact=contact).count() == 2


def test_bad_input_is_a_400_with_a_message_per_field(api_client):
    response = api_client.post(
        URL,
        {"email": "nope", "purpose": "SPAM", "legal_basis": "61 A; drop", "changed_at": "soon"},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()) == {"email", "purpose", "legal_basis", "changed_at"}


def test_a_change_dated_in_the_future_is_refused(api_client):
    future = (timezone.now() + timedelta(days=1)).isoformat()
    response = api_client.post(
        URL,
        {"email": "f@example.com", "purpose": "STORE", "legal_basis": "61A", "changed_at": future},
        format="json",
    )
    assert response.status_code == 400
    assert "changed_at" in response.json()


def test_a_recorded_consent_lands_in_the_keys_account_only(account, other_account, api_client):
    ContactFactory(account=other_account, email="shared@example.com")
    api_client.post(
        URL,
        {"email": "shared@example.com", "purpose": "STORE", "legal_basis": "61B"},
        format="json",
    )
    assert ConsentChange.objects.get().account == account
    assert not ConsentChange.objects.filter(account=other_account).exists()


def test_the_api_needs_a_key(db):
    assert APIClient().get(URL, {"email": "a@example.com"}).status_code in (401, 403)


def test_the_consent_api_is_in_the_openapi_schema(api_client, admin_client):
    schema = admin_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/v1/consents/" in text and "consents_record" in text


def _record(api_client, legal_basis, email="k@example.com"):
    return api_client.post(
        URL, {"email": email, "purpose": "STORE", "legal_basis": legal_basis}, format="json"
    )


def test_without_superoffice_only_the_documented_legal_bases_are_accepted(account, api_client):
    for key in ("0", "YES", "61C", "CONSENT"):
        response = _record(api_client, key)
        assert response.status_code == 400, key
        assert "Unknown legal-base key" in response.json()["legal_basis"][0]
    assert not ConsentChange.objects.exists()

    for key in ("61a", "61B", "61F", "withdrawn"):
        assert _record(api_client, key).status_code == 201, key


def test_with_superoffice_the_tenants_own_legal_bases_are_accepted_from_the_cached_list(
    account, api_client, connection, sim
):
    from crm.models import CrmCall

    # 61C is the tenant's (List.GetLegalBases), though no SuperOffice example names it.
    assert _record(api_client, "61C").status_code == 201
    refused = _record(api_client, "0")
    assert refused.status_code == 400
    assert "61C" in refused.json()["legal_basis"][0]
    assert _record(api_client, "61D", email="m@example.com").status_code == 201
    # The list was read from SuperOffice once, then from the cache.
    assert CrmCall.objects.filter(account=account, operation="GetLegalBases").count() == 1


def test_when_superoffice_cannot_be_asked_the_last_list_read_decides(
    account, api_client, connection, sim
):
    from crm.models import CrmListCache

    assert _record(api_client, "61E").status_code == 201
    CrmListCache.objects.filter(account=account).update(
        fetched_at=timezone.now() - timedelta(days=1)
    )
    sim.control(mode="down")

    assert _record(api_client, "61E", email="o@example.com").status_code == 201
    assert _record(api_client, "0", email="o@example.com").status_code == 400
