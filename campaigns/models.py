"""Campaigns, contacts (keyed by email per account), tracked links, forms and events."""

import secrets

from django.db import models
from django.db.models.functions import Lower
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

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint("account", Lower("email"), name="contact_unique_account_email"),
        ]
        indexes = [models.Index(fields=["account", "superoffice_person_id"])]

    def __str__(self) -> str:
        return self.email

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class TrackedLink(models.Model):
    """A link in a campaign's message; `/t/<token>` records the click, then responds."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="tracked_links")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="links")
    name = models.CharField(max_length=200)
    url = models.URLField(max_length=2000)
    token = models.CharField(max_length=32, unique=True, default=new_link_token)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Form(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="forms")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="forms")
    name = models.CharField(max_length=200)
    # Where `/f/<id>/` sends the visitor after a submission; blank shows the hub's thank-you page.
    success_url = models.URLField(max_length=2000, blank=True)
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
