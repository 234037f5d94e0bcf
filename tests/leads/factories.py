"""Factories for the panels' rows, and a way to hold a panel token in a test."""

import factory

from automations.models import Run, RunStatus
from campaigns.models import Event
from campaigns.services import events_ingest
from leads.auth import PanelUser, panel_token_issue
from leads.models import PanelSettings
from tests.automations import factories as automation_factories
from tests.automations.factories import (  # noqa: F401 - re-exported for the panel tests
    AutomationFactory,
    CampaignFactory,
    ContactFactory,
    FormFactory,
    TrackedLinkFactory,
)
from tests.factories import AccountFactory


class EventFactory(automation_factories.EventFactory):
    """An event stored the way every event comes in: through events_ingest, which keeps
    the contact's engagement counts the Lead Report reads and hands it to the automations."""

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        account = kwargs.pop("account")
        source = kwargs.pop("source", Event.Source.API)
        campaign = kwargs.pop("campaign")
        if campaign.account_id != account.pk:
            # Given only an account, the parent factory made a campaign of its own account.
            campaign = CampaignFactory(account=account)
        item = {
            "event_id": kwargs.pop("external_id"),
            "type": kwargs.pop("type"),
            "campaign": campaign,
            "contact": kwargs.pop("contact"),
            "occurred_at": kwargs.pop("occurred_at"),
            "link": kwargs.pop("link", None),
            "form": kwargs.pop("form", None),
            "data": kwargs.pop("data", {}),
        }
        if kwargs:
            raise TypeError(f"EventFactory cannot ingest {sorted(kwargs)}")
        return events_ingest(account=account, events=[item], source=source).stored[0]


SUPEROFFICE_HOST = "https://online.superoffice.com"


class PanelSettingsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PanelSettings
        django_get_or_create = ("account",)

    account = factory.SubFactory(AccountFactory)
    context_identifier = factory.Sequence(lambda n: f"Cust{10000 + n}")
    frame_ancestors = SUPEROFFICE_HOST


def token_for(settings: PanelSettings, *, associate_id: int = 2, groups=(1,), method="oidc"):
    return panel_token_issue(
        user=PanelUser(
            account_id=settings.account_id,
            context_identifier=settings.context_identifier,
            associate_id=associate_id,
            name="Sam Seller",
            group_ids=None if groups is None else tuple(groups),
            method=method,
        )
    )


def waiting_runs(account, contact, n=1, *, automation=None):
    """n runs of the contact paused for a match, as the engine leaves them."""
    automation = automation or AutomationFactory(
        account=account, campaign=CampaignFactory(account=account)
    )
    events = [
        EventFactory(
            account=account,
            campaign=automation.campaign,
            contact=contact,
            type=automation.trigger_event_type,
        )
        for _ in range(n)
    ]
    # Ingest wrote the runs with the events; set them waiting whatever the account's
    # auto-match switch, as the engine leaves them when no person is found.
    runs = list(Run.objects.filter(automation=automation, event__in=events).order_by("id"))
    from django.utils import timezone

    Run.objects.filter(id__in=[r.id for r in runs]).update(
        status=RunStatus.WAITING_FOR_MATCH, waiting_since=timezone.now()
    )
    return runs
