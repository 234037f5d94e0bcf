"""Factories for the panels' rows, and a way to hold a panel token in a test."""

import factory

from automations import services as automation_services
from automations.models import Run, RunStatus
from leads.auth import PanelUser, panel_token_issue
from leads.models import PanelSettings
from tests.automations.factories import (  # noqa: F401 - re-exported for the panel tests
    AutomationFactory,
    CampaignFactory,
    ContactFactory,
    EventFactory,
    FormFactory,
    TrackedLinkFactory,
)
from tests.factories import AccountFactory

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
    runs = automation_services.runs_create_for_events(account=account, events=events)
    from django.utils import timezone

    Run.objects.filter(id__in=[r.id for r in runs]).update(
        status=RunStatus.WAITING_FOR_MATCH, waiting_since=timezone.now()
    )
    return runs
