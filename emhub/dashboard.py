"""The dashboard's figures: one read per area, each a single aggregate query.

The dashboard is the one page that looks across apps, so it reads their models here
rather than teaching every app about the dashboard.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from automations.models import Run, RunStatus
from campaigns.models import Event

DAYS = 30


@dataclass
class DashboardFigures:
    events_total: int
    events_chart: dict
    runs_by_status: dict[str, int]
    waiting_contacts: int


def dashboard_figures(*, account) -> DashboardFigures:
    today = timezone.localdate()
    since = today - timedelta(days=DAYS - 1)
    per_day = dict(
        Event.objects.filter(account=account, occurred_at__date__gte=since)
        .annotate(day=TruncDate("occurred_at"))
        .values_list("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    days = [since + timedelta(days=i) for i in range(DAYS)]
    runs_by_status = dict(
        Run.objects.filter(account=account)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    waiting_contacts = (
        Run.objects.filter(account=account, status=RunStatus.WAITING_FOR_MATCH)
        .values("contact_id")
        .distinct()
        .count()
    )
    return DashboardFigures(
        events_total=sum(per_day.values()),
        events_chart={
            "labels": [d.strftime("%d %b") for d in days],
            "datasets": [{"label": "Events", "data": [per_day.get(d, 0) for d in days]}],
        },
        runs_by_status={label: runs_by_status.get(value, 0) for value, label in RunStatus.choices},
        waiting_contacts=waiting_contacts,
    )
