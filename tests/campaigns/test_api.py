"""POST /api/v1/events/: one event or a batch, all or nothing, scoped to the key's account."""

import pytest
from rest_framework.test import APIClient

from campaigns.models import Contact, Event, EventType

from .factories import CampaignFactory, FormFactory, TrackedLinkFactory

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]
URL = "/api/v1/events/"


@pytest.fixture
def campaign(account):
    return CampaignFactory(account=account)


def event(of_campaign, n=1, **extra):
    return {
        "event_id": f"evt-{n}",
        "type": "email_opened",
        "campaign": of_campaign.pk,
        "email": f"reader{n}@example.com",
        **extra,
    }


def post(client, body):
    return client.post(URL, body, format="json")


def test_one_event_is_stored_and_answered_with_201(api_client, account, campaign):
    response = post(
        api_client, event(campaign, 1, first_name="Anna", occurred_at="2025-05-01T09:30:00Z")
    )

    assert response.status_code == 201, response.json()
    stored = Event.objects.get()
    assert response.json() == {
        "stored": 1,
        "duplicates": 0,
        "runs": 0,
        "events": [{"event_id": "evt-1", "id": stored.pk, "status": "stored"}],
    }
    assert stored.account_id == account.pk
    assert Contact.objects.get().first_name == "Anna"


def test_a_batch_with_a_resent_event_reports_it_as_a_duplicate(api_client, campaign):
    post(api_client, event(campaign, 1))
    response = post(api_client, {"events": [event(campaign, 1), event(campaign, 2)]})

    assert response.status_code == 201
    body = response.json()
    assert (body["stored"], body["duplicates"]) == (1, 1)
    assert [e["status"] for e in body["events"]] == ["duplicate", "stored"]
    assert Event.objects.count() == 2


def test_the_same_batch_posted_twice_stores_it_once(api_client, campaign):
    batch = {"events": [event(campaign, n) for n in range(50)]}
    first = post(api_client, batch).json()
    second = post(api_client, batch).json()
    assert (first["stored"], second["stored"], second["duplicates"]) == (50, 0, 50)
    assert [e["id"] for e in first["events"]] == [e["id"] for e in second["events"]]
    assert Event.objects.count() == 50


def test_a_click_names_its_link_and_a_submission_its_form(api_client, campaign):
    link = TrackedLinkFactory(campaign=campaign)
    form = FormFactory(campaign=campaign)
    response = post(
        api_client,
        {
            "events": [
                event(campaign, 1, type="link_clicked", link=link.pk),
                event(
                    campaign,
                    2,
                    type="form_submitted",
                    form=form.pk,
                    data={"fields": {"q": "Price?"}},
                ),
            ]
        },
    )
    assert response.status_code == 201, response.json()
    assert Event.objects.get(external_id="evt-1").link == link
    submitted = Event.objects.get(external_id="evt-2")
    assert (submitted.form, submitted.data) == (form, {"fields": {"q": "Price?"}})


def test_the_hook_reports_how_many_runs_the_events_started(api_client, campaign, monkeypatch):
    monkeypatch.setattr(
        "automations.services.runs_create_for_events",
        lambda *, account, events, events_are_new: [object() for _ in events for _ in range(2)],
    )
    response = post(api_client, {"events": [event(campaign, 1), event(campaign, 2)]})
    assert response.json()["runs"] == 4


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"email": "not-an-address"}, "email", "Enter a valid email address."),
        ({"type": "email_bounced"}, "type", '"email_bounced" is not a valid choice.'),
        ({"campaign": 999999}, "campaign", "Unknown campaign: no campaign 999999 in this account."),
        ({"event_id": ""}, "event_id", "This field may not be blank."),
        ({"data": "text"}, "data", 'Expected a dictionary of items but got type "str".'),
        ({"occurred_at": "soon"}, "occurred_at", "Datetime has wrong format."),
    ],
)
def test_a_bad_event_in_a_batch_gets_400_by_index_and_nothing_is_stored(
    api_client, campaign, change, field, message
):
    batch = {"events": [event(campaign, n) for n in range(3)] + [event(campaign, 3, **change)]}
    response = post(api_client, batch)

    assert response.status_code == 400
    errors = response.json()["events"]
    assert list(errors) == ["3"]
    assert message in errors["3"][field][0]
    assert not Event.objects.exists() and not Contact.objects.exists()


def test_a_missing_field_gets_400(api_client, campaign):
    body = event(campaign)
    del body["event_id"], body["email"]
    response = post(api_client, body)
    assert response.status_code == 400
    assert response.json() == {
        "event_id": ["This field is required."],
        "email": ["This field is required."],
    }


def test_a_single_bad_event_gets_its_field_messages(api_client, campaign):
    response = post(api_client, event(campaign, email="nope"))
    assert response.status_code == 400
    assert response.json() == {"email": ["Enter a valid email address."]}


def test_an_oversized_batch_gets_400_and_nothing_is_stored(api_client, campaign):
    response = post(api_client, {"events": [event(campaign, n) for n in range(1001)]})
    assert response.status_code == 400
    assert response.json() == {"events": ["Send at most 1000 events in one batch."]}
    assert not Event.objects.exists()


def test_an_empty_batch_gets_400(api_client):
    response = post(api_client, {"events": []})
    assert response.status_code == 400
    assert response.json() == {"events": ["Send at least one event."]}


def test_another_accounts_ids_get_400_and_nothing_is_stored(api_client, campaign, other_account):
    theirs = CampaignFactory(account=other_account)
    their_link = TrackedLinkFactory(campaign=theirs)
    their_form = FormFactory(campaign=theirs)
    batch = {
        "events": [
            event(campaign, 0),
            event(campaign, 1, campaign=theirs.pk),
            event(campaign, 2, type="link_clicked", link=their_link.pk),
            event(campaign, 3, type="form_submitted", form=their_form.pk),
        ]
    }
    response = post(api_client, batch)

    assert response.status_code == 400
    assert response.json() == {
        "events": {
            "1": {"campaign": [f"Unknown campaign: no campaign {theirs.pk} in this account."]},
            "2": {"link": [f"Unknown link: no link {their_link.pk} in this account."]},
            "3": {"form": [f"Unknown form: no form {their_form.pk} in this account."]},
        }
    }
    assert not Event.objects.exists() and not Contact.objects.exists()


def test_a_link_of_another_campaign_gets_400(api_client, account, campaign):
    link = TrackedLinkFactory(campaign=CampaignFactory(account=account))
    response = post(api_client, event(campaign, type="link_clicked", link=link.pk))
    assert response.status_code == 400
    assert response.json() == {"link": ["This link belongs to another campaign."]}
    assert not Event.objects.exists()


def test_without_an_api_key_the_answer_is_401(campaign):
    response = post(APIClient(), event(campaign))
    assert response.status_code == 401
    assert not Event.objects.exists()


def test_a_wrong_api_key_is_401(campaign):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer emh_not-a-key")
    assert post(client, event(campaign)).status_code == 401


def test_a_signed_in_session_is_not_an_api_key(marketer_client, campaign):
    response = marketer_client.post(URL, event(campaign), content_type="application/json")
    assert response.status_code in (401, 403)
    assert not Event.objects.exists()


def test_every_event_type_is_accepted(api_client, campaign):
    batch = {"events": [event(campaign, n, type=t) for n, t in enumerate(EventType.values)]}
    response = post(api_client, batch)
    assert response.status_code == 201
    assert set(Event.objects.values_list("type", flat=True)) == set(EventType.values)


def test_the_openapi_schema_documents_the_events_endpoint(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    operation = schema["paths"]["/api/v1/events/"]["post"]
    assert operation["operationId"] == "events_create"
    assert "201" in operation["responses"]
    assert {"EventInput", "EventBatchInput", "EventIngestOutput"} <= set(
        schema["components"]["schemas"]
    )
    event_input = schema["components"]["schemas"]["EventInput"]
    assert set(event_input["required"]) == {"event_id", "type", "campaign", "email"}
