"""Reads for link actions: a tracked link's actions (the automations it triggers), the
campaign's automations that fire on any of its links, the link's clicks (people's and
filtered ones) and the runs its clicks caused. Account-scoped."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404

from campaigns.models import Event, EventType, TrackedLink

from .models import Automation, Run

CLICK_TYPES = [EventType.LINK_CLICKED, EventType.SMS_LINK_CLICKED]


def link_get(*, account, link_id: int) -> TrackedLink:
    return get_object_or_404(
        TrackedLink.objects.select_related("campaign"), account=account, pk=link_id
    )


def link_actions(*, account, link: TrackedLink) -> QuerySet[Automation]:
    return (
        Automation.objects.filter(account=account, trigger_link=link, deleted_at__isnull=True)
        .annotate(run_count=Count("runs"))
        .order_by("created_at", "id")
    )


def campaign_any_link_automations(*, account, link: TrackedLink) -> QuerySet[Automation]:
    """The campaign's automations that fire on a click of any of its links (no link chosen):
    a click on this link runs them too, besides the link's own actions."""
    return (
        Automation.objects.filter(
            account=account,
            campaign_id=link.campaign_id,
            trigger_event_type__in=CLICK_TYPES,
            trigger_link__isnull=True,
            deleted_at__isnull=True,
        )
        .annotate(run_count=Count("runs"))
        .order_by("name", "id")
    )


def link_action_get(*, account, link: TrackedLink, automation_id: int) -> Automation:
    return get_object_or_404(
        Automation.objects.select_related("campaign"),
        account=account,
        trigger_link=link,
        deleted_at__isnull=True,
        pk=automation_id,
    )


@dataclass
class LinkSummary:
    clicks: int = 0
    filtered: int = 0
    runs: dict[str, int] = field(default_factory=dict)
    actions: list[Automation] = field(default_factory=list)

    @property
    def human(self) -> int:
        return self.clicks - self.filtered

    @property
    def run_total(self) -> int:
        return sum(self.runs.values())


def link_summaries(*, account, links) -> dict[int, LinkSummary]:
    """Per link: clicks, filtered clicks, runs by status and actions; three queries."""
    ids = [link.pk for link in links]
    out = {link_id: LinkSummary() for link_id in ids}
    if not ids:
        return out
    for row in (
        Event.objects.filter(account=account, link_id__in=ids, type__in=CLICK_TYPES)
        .values("link_id")
        .annotate(n=Count("id"), filtered=Count("id", filter=Q(data__has_key="filtered")))
    ):
        out[row["link_id"]].clicks = row["n"]
        out[row["link_id"]].filtered = row["filtered"]
    for row in (
        Run.objects.filter(account=account, event__link_id__in=ids)
        .values("event__link_id", "status")
        .annotate(n=Count("id"))
    ):
        out[row["event__link_id"]].runs[row["status"]] = row["n"]
    for automation in Automation.objects.filter(
        account=account, trigger_link_id__in=ids, deleted_at__isnull=True
    ).order_by("created_at", "id"):
        out[automation.trigger_link_id].actions.append(automation)
    return out


def link_clicks(*, account, link: TrackedLink) -> QuerySet[Event]:
    return (
        Event.objects.filter(account=account, link=link, type__in=CLICK_TYPES)
        .select_related("contact")
        .order_by("-occurred_at", "-id")
    )


def link_runs(*, account, link: TrackedLink) -> QuerySet[Run]:
    return (
        Run.objects.filter(account=account, event__link=link)
        .select_related("automation", "contact", "event")
        .order_by("-created_at", "-id")
    )
