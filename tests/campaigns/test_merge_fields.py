"""Merge fields: one syntax for sendouts and automation descriptions, a fallback for an
empty value, and an unknown field refused before anything is sent."""

import pytest
from django.core.exceptions import ValidationError

from automations.actions import description_render
from automations.models import AutomationType
from automations.services import runs_create_for_events
from campaigns import imports, merge_fields, sendouts
from campaigns.models import Channel, EventType, Sendout
from tests.automations.factories import AutomationFactory
from tests.campaigns.factories import CampaignFactory, ContactFactory, EventFactory

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

FACTS = {"first_name": "Åse", "last_name": "", "name": "Åse", "company": "Berg & Søn <AS>"}


def test_fields_are_filled_with_a_fallback_for_empty_values_and_html_escaped():
    text = "Hi {first_name|there}, {last_name|friend} of {company}!"

    assert merge_fields.render(text, facts=FACTS) == "Hi Åse, friend of Berg & Søn <AS>!"
    assert merge_fields.render(text, facts=FACTS, escape=__import__("html").escape) == (
        "Hi Åse, friend of Berg &amp; Søn &lt;AS&gt;!"
    )


def test_braces_that_are_not_fields_stay_as_typed_and_break_nothing():
    text = "p { color: red } {0} {x.y} { first_name } a { b {unknown} }"

    assert merge_fields.render(text, facts=FACTS) == text


def test_unknown_fields_are_named_with_a_suggestion():
    unknown = merge_fields.fields_unknown(
        "Hi {frist_name}, {first_name} {frist_name} {zzz|x}", known=merge_fields.SENDOUT_FIELDS
    )
    message = merge_fields.unknown_fields_message(unknown, known=merge_fields.SENDOUT_FIELDS)

    assert unknown == ["frist_name", "zzz"]
    assert "{frist_name} (did you mean {first_name}?)" in message
    assert "{zzz}" in message and "{unsubscribe}" in message


@pytest.fixture
def recipients(account):
    return imports.recipient_list_create(account=account, name="Readers")


def test_a_sendout_naming_an_unknown_field_is_refused_on_save(account, recipients):
    campaign = CampaignFactory(account=account)

    with pytest.raises(ValidationError) as refused:
        sendouts.sendout_create(
            account=account,
            campaign=campaign,
            recipient_list=recipients,
            channel=Channel.EMAIL,
            subject="News for {compnay}",
            body="<p>Hi {first_nme}</p>",
        )

    errors = refused.value.message_dict
    assert "did you mean {company}?" in errors["subject"][0]
    assert "did you mean {first_name}?" in errors["body"][0]
    assert not Sendout.objects.exists()


def test_a_link_address_cannot_differ_per_recipient(account, recipients):
    with pytest.raises(ValidationError) as refused:
        sendouts.sendout_create(
            account=account,
            campaign=CampaignFactory(account=account),
            recipient_list=recipients,
            channel=Channel.EMAIL,
            subject="x",
            body='<a href="https://www.example.com/?who={email}">Me</a>',
        )

    assert "cannot hold merge fields" in refused.value.message_dict["body"][0]


def test_the_sendout_form_shows_the_unknown_field_as_a_form_error(
    marketer_client, account, recipients
):
    response = marketer_client.post(
        "/sendouts/new/",
        {
            "campaign": CampaignFactory(account=account).pk,
            "recipient_list": recipients.pk,
            "channel": "email",
            "subject": "Hi",
            "body": "<p>Dear {frist_name}</p>",
        },
    )

    assert response.status_code == 200
    assert "did you mean {first_name}?" in response.content.decode()
    assert not Sendout.objects.exists()


def test_an_automation_description_uses_the_same_fields_and_fallbacks(account):
    campaign = CampaignFactory(account=account, name="Fair")
    contact = ContactFactory(
        account=account,
        first_name="",
        last_name="Berg",
        company_name="Berg AS",
        superoffice_person_id=3,
    )
    AutomationFactory(
        campaign=campaign,
        account=account,
        type=AutomationType.CREATE_TASK,
        trigger_event_type=EventType.EMAIL_OPENED,
    )
    event = EventFactory(campaign=campaign, contact=contact, type=EventType.EMAIL_OPENED)
    (run,) = runs_create_for_events(account=account, events=[event])

    text = description_render(
        template="Call {first_name|the reader} {last_name} at {company} about {campaign}", run=run
    )

    assert text == "Call the reader Berg at Berg AS about Fair"


def test_the_automation_form_refuses_an_unknown_field(marketer_client, account):
    campaign = CampaignFactory(account=account)

    response = marketer_client.post(
        f"/campaigns/{campaign.pk}/automations/new/",
        {
            "name": "Call",
            "type": AutomationType.NOTIFY_SALES_REP,
            "trigger_event_type": EventType.EMAIL_OPENED,
            "activity_type_id": "1",
            "description": "{emial} opened",
        },
    )

    assert response.status_code == 200
    assert "did you mean {email}?" in response.content.decode()
