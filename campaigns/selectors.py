"""Reads for campaigns, contacts, tracked links, forms and events. Every one is account-scoped."""

from datetime import date, timedelta

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, TruncDate
from django.shortcuts import get_object_or_404
from django.utils import timezone

from emhub.models import Account

from .models import Campaign, Contact, Event, EventType, Form, TrackedLink


def _count(qs: QuerySet, *, per: str):
    """A correlated COUNT subquery (qs filtered on OuterRef); no join fan-out, 0 when none."""
    counted = qs.order_by().values(per).annotate(n=Count("*")).values("n")[:1]
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def campaigns_of(*, account: Account, include_archived: bool = True) -> QuerySet[Campaign]:
    qs = Campaign.objects.filter(account=account)
    if not include_archived:
        qs = qs.filter(is_archived=False)
    return qs.annotate(
        event_count=_count(Event.objects.filter(campaign=OuterRef("pk")), per="campaign"),
        link_count=_count(TrackedLink.objects.filter(campaign=OuterRef("pk")), per="campaign"),
        form_count=_count(Form.objects.filter(campaign=OuterRef("pk")), per="campaign"),
    )


def campaign_get(*, account: Account, campaign_id: int) -> Campaign:
    return get_object_or_404(Campaign, account=account, pk=campaign_id)


def campaign_event_counts(*, campaign: Campaign) -> list[dict]:
    """[{type, label, count}] for every event type, zeros included, in EventType order."""
    counts = dict(
        Event.objects.filter(account_id=campaign.account_id, campaign=campaign)
        .order_by()
        .values_list("type")
        .annotate(n=Count("id"))
    )
    return [
        {"type": value, "label": label, "count": counts.get(value, 0)}
        for value, label in EventType.choices
    ]


def campaign_events_per_day(*, campaign: Campaign, days: int = 30) -> list[tuple[date, int]]:
    """Events per day over the last `days` days (today included), days without events as 0."""
    today = timezone.localdate()
    start = today - timedelta(days=days - 1)
    rows = (
        Event.objects.filter(
            account_id=campaign.account_id,
            campaign=campaign,
            occurred_at__date__gte=start,
        )
        .annotate(day=TruncDate("occurred_at"))
        .order_by()
        .values_list("day")
        .annotate(n=Count("id"))
    )
    by_day = dict(rows)
    return [
        (start + timedelta(days=i), by_day.get(start + timedelta(days=i), 0)) for i in range(days)
    ]


def links_of_campaign(*, campaign: Campaign) -> QuerySet[TrackedLink]:
    return TrackedLink.objects.filter(account_id=campaign.account_id, campaign=campaign).annotate(
        click_count=Count(
            "events",
            filter=Q(events__type__in=[EventType.LINK_CLICKED, EventType.SMS_LINK_CLICKED]),
        )
    )


def link_get(*, account: Account, campaign: Campaign, link_id: int) -> TrackedLink:
    return get_object_or_404(TrackedLink, account=account, campaign=campaign, pk=link_id)


def forms_of_campaign(*, campaign: Campaign) -> QuerySet[Form]:
    return Form.objects.filter(account_id=campaign.account_id, campaign=campaign).annotate(
        submission_count=Count("events", filter=Q(events__type=EventType.FORM_SUBMITTED))
    )


def form_get(*, account: Account, campaign: Campaign, form_id: int) -> Form:
    return get_object_or_404(Form, account=account, campaign=campaign, pk=form_id)


def events_of_campaign(*, campaign: Campaign, event_type: str = "") -> QuerySet[Event]:
    qs = Event.objects.filter(account_id=campaign.account_id, campaign=campaign)
    if event_type:
        qs = qs.filter(type=event_type)
    return qs.select_related("contact", "link", "form")


def events_of_form(*, form: Form) -> QuerySet[Event]:
    return Event.objects.filter(
        account_id=form.account_id, campaign_id=form.campaign_id, form=form
    ).select_related("contact")


def event_get(*, account: Account, event_id: int) -> Event:
    return get_object_or_404(
        Event.objects.select_related("campaign", "contact", "link", "form"),
        account=account,
        pk=event_id,
    )


def contacts_search(*, account: Account, query: str = "") -> QuerySet[Contact]:
    """Contacts whose email or company contains the query, or whose names hold every word of it."""
    qs = Contact.objects.filter(account=account)
    query = query.strip()
    if query:
        by_name = Q()
        for word in query.split()[:4]:
            by_name &= Q(first_name__icontains=word) | Q(last_name__icontains=word)
        qs = qs.filter(Q(email__icontains=query) | Q(company_name__icontains=query) | by_name)
    return qs.annotate(
        event_count=_count(Event.objects.filter(contact=OuterRef("pk")), per="contact")
    )


def contact_get(*, account: Account, contact_id: int) -> Contact:
    return get_object_or_404(Contact, account=account, pk=contact_id)


def events_of_contact(*, contact: Contact) -> QuerySet[Event]:
    return Event.objects.filter(account_id=contact.account_id, contact=contact).select_related(
        "campaign", "link", "form"
    )
