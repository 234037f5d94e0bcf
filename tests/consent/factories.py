"""Factories of the consent tests."""

import factory
from django.utils import timezone

from campaigns.models import Contact
from consent.models import ConsentSyncCycle
from tests.factories import AccountFactory


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    account = factory.SubFactory(AccountFactory)
    email = factory.Sequence(lambda n: f"contact{n}@example.com")
    first_name = "Kari"
    last_name = "Nordmann"


class CycleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ConsentSyncCycle

    account = factory.SubFactory(AccountFactory)
    kind = ConsentSyncCycle.Kind.INCREMENTAL
    status = ConsentSyncCycle.Status.SUCCEEDED
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyFunction(timezone.now)
    duration_ms = 1200
    contacts_checked = 10
    written_to_superoffice = 2
    written_to_hub = 1
