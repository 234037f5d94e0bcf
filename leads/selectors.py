"""Reads for the panels. Every query is scoped to the account and bounded per page:
aggregates and window functions in the database, one query per kind of row a page shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, Window
from django.db.models.functions import RowNumber, TruncMonth
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

    Driven by the waiting runs (one GROUP BY over the account's waiting runs, which an
    index finds), then the page's contacts and their runs: four queries whatever the size.
    """
    waiting = Run.objects.filter(
        account=account,
        status=RunStatus.WAITING_FOR_MATCH,
        contact__superoffice_person_id__isnull=True,
    )
    if search:
        waiting = waiting.filter(
            Q(contact__email__icontains=search)
            | Q(contact__first_name__icontains=search)
            | Q(contact__last_name__icontains=search)
            | Q(contact__company_name__icontains=search)
        )
    groups = (
        waiting.order_by()
        .values("contact_id")
        .annotate(waiting=Count("id"), since=Min("waiting_since"))
        .order_by(F("since").asc(nulls_last=True), "contact_id")
    )
    result = _paginate(groups, page, PAGE_SIZE)
    rows = list(result.object_list)
    ids = [row["contact_id"] for row in rows]
    contacts = Contact.objects.filter(account=account, pk__in=ids).in_bulk()
    runs_by_contact: dict[int, list[Run]] = {i: [] for i in ids}
    for run in (
        Run.objects.filter(account=account, contact_id__in=ids, status=RunStatus.WAITING_FOR_MATCH)
        .select_related("automation", "automation__campaign", "event", "event__link", "event__form")
        .order_by("waiting_since", "id")
    ):
        runs_by_contact[run.contact_id].append(run)
    result.object_list = [
        QueueEntry(
            contact=contacts[row["contact_id"]],
            waiting=row["waiting"],
            waiting_since=row["since"],
            runs=runs_by_contact[row["contact_id"]],
        )
        for row in rows
        if row["contact_id"] in contacts
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


def _lead_groups(account: Account):
    """One row per lead: contacts not in SuperOffice, not rejected or dismissed, with
    engaged events (form submissions, clicks, landing pages) or runs waiting for them.

    A GROUP BY over the account's events (semi- and anti-joins for the waiting runs and
    decisions), not a subquery per contact: its cost follows the events, not the contacts
    times the events.
    """
    # The events whose runs wait, as one hashed set rather than a probe per event: keeps
    # the plan cheap (and PostgreSQL from spending more on JIT-compiling it than running it).
    waiting = Run.objects.filter(account=account, status=RunStatus.WAITING_FOR_MATCH).values(
        "event_id"
    )
    decided = LeadDecision.objects.filter(
        account=account,
        contact=OuterRef("contact_id"),
        outcome__in=[LeadDecision.Outcome.REJECTED, LeadDecision.Outcome.DISMISSED],
    )
    return (
        Event.objects.filter(account=account, contact__superoffice_person_id__isnull=True)
        .filter(Q(type__in=ENGAGED_TYPES) | Q(id__in=waiting))
        .exclude(Exists(decided))
        .order_by()
        .values("contact_id")
        .annotate(
            last_activity=Max("occurred_at"),
            lead_since=Min("occurred_at"),
            engagement=Count("id"),
        )
    )


@dataclass
class LeadPage:
    """A page of leads. No total: counting every lead would cost a second pass over the
    events on each page load, so the page only knows whether there is a next one."""

    number: int
    leads: list[Contact]
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def lead_report_page(
    *,
    account: Account,
    flag_after_days: int,
    page: str | int | None = 1,
    flagged_only: bool = False,
) -> LeadPage:
    """Leads not in SuperOffice that engaged, newest and most engaged first, each with its
    latest activity; leads older than ``flag_after_days`` are flagged, never dropped."""
    flag_before = timezone.now() - timedelta(days=flag_after_days)
    try:
        number = max(int(page or 1), 1)
    except (TypeError, ValueError):
        number = 1
    groups = _lead_groups(account)
    if flagged_only:
        groups = groups.filter(lead_since__lt=flag_before)
    offset = (number - 1) * PAGE_SIZE
    rows = list(
        groups.order_by("-last_activity", "-engagement", "-contact_id")[
            offset : offset + PAGE_SIZE + 1
        ]
    )
    has_next = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    ids = [row["contact_id"] for row in rows]
    contacts = Contact.objects.filter(account=account, pk__in=ids).in_bulk()
    waiting = dict(
        Run.objects.filter(account=account, contact_id__in=ids, status=RunStatus.WAITING_FOR_MATCH)
        .order_by()
        .values("contact_id")
        .annotate(n=Count("id"))
        .values_list("contact_id", "n")
    )
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
    leads = []
    for row in rows:
        contact = contacts.get(row["contact_id"])
        if contact is None:
            continue
        contact.last_activity = row["last_activity"]
        contact.lead_since = row["lead_since"]
        contact.engagement = row["engagement"]
        contact.waiting_count = waiting.get(contact.id, 0)
        contact.activity = activity[contact.id]
        contact.is_flagged = row["lead_since"] < flag_before
        leads.append(contact)
    return LeadPage(number=number, leads=leads, has_next=has_next)


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
