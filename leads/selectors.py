"""Reads for the panels. Every query is scoped to the account and bounded per page:
aggregates and window functions in the database, one query per kind of row a page shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.functions import Coalesce, RowNumber, TruncMonth
from django.utils import timezone

from automations.models import Run, RunStatus
from campaigns.models import Contact, Event, EventType
from emhub.models import Account

from .models import LeadDecision, PanelSettings

PAGE_SIZE = 20
TIMELINE_PAGE_SIZE = 25
ACTIVITY_PER_LEAD = 5
ENGAGED_TYPES = [
    EventType.FORM_SUBMITTED,
    EventType.LINK_CLICKED,
    EventType.SMS_LINK_CLICKED,
    EventType.LANDING_PAGE_VISITED,
]


def panel_settings_for(*, account: Account) -> PanelSettings:
    settings, _ = PanelSettings.objects.get_or_create(account=account)
    return settings


def panel_settings_by_key(*, panel_key: str) -> PanelSettings | None:
    return PanelSettings.objects.select_related("account").filter(panel_key=panel_key).first()


def _paginate(queryset, number, size: int) -> Page:
    return Paginator(queryset, size).get_page(number)


# -- Manage Automations Queue -------------------------------------------------------------


@dataclass
class QueueEntry:
    contact: Contact
    waiting: int
    waiting_since: object
    runs: list[Run]


def queue_page(*, account: Account, page: str | int | None = 1, search: str = "") -> Page:
    """Contacts with runs waiting for a SuperOffice person, longest waiting first.

    Three queries whatever the size: count, the page of contacts with their aggregates,
    and the waiting runs of that page with what they belong to.
    """
    waiting = Run.objects.filter(
        account=account, contact=OuterRef("pk"), status=RunStatus.WAITING_FOR_MATCH
    )
    contacts = (
        Contact.objects.filter(account=account, superoffice_person_id__isnull=True)
        .filter(Exists(waiting))
        .annotate(
            waiting_count=Subquery(
                waiting.order_by().values("contact").annotate(n=Count("id")).values("n")[:1]
            ),
            waiting_since=Subquery(
                waiting.order_by()
                .values("contact")
                .annotate(m=Min("waiting_since"))
                .values("m")[:1]
            ),
        )
        .order_by(F("waiting_since").asc(nulls_last=True), "id")
    )
    if search:
        contacts = contacts.filter(
            Q(email__icontains=search)
            | Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
            | Q(company_name__icontains=search)
        )
    result = _paginate(contacts, page, PAGE_SIZE)
    ids = [c.id for c in result.object_list]
    runs_by_contact: dict[int, list[Run]] = {i: [] for i in ids}
    for run in (
        Run.objects.filter(account=account, contact_id__in=ids, status=RunStatus.WAITING_FOR_MATCH)
        .select_related("automation", "automation__campaign", "event", "event__link", "event__form")
        .order_by("waiting_since", "id")
    ):
        runs_by_contact[run.contact_id].append(run)
    result.object_list = [
        QueueEntry(
            contact=c,
            waiting=c.waiting_count or 0,
            waiting_since=c.waiting_since,
            runs=runs_by_contact[c.id],
        )
        for c in result.object_list
    ]
    return result


def queue_contact(*, account: Account, contact_id: int) -> Contact | None:
    return Contact.objects.filter(account=account, pk=contact_id).first()


def queue_contacts_on_page(*, account: Account, contact_ids: list[int]) -> list[Contact]:
    """Contacts still waiting among the given ids (a bulk match acts on what the rep saw)."""
    waiting = Run.objects.filter(contact=OuterRef("pk"), status=RunStatus.WAITING_FOR_MATCH)
    return list(
        Contact.objects.filter(
            account=account, pk__in=contact_ids[: PAGE_SIZE * 5], superoffice_person_id__isnull=True
        ).filter(Exists(waiting))
    )


# -- Lead Report --------------------------------------------------------------------------


def _leads(account: Account) -> QuerySet[Contact]:
    engaged = Event.objects.filter(account=account, contact=OuterRef("pk"), type__in=ENGAGED_TYPES)
    waiting = Run.objects.filter(
        account=account, contact=OuterRef("pk"), status=RunStatus.WAITING_FOR_MATCH
    )
    decided = LeadDecision.objects.filter(
        account=account,
        contact=OuterRef("pk"),
        outcome__in=[LeadDecision.Outcome.REJECTED, LeadDecision.Outcome.DISMISSED],
    )
    events = Event.objects.filter(account=account, contact=OuterRef("pk")).order_by()
    return (
        Contact.objects.filter(account=account, superoffice_person_id__isnull=True)
        .filter(Exists(engaged) | Exists(waiting))
        .exclude(Exists(decided))
        .annotate(
            last_activity=Subquery(events.order_by("-occurred_at").values("occurred_at")[:1]),
            lead_since=Coalesce(
                Subquery(engaged.order_by("occurred_at").values("occurred_at")[:1]),
                "created_at",
            ),
            engagement=Subquery(
                engaged.order_by().values("contact").annotate(n=Count("id")).values("n")[:1]
            ),
            waiting_count=Subquery(
                waiting.order_by().values("contact").annotate(n=Count("id")).values("n")[:1]
            ),
        )
    )


def lead_report_page(
    *,
    account: Account,
    flag_after_days: int,
    page: str | int | None = 1,
    flagged_only: bool = False,
) -> Page:
    """Contacts not in SuperOffice that engaged, newest and most engaged first, each with
    its latest activity; leads older than ``flag_after_days`` are flagged."""
    flag_before = timezone.now() - timedelta(days=flag_after_days)
    leads = _leads(account)
    if flagged_only:
        leads = leads.filter(lead_since__lt=flag_before)
    leads = leads.order_by(
        F("last_activity").desc(nulls_last=True),
        F("engagement").desc(nulls_last=True),
        "-id",
    )
    result = _paginate(leads, page, PAGE_SIZE)
    ids = [c.id for c in result.object_list]
    activity: dict[int, list[Event]] = {i: [] for i in ids}
    if ids:
        ranked = (
            Event.objects.filter(account=account, contact_id__in=ids)
            .annotate(
                rank=Window(
                    RowNumber(), partition_by=[F("contact_id")], order_by=F("occurred_at").desc()
                )
            )
            .filter(rank__lte=ACTIVITY_PER_LEAD)
            .select_related("campaign", "link", "form")
            .order_by("contact_id", "-occurred_at")
        )
        for event in ranked:
            activity[event.contact_id].append(event)
    for contact in result.object_list:
        contact.activity = activity[contact.id]
        contact.is_flagged = contact.lead_since is not None and contact.lead_since < flag_before
    return result


def lead_flagged_count(*, account: Account, flag_after_days: int) -> int:
    flag_before = timezone.now() - timedelta(days=flag_after_days)
    return _leads(account).filter(lead_since__lt=flag_before).count()


def lead_contact(*, account: Account, contact_id: int) -> Contact | None:
    return Contact.objects.filter(
        account=account, pk=contact_id, superoffice_person_id__isnull=True
    ).first()


# -- Timeline -----------------------------------------------------------------------------


def timeline_page(
    *, account: Account, person_id: int, page: str | int | None = 1, event_type: str = ""
) -> tuple[Page, dict]:
    """Every interaction of the contacts matched to a SuperOffice person, newest first, and
    their activity per month over the last year as chart data."""
    contact_ids = Contact.objects.filter(account=account, superoffice_person_id=person_id).values(
        "id"
    )
    events = Event.objects.filter(account=account, contact_id__in=contact_ids)
    if event_type in EventType.values:
        events = events.filter(type=event_type)
    listed = events.select_related("campaign", "link", "form", "contact").order_by(
        "-occurred_at", "-id"
    )
    result = _paginate(listed, page, TIMELINE_PAGE_SIZE)
    since = (timezone.now() - timedelta(days=365)).replace(day=1, hour=0, minute=0, second=0)
    per_month = (
        events.filter(occurred_at__gte=since)
        .annotate(month=TruncMonth("occurred_at"))
        .values("month")
        .annotate(n=Count("id"))
        .order_by("month")
    )
    counts = {row["month"].strftime("%Y-%m"): row["n"] for row in per_month}
    labels, cursor = [], since
    while cursor <= timezone.now():
        labels.append(cursor.strftime("%Y-%m"))
        cursor = (cursor + timedelta(days=32)).replace(day=1)
    chart = {
        "labels": labels,
        "datasets": [{"label": "Interactions", "data": [counts.get(m, 0) for m in labels]}],
    }
    return result, chart


# -- Event details ------------------------------------------------------------------------


def runs_for_crm_object(*, account: Account, object_type: str, object_id: int) -> list[Run]:
    """The runs that created a SuperOffice sale or appointment, with their events."""
    return list(
        Run.objects.filter(account=account, crm_object_type=object_type, crm_object_id=object_id)
        .select_related(
            "automation",
            "automation__campaign",
            "event",
            "event__campaign",
            "event__link",
            "event__form",
            "contact",
        )
        .order_by("-created_at")[:10]
    )


def last_activity_for(*, account: Account, contact_ids: list[int]) -> dict[int, object]:
    rows = (
        Event.objects.filter(account=account, contact_id__in=contact_ids)
        .values("contact_id")
        .annotate(last=Max("occurred_at"))
    )
    return {r["contact_id"]: r["last"] for r in rows}
