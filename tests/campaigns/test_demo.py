"""The embedded run's demo data: campaigns, links, forms, contacts and events, once."""

import pytest
from django.apps import apps

from campaigns.models import Campaign, Contact, Event, EventType, Form, TrackedLink

from .factories import CampaignFactory

pytestmark = pytest.mark.django_db


def seed(account):
    apps.get_app_config("campaigns").demo_seed(account=account, netserver_url="")


def test_the_demo_has_campaigns_with_links_forms_contacts_and_events(account):
    seed(account)

    assert Campaign.objects.filter(account=account).count() == 3
    assert TrackedLink.objects.filter(account=account).count() >= 3
    assert Form.objects.filter(account=account).count() == 3
    assert Contact.objects.filter(account=account).count() >= 24
    types = set(Event.objects.filter(account=account).values_list("type", flat=True))
    assert {
        EventType.EMAIL_SENT,
        EventType.EMAIL_OPENED,
        EventType.LINK_CLICKED,
        EventType.FORM_SUBMITTED,
    } <= types
    for click in Event.objects.filter(account=account, type=EventType.LINK_CLICKED):
        assert click.link.campaign_id == click.campaign_id


def test_seeding_again_adds_nothing(account):
    seed(account)
    counts = (Campaign.objects.count(), Contact.objects.count(), Event.objects.count())
    seed(account)
    assert (Campaign.objects.count(), Contact.objects.count(), Event.objects.count()) == counts


def test_an_account_with_its_own_campaigns_gets_no_demo(account):
    CampaignFactory(account=account, name="Real work")
    seed(account)
    assert list(Campaign.objects.values_list("name", flat=True)) == ["Real work"]
    assert not Event.objects.exists()
