"""Campaigns, contacts (keyed by email per account), tracked links, forms and events."""

import secrets

from django.core.cache import cache
from django.db import models
from django.db.models.functions import Lower
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from emhub.models import Account


def new_link_token() -> str:
    return secrets.token_urlsafe(12)


class Campaign(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    is_archived = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["account", "-created_at"])]

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    """A recipient. One per email address and account; the email is stored lower-cased."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contacts")
    email = models.EmailField(max_length=254)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=50, blank=True)
    mobile = models.CharField(max_length=50, blank=True)
    title = models.CharField(max_length=100, blank=True)
    company_name = models.CharField(max_length=200, blank=True)
    # The SuperOffice person this contact is; null until matched, imported or approved.
    superoffice_person_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # The contact's engaged events (ENGAGED_EVENT_TYPES): how many, the first and the last.
    # events_ingest adds each stored batch, so the Lead Report orders leads by an index
    # instead of grouping all of an account's events on every page load.
    engaged_count = models.PositiveIntegerField(default=0)
    engaged_first_at = models.DateTimeField(null=True, blank=True)
    engaged_last_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint("account", Lower("email"), name="contact_unique_account_email"),
        ]
        indexes = [
            models.Index(fields=["account", "superoffice_person_id"]),
            # The Lead Report's order, over the leads only (engaged, not in SuperOffice).
            models.Index(
                fields=["account", "-engaged_last_at", "-engaged_count", "-id"],
                name="contact_lead_idx",
                condition=models.Q(
                    superoffice_person_id__isnull=True, engaged_last_at__isnull=False
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class LinkResponse(models.TextChoices):
    REDIRECT = "redirect", "Send to a web page"
    TEXT = "text", "Show a text page"


class TrackedLink(models.Model):
    """A link in a campaign's message; `/t/<token>` records the click, then responds.

    The response is what the recipient's browser gets (campaigns.link_responses); what a
    click does in SuperOffice are the automations triggered by this link.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="tracked_links")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="links")
    name = models.CharField(max_length=200)
    url = models.URLField(max_length=2000)
    token = models.CharField(max_length=32, unique=True, default=new_link_token)
    response_kind = models.CharField(
        max_length=10, choices=LinkResponse.choices, default=LinkResponse.REDIRECT
    )
    # Redirect: another page than `url` (blank = `url`).
    response_url = models.URLField(max_length=2000, blank=True)
    # Text page: a title and rich text, stored already sanitised to safe HTML.
    response_title = models.CharField(max_length=200, blank=True)
    response_html = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def link_cache_key(token: str) -> str:
    """Where campaigns.clicks keeps what a click on this link needs (its ids and response)."""
    return f"campaigns:link:{token}"


# Every web process reads links through the shared cache: a saved or deleted link is
# forgotten there at once (here, so a change from any process, the admin included, does
# it). A bulk update() sends no signal; the cache's timeout bounds how long that lasts.
@receiver(post_save, sender=TrackedLink, dispatch_uid="campaigns.link_forget_saved")
@receiver(post_delete, sender=TrackedLink, dispatch_uid="campaigns.link_forget_deleted")
def _link_forget(sender, instance, **kwargs) -> None:
    cache.delete(link_cache_key(instance.token))


def new_form_token() -> str:
    return secrets.token_urlsafe(18)


# The contact fields a hosted form can ask for, in the order it shows them, with their
# labels; `email` names the contact and is always asked for.
FORM_FIELDS = {
    "email": "E-mail",
    "first_name": "First name",
    "last_name": "Last name",
    "company_name": "Company",
    "title": "Job title",
    "phone": "Phone",
    "mobile": "Mobile",
}


def default_form_fields() -> list[str]:
    return ["email", "first_name", "last_name"]


class Form(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="forms")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="forms")
    name = models.CharField(max_length=200)
    # Names the form in its public address `/f/<token>/`: random, so nobody can find or post
    # to other forms (of any account) by counting.
    token = models.CharField(max_length=32, unique=True, default=new_form_token)
    # Only a published form takes submissions: a draft or a retired form answers 404.
    published = models.BooleanField(default=False)
    # Where `/f/<token>/` sends the visitor after a submission; blank shows the hub's
    # thank-you page with `thanks_message`.
    success_url = models.URLField(max_length=2000, blank=True)
    # The page the hub serves at `/f/<token>/` (besides the snippet for the customer's own
    # pages): a text above the fields, the contact fields asked for (FORM_FIELDS, the
    # e-mail address always first), the consent boxes and the button.
    intro = models.TextField(blank=True)
    field_names = models.JSONField(default=default_form_fields, blank=True)
    # {purpose: {"text": what the box says, "legal_basis": the key a ticked box records}};
    # a purpose that is not here has no box.
    consent_boxes = models.JSONField(default=dict, blank=True)
    button_label = models.CharField(max_length=60, blank=True)
    thanks_message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class EventType(models.TextChoices):
    EMAIL_SENT = "email_sent", "Email sent"
    EMAIL_OPENED = "email_opened", "Email opened"
    LINK_CLICKED = "link_clicked", "Link clicked"
    FORM_SUBMITTED = "form_submitted", "Form submitted"
    SMS_SENT = "sms_sent", "SMS sent"
    SMS_LINK_CLICKED = "sms_link_clicked", "SMS link clicked"
    LANDING_PAGE_VISITED = "landing_page_visited", "Landing page visited"


# What makes a contact a lead: it acted on the content, not merely received or opened it.
ENGAGED_EVENT_TYPES = frozenset(
    {
        EventType.FORM_SUBMITTED,
        EventType.LINK_CLICKED,
        EventType.SMS_LINK_CLICKED,
        EventType.LANDING_PAGE_VISITED,
    }
)


class Event(models.Model):
    """Something a contact did with marketing content. Stored once per sender event id."""

    class Source(models.TextChoices):
        API = "api", "API"
        TRACKED_LINK = "tracked_link", "Tracked link"
        PIXEL = "pixel", "Open pixel"
        FORM = "form", "Form"
        SENDOUT = "sendout", "Sendout"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="events")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="events")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=30, choices=EventType.choices)
    occurred_at = models.DateTimeField(default=timezone.now)
    received_at = models.DateTimeField(default=timezone.now)
    # The sender's id: a re-sent event with the same id is stored once.
    external_id = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.API)
    link = models.ForeignKey(
        TrackedLink, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    form = models.ForeignKey(
        Form, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    # Facts of the event: submitted form fields, user agent, landing page URL, …
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "external_id"],
                condition=models.Q(external_id__isnull=False),
                name="event_unique_account_external_id",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "contact", "-occurred_at"]),
            models.Index(fields=["account", "campaign", "-occurred_at"]),
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_type_display()} by {self.contact_id} at {self.occurred_at:%Y-%m-%d %H:%M}"
        )


class RawClick(models.Model):
    """A click on a tracked link (or an open of the pixel) as the public endpoint took it:
    one row written before the recipient is answered, turned into an event by a worker
    (campaigns.clicks). The row is deleted in the transaction that stores its event, so
    each one becomes exactly one event, however often the drain is woken or fails.

    Plain ids, not foreign keys: the endpoint writes the row without reading the contact
    or checking it exists; the drain checks everything and drops what names nothing.
    """

    class Kind(models.TextChoices):
        CLICK = "click", "Click"
        OPEN = "open", "Open"

    kind = models.CharField(max_length=5, choices=Kind.choices, default=Kind.CLICK)
    # A click: the link's token, as the recipient's URL names it.
    token = models.CharField(max_length=32, blank=True)
    # From the signed reference (its signature was checked before the row was written).
    contact_id = models.BigIntegerField()
    # An open: the campaign and the sendout (if any) its pixel names.
    campaign_id = models.BigIntegerField(null=True, blank=True)
    sendout_id = models.BigIntegerField(null=True, blank=True)
    method = models.CharField(max_length=8, default="GET")
    user_agent = models.CharField(max_length=300, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.kind} by {self.contact_id} at {self.occurred_at:%Y-%m-%d %H:%M:%S}"


# --- Imports from SuperOffice ----------------------------------------------------------


class ContactImport(models.Model):
    """One import of a SuperOffice selection's or project's persons, with its progress.

    The worker that runs it holds a lease (`lease_expires_at`): a second delivery of the
    task finds it taken, and an import whose worker died can be taken again.
    """

    class SourceType(models.TextChoices):
        SELECTION = "selection", "Selection"
        PROJECT = "project", "Project"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to start"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contact_imports")
    source_type = models.CharField(max_length=20, choices=SourceType.choices)
    source_id = models.PositiveIntegerField()
    source_name = models.CharField(max_length=200, blank=True)
    only_emarketing = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    # Members in the selection or project; null until the worker has counted them.
    total = models.PositiveIntegerField(null=True, blank=True)
    processed = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    skipped_no_email = models.PositiveIntegerField(default=0)
    skipped_invalid_email = models.PositiveIntegerField(default=0)
    # Persons sharing an email with another person of the import: one contact, linked
    # to the oldest of them.
    skipped_duplicate = models.PositiveIntegerField(default=0)
    skipped_switch_off = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_source_type_display()} {self.source_name or self.source_id}"

    @property
    def skipped(self) -> int:
        return (
            self.skipped_no_email
            + self.skipped_invalid_email
            + self.skipped_duplicate
            + self.skipped_switch_off
        )

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.total:
            return 0
        return min(100, self.processed * 100 // self.total)

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)


class ContactImportRow(models.Model):
    """A contact an import wrote, and the SuperOffice person it linked it to.

    Kept per import so that persons sharing an email on different pages are resolved
    to the oldest one without holding the whole import in memory, and so that the
    imported set can be saved as a recipient list.
    """

    # Not indexed: rows are reached through their import (an import writes thousands).
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    contact_import = models.ForeignKey(ContactImport, on_delete=models.CASCADE, related_name="rows")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    person_id = models.BigIntegerField()
    person_registered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["contact_import", "contact"], name="contact_import_row_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact_import_id}: {self.contact_id} ← person {self.person_id}"


# --- Recipient lists and sendouts ------------------------------------------------------


class RecipientList(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="recipient_lists")
    name = models.CharField(max_length=200)
    source_import = models.ForeignKey(
        ContactImport, null=True, blank=True, on_delete=models.SET_NULL, related_name="lists"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "-created_at"])]

    def __str__(self) -> str:
        return self.name


class RecipientListMember(models.Model):
    # Not indexed: members are reached through their list.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    recipient_list = models.ForeignKey(
        RecipientList, on_delete=models.CASCADE, related_name="members"
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["recipient_list", "contact"], name="recipient_list_member_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.recipient_list_id}: {self.contact_id}"


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class Sendout(models.Model):
    """A campaign's email or SMS to a recipient list, now or at a scheduled time."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="sendouts")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="sendouts")
    recipient_list = models.ForeignKey(
        RecipientList, on_delete=models.PROTECT, related_name="sendouts"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    subject = models.CharField(max_length=300, blank=True)
    # HTML for email (its links become the campaign's tracked links), plain text for SMS.
    body = models.TextField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    # The last checklist: when it ran and what it found (recipients, excluded, …).
    checklist_at = models.DateTimeField(null=True, blank=True)
    checklist = models.JSONField(default=dict, blank=True)
    # Set once the per-recipient messages exist (the send-time consent check is done).
    prepared_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The sender, taken from the account's EmailSender when the sendout is confirmed.
    from_name = models.CharField(max_length=100, blank=True)
    from_email = models.EmailField(max_length=254, blank=True)
    reply_to = models.EmailField(max_length=254, blank=True)
    # Why a confirmed sendout was not sent after all (checked again at the send time).
    not_sent_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-created_at"]),
            models.Index(fields=["status", "scheduled_at"]),
        ]

    def __str__(self) -> str:
        return self.subject or f"{self.get_channel_display()} sendout {self.pk}"


class SendoutMessage(models.Model):
    """One recipient of a sendout. At most one per sendout and contact, so a double
    click or a retried task cannot send twice; a worker claims a row with a
    conditional update before it sends."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        EXCLUDED = "excluded", "Excluded"

    class Exclusion(models.TextChoices):
        NO_LEGAL_BASIS = "no_legal_basis", "No “Marketing sendouts” legal basis"
        NO_ADDRESS = "no_address", "No address"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    sendout = models.ForeignKey(Sendout, on_delete=models.CASCADE, related_name="messages")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="sendout_messages")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    excluded_reason = models.CharField(max_length=30, choices=Exclusion.choices, blank=True)
    # The email address or phone number the message goes to.
    address = models.CharField(max_length=254, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Which worker's batch claimed the row (see sendouts._messages_claim).
    claimed_by = models.CharField(max_length=64, blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # When the recipient unsubscribed through this message's link (the first time).
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["sendout", "contact"], name="sendout_message_unique"),
        ]
        indexes = [models.Index(fields=["sendout", "status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.sendout_id} → {self.contact_id}: {self.status}"


class EmailSender(models.Model):
    """Whom an account's marketing e-mail comes from: the From name and address, and
    where replies go. Sendouts take it when they are confirmed."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="email_sender")
    from_name = models.CharField(max_length=100)
    from_email = models.EmailField(max_length=254)
    reply_to = models.EmailField(max_length=254, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.from_name} <{self.from_email}>"


class StoredSms(models.Model):
    """An SMS the development backend "sent": kept here instead of leaving the machine."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    to = models.CharField(max_length=50)
    body = models.TextField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-sent_at", "-id"]

    def __str__(self) -> str:
        return f"SMS to {self.to} at {self.sent_at:%Y-%m-%d %H:%M}"
