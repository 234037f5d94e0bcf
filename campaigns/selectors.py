"""Reads for campaigns, contacts, tracked links, forms and events. Every one is account-scoped."""

from datetime import date, timedelta

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, TruncDate
from django.shortcuts import get_object_or_404
from django.utils import timezone

from emhub.models import Account

from .models import (
    Campaign,
    Channel,
    Contact,
    ContactImport,
    Event,
    EventType,
    Form,
    RecipientList,
    RecipientListMember,
    Sendout,
    SendoutMessage,
    TrackedLink,
)


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


def form_published_get(*, token: str) -> Form:
    """A published form by its public token (Form.DoesNotExist otherwise): the hosted
    page is for anyone on the internet, so no account scopes it; the token does."""
    return Form.objects.select_related("account", "campaign").get(token=token[:32], published=True)


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


# --- Imports, recipient lists and sendouts ------------------------------------------------


def imports_of(*, account: Account) -> QuerySet[ContactImport]:
    return ContactImport.objects.filter(account=account)


def import_get(*, account: Account, import_id: int) -> ContactImport:
    return get_object_or_404(ContactImport, account=account, pk=import_id)


def recipient_lists_of(*, account: Account) -> QuerySet[RecipientList]:
    return RecipientList.objects.filter(account=account).annotate(
        member_count=_count(
            RecipientListMember.objects.filter(recipient_list=OuterRef("pk")), per="recipient_list"
        )
    )


def recipient_list_get(*, account: Account, list_id: int) -> RecipientList:
    return get_object_or_404(RecipientList, account=account, pk=list_id)


def recipient_list_contacts(*, recipient_list: RecipientList) -> QuerySet[Contact]:
    return Contact.objects.filter(
        account_id=recipient_list.account_id,
        pk__in=RecipientListMember.objects.filter(recipient_list=recipient_list).values(
            "contact_id"
        ),
    )


def recipient_contact_ids(*, recipient_list: RecipientList) -> QuerySet:
    return (
        recipient_list_contacts(recipient_list=recipient_list)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _marketing_basis():
    """True where the contact holds a "Marketing sendouts" (EMARKETING) legal basis that
    is not withdrawn, read from the consent app's current-state table."""
    from consent.models import CurrentConsent, Purpose
    from consent.rules import WITHDRAWN

    return Exists(
        CurrentConsent.objects.filter(contact=OuterRef("pk"), purpose=Purpose.EMARKETING).exclude(
            legal_basis=WITHDRAWN
        )
    )


def contacts_with_marketing_basis(*, account: Account, contact_ids) -> set[int]:
    """Which of the contacts may receive marketing sendouts: one query for all of them."""
    return set(
        Contact.objects.filter(account=account, pk__in=list(contact_ids))
        .filter(_marketing_basis())
        .values_list("pk", flat=True)
    )


def _has_address(channel: str) -> Q:
    if channel == Channel.EMAIL:
        return ~Q(email="")
    return ~Q(mobile="") | ~Q(phone="")


def sendout_recipient_figures(*, sendout: Sendout) -> dict:
    """Who on the list would receive the message, and why each of the others would not:
    one aggregate query over the list. Each recipient counts under one reason only, in
    the order the send applies them (sendouts._prepare): no legal basis, then no address.
    """
    address = _has_address(sendout.channel)
    figures = (
        recipient_list_contacts(recipient_list=sendout.recipient_list)
        .annotate(basis=_marketing_basis())
        .aggregate(
            recipients=Count("pk"),
            no_legal_basis=Count("pk", filter=Q(basis=False)),
            no_address=Count("pk", filter=Q(basis=True) & ~address),
            will_send=Count("pk", filter=Q(basis=True) & address),
        )
    )
    return {key: value or 0 for key, value in figures.items()}


def sendout_checklist_contacts(*, sendout: Sendout, kind: str) -> QuerySet[Contact]:
    """The list's contacts excluded for `kind`: "no_legal_basis", or "no_address" (those
    with a legal basis but no address), as sendout_recipient_figures counts them."""
    contacts = recipient_list_contacts(recipient_list=sendout.recipient_list).annotate(
        basis=_marketing_basis()
    )
    if kind == "no_legal_basis":
        return contacts.filter(basis=False)
    return contacts.filter(basis=True).exclude(_has_address(sendout.channel))


def sendout_preview_contacts(*, sendout: Sendout, query: str = "") -> QuerySet[Contact]:
    """Recipients to preview the message as: the list's contacts, narrowed by `query`."""
    contacts = recipient_list_contacts(recipient_list=sendout.recipient_list)
    query = query.strip()
    if query:
        contacts = contacts.filter(
            Q(email__icontains=query)
            | Q(first_name__icontains=query)
            | Q(last_name__icontains=query)
            | Q(company_name__icontains=query)
        )
    return contacts.order_by("email")


def sendout_preview_contact(*, sendout: Sendout, contact_id) -> Contact | None:
    """One recipient of the sendout's list (None when the id names no recipient)."""
    if not str(contact_id or "").isdigit():
        return None
    return (
        recipient_list_contacts(recipient_list=sendout.recipient_list)
        .filter(pk=int(contact_id))
        .first()
    )


def sendouts_of(*, account: Account) -> QuerySet[Sendout]:
    return Sendout.objects.filter(account=account).select_related("campaign", "recipient_list")


def sendout_get(*, account: Account, sendout_id: int) -> Sendout:
    return get_object_or_404(
        Sendout.objects.select_related("campaign", "recipient_list"),
        account=account,
        pk=sendout_id,
    )


def sendout_message_counts(*, sendout: Sendout) -> dict[str, int]:
    counts = dict(
        SendoutMessage.objects.filter(account_id=sendout.account_id, sendout=sendout)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
    )
    return {value: counts.get(value, 0) for value in SendoutMessage.Status.values}


def sendout_messages(*, sendout: Sendout, status: str = "") -> QuerySet[SendoutMessage]:
    qs = SendoutMessage.objects.filter(account_id=sendout.account_id, sendout=sendout)
    if status:
        qs = qs.filter(status=status)
    return qs.select_related("contact")


def sendouts_due(*, now=None) -> list[int]:
    """Sendouts a worker should take now: scheduled and due, or sending with messages
    due for another attempt and no worker holding them (or a lapsed worker's lease)."""
    now = now or timezone.now()
    due_messages = Exists(
        SendoutMessage.objects.filter(
            Q(status=SendoutMessage.Status.QUEUED, next_attempt_at__lte=now)
            | Q(status=SendoutMessage.Status.SENDING, lease_expires_at__lt=now),
            sendout=OuterRef("pk"),
        )
    )
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    return list(
        Sendout.objects.alias(due_messages=due_messages)
        .filter(
            Q(status=Sendout.Status.SCHEDULED, scheduled_at__lte=now)
            | Q(status=Sendout.Status.SENDING)
            & free
            & (Q(prepared_at__isnull=True) | Q(due_messages=True))
        )
        .order_by("scheduled_at", "pk")
        .values_list("pk", flat=True)[:500]
    )
