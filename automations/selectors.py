"""Reads of the automations app. Every function takes the account and scopes to it."""

from __future__ import annotations

from django.db.models import Count, Min, QuerySet
from django.shortcuts import get_object_or_404

from campaigns.models import Campaign, Contact

from .models import Automation, AutomationSettings, Run, RunStatus


def campaign_get(*, account, campaign_id: int) -> Campaign:
    return get_object_or_404(Campaign, account=account, pk=campaign_id)


def contact_get(*, account, contact_id: int) -> Contact:
    return get_object_or_404(Contact, account=account, pk=contact_id)


def automations_of_campaign(*, account, campaign) -> QuerySet[Automation]:
    return (
        Automation.objects.filter(account=account, campaign=campaign, deleted_at__isnull=True)
        .select_related("trigger_link", "trigger_form")
        .annotate(run_count=Count("runs"))
        .order_by("name", "id")
    )


def automation_get(*, account, automation_id: int, include_deleted: bool = False) -> Automation:
    qs = Automation.objects.select_related("campaign").filter(account=account)
    if not include_deleted:
        qs = qs.filter(deleted_at__isnull=True)
    return get_object_or_404(qs, pk=automation_id)


def runs_list(
    *, account, status: str | None = None, campaign=None, automation=None, contact=None
) -> QuerySet[Run]:
    qs = Run.objects.filter(account=account).select_related(
        "automation", "automation__campaign", "event", "event__link", "event__form", "contact"
    )
    if status:
        qs = qs.filter(status=status)
    if campaign is not None:
        qs = qs.filter(automation__campaign=campaign)
    if automation is not None:
        qs = qs.filter(automation=automation)
    if contact is not None:
        qs = qs.filter(contact=contact)
    return qs.order_by("-created_at", "-id")


def run_get(*, account, run_id: int) -> Run:
    return get_object_or_404(
        Run.objects.select_related(
            "automation",
            "automation__campaign",
            "event",
            "event__campaign",
            "event__link",
            "event__form",
            "contact",
        ),
        account=account,
        pk=run_id,
    )


def run_status_counts(*, account) -> dict[str, int]:
    rows = Run.objects.filter(account=account).values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}


def crm_calls_for_runs(*, account, runs) -> dict[str, list]:
    """The CRM calls each run made, found by the run key the client logs as correlation.

    One query for the whole page.
    """
    keys = [r.key for r in runs]
    if not keys:
        return {}
    try:
        from crm.models import CrmCall
    except ImportError:  # the call log is not installed in this build
        return {}
    calls: dict[str, list] = {}
    rows = CrmCall.objects.filter(account=account, correlation__in=keys)
    for call in rows.order_by("started_at", "id"):
        calls.setdefault(call.correlation, []).append(call)
    return calls


def queue_contacts(*, account) -> QuerySet[Contact]:
    """Contacts with runs waiting for a SuperOffice person, the longest waiting first."""
    return (
        Contact.objects.filter(account=account, automation_runs__status=RunStatus.WAITING_FOR_MATCH)
        .annotate(
            waiting_runs=Count("automation_runs"),
            waiting_since=Min("automation_runs__waiting_since"),
        )
        .order_by("waiting_since", "id")
    )


def waiting_runs_of_contacts(*, account, contacts) -> dict[int, list[Run]]:
    ids = [c.id for c in contacts]
    out: dict[int, list[Run]] = {}
    for run in (
        Run.objects.filter(account=account, contact_id__in=ids, status=RunStatus.WAITING_FOR_MATCH)
        .select_related("automation", "event")
        .order_by("waiting_since", "id")
    ):
        out.setdefault(run.contact_id, []).append(run)
    return out


def automation_settings_of(*, account) -> AutomationSettings | None:
    return AutomationSettings.objects.filter(account=account).first()


def crm_paused_until(*, account_id: int):
    """Until when the account's CRM work is held because SuperOffice refused its
    configuration (see services.account_crm_pause); None when it is not held. Other apps'
    CRM work (the consent pushes) holds to the same pause."""
    return (
        AutomationSettings.objects.filter(account_id=account_id, crm_paused_at__isnull=False)
        .values_list("crm_paused_until", flat=True)
        .first()
    )
