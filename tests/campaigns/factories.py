"""factory_boy factories for campaigns, contacts, tracked links, forms and events."""

import factory

from campaigns.models import Campaign, Contact, EmailSender, Event, EventType, Form, TrackedLink
from tests.factories import AccountFactory


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Campaign {n}")


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    account = factory.SubFactory(AccountFactory)
    email = factory.Sequence(lambda n: f"person{n}@example.com")
    first_name = "Pat"
    last_name = factory.Sequence(lambda n: f"Person{n}")


class TrackedLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TrackedLink

    campaign = factory.SubFactory(CampaignFactory)
    account = factory.SelfAttribute("campaign.account")
    name = factory.Sequence(lambda n: f"Link {n}")
    url = factory.Sequence(lambda n: f"https://www.example.com/page-{n}")


class FormFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Form

    campaign = factory.SubFactory(CampaignFactory)
    account = factory.SelfAttribute("campaign.account")
    name = factory.Sequence(lambda n: f"Form {n}")
    published = True


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    campaign = factory.SubFactory(CampaignFactory)
    account = factory.SelfAttribute("campaign.account")
    contact = factory.SubFactory(ContactFactory, account=factory.SelfAttribute("..account"))
    type = EventType.EMAIL_OPENED
    external_id = factory.Sequence(lambda n: f"factory-event-{n}")


class EmailSenderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EmailSender
        django_get_or_create = ("account",)

    account = factory.SubFactory(AccountFactory)
    from_name = factory.LazyAttribute(lambda o: f"{o.account.name} News")
    from_email = factory.LazyAttribute(lambda o: f"news@{o.account.slug}.example")
