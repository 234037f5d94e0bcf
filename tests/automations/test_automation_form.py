"""Creating and editing automations: settings come from SuperOffice's lists (the simulator
over HTTP, cached), fields depend on the type, bad input is a form error."""

import pytest
from django.urls import reverse

from automations.models import Automation, AutomationType
from campaigns.models import EventType

from .factories import AutomationFactory, CampaignFactory, FormFactory, TrackedLinkFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(connected_account):
    return CampaignFactory(account=connected_account, name="Summer fair")


def _create_url(campaign):
    return reverse("automations:automation_create", kwargs={"campaign_id": campaign.id})


def test_the_form_offers_superoffice_lists_not_id_boxes(marketer_client, campaign):
    response = marketer_client.get(_create_url(campaign))

    html = response.content.decode()
    assert response.status_code == 200
    for name in (
        "Trade fair",
        "Hot",
        "Phone call",
        "Webinars",
        "Partner summit",
        "Key accounts",
        "Sam Seller",
    ):
        assert name in html, name
    assert 'type="number"' not in html
    assert '<select name="source_id"' in html


def test_lists_are_cached_and_refreshed_on_request(marketer_client, campaign, sim):
    from crm.models import CrmCall

    marketer_client.get(_create_url(campaign))
    calls_after_first = CrmCall.objects.filter(operation="GetList").count()
    marketer_client.get(_create_url(campaign))
    assert CrmCall.objects.filter(operation="GetList").count() == calls_after_first

    response = marketer_client.post(_create_url(campaign), {"refresh_lists": "1", "name": "Kept"})
    assert response.status_code == 200
    assert CrmCall.objects.filter(operation="GetList").count() == 2 * calls_after_first
    assert b'value="Kept"' in response.content


def test_a_marketer_creates_a_sale_automation_narrowed_to_a_link(marketer_client, campaign):
    link = TrackedLinkFactory(campaign=campaign, name="Book a demo")

    response = marketer_client.post(
        _create_url(campaign),
        {
            "name": "Sale on demo click",
            "type": AutomationType.CREATE_SALE,
            "trigger_event_type": EventType.LINK_CLICKED,
            "trigger_link": link.id,
            "source_id": "2",
            "rating_id": "1",
            "description": "Clicked {link}",
            "owner_id": "",
            "extra_selection_id": "4",
            "once_per_contact": "on",
            "is_enabled": "on",
            # A field of another type is ignored, not stored.
            "project_id": "3",
        },
    )

    assert response.status_code == 302
    automation = Automation.objects.get(name="Sale on demo click")
    assert automation.account == campaign.account
    assert automation.trigger_link == link
    assert automation.once_per_contact is True
    assert automation.settings == {
        "source_id": 2,
        "rating_id": 1,
        "description": "Clicked {link}",
        "extra_selection_id": 4,
    }


def test_missing_settings_of_the_type_are_form_errors(marketer_client, campaign):
    response = marketer_client.post(
        _create_url(campaign),
        {
            "name": "Task",
            "type": AutomationType.CREATE_TASK,
            "trigger_event_type": EventType.EMAIL_OPENED,
            "is_enabled": "on",
        },
    )

    assert response.status_code == 200
    assert response.context["form"].errors.keys() >= {"activity_type_id", "description"}
    assert not Automation.objects.exists()


@pytest.mark.parametrize(
    "bad",
    [
        {"source_id": "999"},
        {"source_id": "abc"},
        {"trigger_event_type": "teleported"},
        {"type": "delete_everything"},
    ],
)
def test_values_not_in_the_lists_are_form_errors_not_server_errors(marketer_client, campaign, bad):
    data = {
        "name": "X",
        "type": AutomationType.CREATE_SALE,
        "trigger_event_type": EventType.EMAIL_OPENED,
        "source_id": "1",
        "rating_id": "1",
        "description": "d",
        "is_enabled": "on",
        **bad,
    }

    response = marketer_client.post(_create_url(campaign), data)

    assert response.status_code == 200
    assert not Automation.objects.exists()


def test_a_link_or_form_of_another_campaign_cannot_be_chosen(marketer_client, campaign):
    foreign_link = TrackedLinkFactory(campaign=CampaignFactory(account=campaign.account))
    foreign_form = FormFactory(campaign=CampaignFactory(account=campaign.account))

    for field, value, event in (
        ("trigger_link", foreign_link.id, EventType.LINK_CLICKED),
        ("trigger_form", foreign_form.id, EventType.FORM_SUBMITTED),
    ):
        response = marketer_client.post(
            _create_url(campaign),
            {
                "name": "X",
                "type": AutomationType.ADD_TO_SELECTION,
                "trigger_event_type": event,
                "selection_id": "1",
                field: value,
                "is_enabled": "on",
            },
        )
        assert field in response.context["form"].errors
    assert not Automation.objects.exists()


def test_editing_shows_and_saves_the_current_settings(marketer_client, campaign):
    automation = AutomationFactory(
        account=campaign.account,
        campaign=campaign,
        type=AutomationType.SET_INTEREST,
        settings={"interest_ids": [1, 3]},
    )
    url = reverse("automations:automation_edit", kwargs={"automation_id": automation.id})

    form = marketer_client.get(url).context["form"]
    assert form.initial["interest_ids"] == [1, 3]

    response = marketer_client.post(
        url,
        {
            "name": "Likes webinars",
            "type": AutomationType.SET_INTEREST,
            "trigger_event_type": EventType.FORM_SUBMITTED,
            "interest_ids": ["2"],
        },
    )
    assert response.status_code == 302
    automation.refresh_from_db()
    assert (automation.name, automation.settings, automation.is_enabled) == (
        "Likes webinars",
        {"interest_ids": [2]},
        False,
    )


def test_without_a_superoffice_connection_the_form_says_so(client, signed_in, other_account):
    from tests.factories import MembershipFactory, UserFactory

    user = MembershipFactory(account=other_account, user=UserFactory(username="otto")).user
    signed_in(client, user, other_account)
    campaign = CampaignFactory(account=other_account)

    response = client.get(_create_url(campaign))

    assert response.status_code == 200
    assert b"could not be loaded" in response.content


def test_only_types_whose_settings_the_form_knows_can_be_chosen(marketer_client, campaign):
    from automations.forms import TYPE_FIELDS

    choices = marketer_client.get(_create_url(campaign)).context["form"].fields["type"].choices

    assert {value for value, _ in choices} == set(TYPE_FIELDS)
