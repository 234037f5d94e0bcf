"""factory_boy factories for campaigns' rows the automation tests need, and automations."""

import factory
from django.utils import timezone

from automations.models import Automation, AutomationType
from campaigns.models import Campaign, Contact, Event, EventType, Form, TrackedLink
from tests.factories import AccountFactory


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Spring launch {n}")


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    account = factory.SubFactory(AccountFactory)
    email = factory.Sequence(lambda n: f"contact{n}@example.com")
    first_name = "Kari"
    last_name = factory.Sequence(lambda n: f"Nordmann{n}")


class TrackedLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TrackedLink

    campaign = factory.SubFactory(CampaignFactory)
    account = factory.LazyAttribute(lambda o: o.campaign.account)
    name = factory.Sequence(lambda n: f"Pricing page {n}")
    url = "https://example.com/pricing"


class FormFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Form

    campaign = factory.SubFactory(CampaignFactory)
    account = factory.LazyAttribute(lambda o: o.campaign.account)
    name = factory.Sequence(lambda n: f"Demo request {n}")


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    campaign = factory.SubFactory(CampaignFactory)
    account = factory.LazyAttribute(lambda o: o.campaign.account)
    contact = factory.SubFactory(ContactFactory, account=factory.SelfAttribute("..account"))
    type = EventType.EMAIL_OPENED
    occurred_at = factory.LazyFunction(timezone.now)
    external_id = factory.Sequence(lambda n: f"evt-{n}")


class AutomationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Automation

    campaign = factory.SubFactory(CampaignFactory)
    account = factory.LazyAttribute(lambda o: o.campaign.account)
    name = factory.Sequence(lambda n: f"Automation {n}")
    type = AutomationType.ADD_TO_SELECTION
    trigger_event_type = EventType.EMAIL_OPENED
    settings = factory.LazyFunction(lambda: {"selection_id": 1})


def run_in(account):
    """A run of a new automation of `account` (the isolation sweep's `run_id` maker)."""
    from automations.services import runs_create_for_events

    campaign = CampaignFactory(account=account)
    AutomationFactory(account=account, campaign=campaign)
    contact = ContactFactory(account=account, superoffice_person_id=1)
    event = EventFactory(account=account, campaign=campaign, contact=contact)
    (run,) = runs_create_for_events(account=account, events=[event])
    return run
