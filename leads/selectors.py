"""Reads for the panels. Every query is scoped to the account and bounded per page:
aggregates and window functions in the database, one query per kind of row a page shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, timedelta

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, Window
from django.db.models.functions import RowNumber, TruncMonth
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from automations.models import Run, RunStatus
from campaigns.models import ENGAGED_EVENT_TYPES, Contact, Event, EventType
from emhub.models import Account

from .models import BulkMatch, LeadDecision, PanelSession, PanelSettings

PAGE_SIZE = 20
TIMELINE_PAGE_SIZE = 25
ACTIVITY_PER_LEAD = 5
# Any page number above this one is past the end (and stays an integer SQLite can bind).
MAX_PAGE = 10**9


def panel_settings_for(*, account: Account) -> PanelSettings:
    settings, _ = PanelSettings.objects.get_or_create(account=account)
    return settings


def panel_settings_by_key(*, panel_key: str) -> PanelSettings | None:
    return PanelSettings.objects.select_related("account").filter(panel_key=panel_key).first()


def panel_sessions_live(*, account: Account, limit: int = 100) -> list[PanelSession]:
    """The account's panel sessions that are neither expired nor revoked, latest first."""
    return list(
        PanelSession.objects.filter(
            account=account, revoked_at__isnull=True, expires_at__gt=timezone.now()
        ).order_by("-last_seen_at", "-id")[:limit]
    )


def panel_session_exists(*, account: Account, session_id: int) -> bool:
    return PanelSession.objects.filter(account=account, pk=session_id).exists()


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

    Driven by the waiting runs (one GROUP BY over the account's waiting runs, which the
    partial run_waiting_idx index holds, giving the page and the number of waiting
    contacts at once), then the page's contacts and their runs: three queries whatever
    the size and whatever the page asked for.
    """
    waiting = Run.objects.filter(account=account, status=RunStatus.WAITING_FOR_MATCH)
    if search:
        waiting = waiting.filter(
            Q(contact__email__icontains=search)
            | Q(contact__first_name__icontains=search)
            | Q(contact__last_name__icontains=search)
            | Q(contact__company_name__icontains=search),
            contact__superoffice_person_id__isnull=True,
        )
    else:
        # A run still waiting although its contact has a person (a match committed while
        # the run was made; the sweeper resumes it) is not shown. Asked as "no such
        # contact" over the account's matched contacts: cheaper than joining every waiting
        # run to its contact, and the runs stay an index-only scan of run_waiting_idx.
        waiting = waiting.exclude(
            Exists(
                Contact.objects.filter(
                    account=account, pk=OuterRef("contact_id"), superoffice_person_id__isnull=False
                )
            )
        )
    groups = (
        waiting.order_by()
        .values("contact_id")
        .annotate(waiting=Count("*"), since=Min("waiting_since"))
    )
    try:
        number = int(page or 1)
    except (TypeError, ValueError):
        number = 1
    # As Paginator.get_page: a page below the first or past the last shows the last.
    number = number if 1 <= number <= MAX_PAGE else MAX_PAGE
    rows = _queue_rows(groups, number)
    total = rows[0][3] if rows else 0
    number = (rows[0][4] - 1) // PAGE_SIZE + 1 if rows else 1
    # The paginator's count is what the page shows ("N contacts waiting", "of M pages"),
    # known from the window count: no COUNT query of its own.
    paginator = Paginator((), PAGE_SIZE)
    paginator.count = total
    result = Page(rows, number, paginator)
    ids = [row[0] for row in rows]
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
            contact=contacts[contact_id],
            waiting=waiting,
            # The page's runs are all of the contact's waiting runs: the earliest is the
            # group's (read here, as the database's own type, not from the raw row).
            waiting_since=min(
                (r.waiting_since for r in runs_by_contact[contact_id] if r.waiting_since),
                default=None,
            ),
            runs=runs_by_contact[contact_id],
        )
        for contact_id, waiting, *_ in rows
        if contact_id in contacts
    ]
    return result


def _queue_rows(groups, number: int) -> list[tuple]:
    """The page ``number`` of the queue's groups as (contact_id, waiting, since, total,
    place), in one query: each group carries its place in the queue's order (a row number)
    and the number of groups (a window count), and the page is taken by place, clamped to
    the last page as Paginator.get_page does for a stale link. So the total the page shows
    costs no second pass over the waiting runs, and a page past the end no extra query.

    The ORM cannot filter on a window over grouped rows (it would group by the window), so
    the grouped query is wrapped here; CASE instead of LEAST keeps it to SQL that SQLite
    and PostgreSQL both run, and integer division is that of both.
    """
    placed = groups.annotate(
        total=Window(Count("*")),
        place=Window(
            RowNumber(), order_by=[F("since").asc(nulls_last=True), F("contact_id").asc()]
        ),
    ).values_list("contact_id", "waiting", "since", "total", "place")
    sql, params = placed.query.sql_with_params()
    start = "CASE WHEN %s < (g.total - 1) / %s * %s THEN %s ELSE (g.total - 1) / %s * %s END"
    offset = (number - 1) * PAGE_SIZE
    start_params = [offset, PAGE_SIZE, PAGE_SIZE, offset, PAGE_SIZE, PAGE_SIZE]
    with connection.cursor() as cursor:
        # Only the ORM's compiled SQL and the constant above are put in the text; every
        # value (the search, the account, the offset) is a parameter.
        cursor.execute(
            f"SELECT g.* FROM ({sql}) g WHERE g.place > {start} AND g.place <= {start} + %s "  # noqa: S608
            "ORDER BY g.place",
            [*params, *start_params, *start_params, PAGE_SIZE],
        )
        return cursor.fetchall()


def waiting_runs_for(*, account: Account, contact: Contact) -> list[Run]:
    """The contact's runs waiting for a SuperOffice person, oldest first."""
    return list(
        Run.objects.filter(account=account, contact=contact, status=RunStatus.WAITING_FOR_MATCH)
        .select_related("automation", "automation__campaign", "event", "event__link", "event__form")
        .order_by("waiting_since", "id")
    )


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


def bulk_match_get(*, account: Account, bulk_match_id: int) -> BulkMatch | None:
    return BulkMatch.objects.filter(account=account, pk=bulk_match_id).first()


def bulk_match_contacts(*, account: Account, bulk: BulkMatch) -> list[tuple[Contact, int, int]]:
    """(contact, person id, runs resumed) of each contact the bulk match matched."""
    contacts = Contact.objects.filter(
        account=account, pk__in=[m[0] for m in bulk.matched]
    ).in_bulk()
    return [
        (contacts[contact_id], person_id, resumed)
        for contact_id, person_id, resumed in bulk.matched
        if contact_id in contacts
    ]


# -- Lead Report --------------------------------------------------------------------------


def _decided(account: Account, contact_ref: str):
    """Rejected or dismissed by a rep (and not undone): no longer a lead, whatever it does
    next."""
    return LeadDecision.objects.filter(
        account=account,
        contact=OuterRef(contact_ref),
        outcome__in=[LeadDecision.Outcome.REJECTED, LeadDecision.Outcome.DISMISSED],
        undone_at__isnull=True,
    )


def _waiting_other_events(account: Account):
    """Runs waiting for a match on events the stored engagement does not count (an
    automation on opens or sends): these events make a lead too."""
    return Run.objects.filter(account=account, status=RunStatus.WAITING_FOR_MATCH).exclude(
        event__type__in=ENGAGED_EVENT_TYPES
    )


def _waiting_other_groups(account: Account, waiting) -> list[tuple]:
    """(contact_id, last, first, events, engaged_count, engaged_first_at, engaged_last_at)
    of each lead with runs waiting on other events.

    The waiting runs are grouped by contact first (an index-only scan of run_waiting_idx
    and the events they wait on), and only those groups, a few, are joined to their
    contacts to drop those in SuperOffice or decided. Joined before grouping, as the ORM
    writes it, the planner hashes every contact of the account first: twice the work at
    10,000 waiting runs. The ORM has no subquery in FROM, so both of its compiled queries
    are put together here; every value stays a parameter.
    """
    groups = (
        waiting.order_by()
        .values("contact_id")
        .annotate(
            last=Max("event__occurred_at"),
            first=Min("event__occurred_at"),
            # An event with two waiting runs is one event.
            n=Count("event_id", distinct=True),
        )
        .values_list("contact_id", "last", "first", "n")
    )
    leads = (
        Contact.objects.filter(account=account, superoffice_person_id__isnull=True)
        .exclude(Exists(_decided(account, "pk")))
        .order_by()
        .values_list("id", "engaged_count", "engaged_first_at", "engaged_last_at")
    )
    groups_sql, groups_params = groups.query.sql_with_params()
    leads_sql, leads_params = leads.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT g.*, c.* FROM "  # noqa: S608
            f"({groups_sql}) g INNER JOIN ({leads_sql}) c ON c.id = g.contact_id",
            [*groups_params, *leads_params],
        )
        rows = cursor.fetchall()
    return [
        (cid, *map(_db_datetime, (last, first)), n, count, *map(_db_datetime, (since, latest)))
        for cid, last, first, n, _id, count, since, latest in rows
    ]


def _db_datetime(value):
    """A timestamp of a raw query as the ORM would give it. SQLite hands them back as text
    (an aggregate's) or as naive datetimes in UTC (a column's); PostgreSQL as aware ones."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


@dataclass
class LeadPage:
    """A page of leads. No total: counting every lead would cost a pass over all of them
    on each page load, so the page only knows whether there is a next one."""

    number: int
    leads: list[Contact]
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def _lead_rows(*, account: Account, flag_before, flagged_only: bool, wanted: int) -> list[tuple]:
    """The first ``wanted`` leads in report order, as (last_activity, engagement, contact_id,
    lead_since): contacts not in SuperOffice, not rejected or dismissed, with engaged events
    (form submissions, clicks, landing pages) or runs waiting for them.

    Two bounded reads instead of a GROUP BY over the account's events:
    - contacts with engaged events, by the counts events_ingest keeps on them, in the
      order of the contact_lead_idx index, so the scan stops after ``wanted`` rows;
    - contacts with runs waiting on other events, grouped over the waiting runs only.
    A contact in the second set is taken out of the first and merged with its counts.
    """
    waiting = _waiting_other_events(account)
    stored = (
        Contact.objects.filter(
            account=account, superoffice_person_id__isnull=True, engaged_last_at__isnull=False
        )
        .exclude(Exists(_decided(account, "pk")))
        .exclude(Exists(waiting.filter(contact=OuterRef("pk"))))
    )
    if flagged_only:
        stored = stored.filter(engaged_first_at__lt=flag_before)
    rows = list(
        stored.order_by("-engaged_last_at", "-engaged_count", "-id").values_list(
            "engaged_last_at", "engaged_count", "id", "engaged_first_at"
        )[:wanted]
    )
    others = _waiting_other_groups(account, waiting)
    for contact_id, last, first, n, engaged_count, engaged_first, engaged_last in others:
        if engaged_last is not None:
            first = min(first, engaged_first)
            last = max(last, engaged_last)
        if flagged_only and not first < flag_before:
            continue
        rows.append((last, n + engaged_count, contact_id, first))
    rows.sort(reverse=True)
    return rows


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
    offset = (number - 1) * PAGE_SIZE
    rows = _lead_rows(
        account=account,
        flag_before=flag_before,
        flagged_only=flagged_only,
        wanted=offset + PAGE_SIZE + 1,
    )[offset : offset + PAGE_SIZE + 1]
    has_next = len(rows) > PAGE_SIZE
    leads = _leads_with_activity(account=account, rows=rows[:PAGE_SIZE], flag_before=flag_before)
    return LeadPage(number=number, leads=leads, has_next=has_next)


def _leads_with_activity(*, account: Account, rows: list[tuple], flag_before) -> list[Contact]:
    """The contacts of ``rows`` (as _lead_rows gives them) in that order, each with its
    engagement, waiting runs, latest activity and flag: what a lead's card shows."""
    ids = [row[2] for row in rows]
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
    for last_activity, engagement, contact_id, lead_since in rows:
        contact = contacts.get(contact_id)
        if contact is None:
            continue
        contact.last_activity = last_activity
        contact.lead_since = lead_since
        contact.engagement = engagement
        contact.waiting_count = waiting.get(contact.id, 0)
        contact.activity = activity[contact.id]
        contact.is_flagged = lead_since < flag_before
        leads.append(contact)
    return leads


def lead_card(*, account: Account, contact: Contact, flag_after_days: int) -> Contact:
    """One lead as its card in the report shows it (after a rejection is undone, the card
    comes back in place with what the page would show for it)."""
    flag_before = timezone.now() - timedelta(days=flag_after_days)
    other = (
        _waiting_other_events(account)
        .filter(contact=contact)
        .aggregate(
            last=Max("event__occurred_at"),
            first=Min("event__occurred_at"),
            n=Count("event_id", distinct=True),
        )
    )
    firsts = [t for t in (contact.engaged_first_at, other["first"]) if t is not None]
    lasts = [t for t in (contact.engaged_last_at, other["last"]) if t is not None]
    now = timezone.now()
    row = (
        max(lasts) if lasts else now,
        (contact.engaged_count or 0) + other["n"],
        contact.pk,
        min(firsts) if firsts else now,
    )
    [lead] = _leads_with_activity(account=account, rows=[row], flag_before=flag_before) or [contact]
    return lead


def lead_contact(*, account: Account, contact_id: int) -> Contact | None:
    return Contact.objects.filter(
        account=account, pk=contact_id, superoffice_person_id__isnull=True
    ).first()


def lead_rejected(*, account: Account, contact_id: int) -> Contact | None:
    """A lead with a rejection not undone, the rejection on it as ``rejection``."""
    decision = (
        LeadDecision.objects.filter(
            account=account,
            contact_id=contact_id,
            contact__superoffice_person_id__isnull=True,
            outcome=LeadDecision.Outcome.REJECTED,
            undone_at__isnull=True,
        )
        .select_related("contact")
        .order_by("-id")
        .first()
    )
    if decision is None:
        return None
    contact = decision.contact
    contact.rejection = decision
    return contact


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
