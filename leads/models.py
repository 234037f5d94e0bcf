"""Web-panel settings of an account, and the reps' decisions on leads.

The panels are pages SuperOffice frames; who may see them, from which SuperOffice host,
and how the SuperOffice user proves who they are is set here by the account's admin.
"""

import secrets

from django.db import models
from django.utils import timezone

from campaigns.models import Contact
from emhub.fields import EncryptedTextField
from emhub.models import Account


def new_panel_key() -> str:
    return secrets.token_urlsafe(12)


class Panel(models.TextChoices):
    QUEUE = "queue", "Manage Automations Queue"
    LEADS = "leads", "Lead Report"
    TIMELINE = "timeline", "Timeline"
    EVENT = "event", "Event details"


class PanelSettings(models.Model):
    """One per account; made with defaults the first time the admin page or a panel needs it."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="panel_settings")
    # Names the account in panel URLs. Random, so a panel URL does not reveal or let anyone
    # guess other customers; it proves nothing by itself (the user still signs in).
    panel_key = models.CharField(max_length=32, unique=True, default=new_panel_key)
    # The SuperOffice tenant (the `ctx` claim, Online's customer number, e.g. "Cust12345"):
    # a signed-in user's token must carry exactly this.
    context_identifier = models.CharField(max_length=100, blank=True)
    # Origins allowed to frame the panels, e.g. "https://online.superoffice.com".
    frame_ancestors = models.CharField(max_length=500, blank=True)
    # OpenID Connect with SuperOffice's identity provider (SuperID).
    oidc_issuer = models.URLField(
        max_length=300, blank=True, help_text="e.g. https://online.superoffice.com"
    )
    oidc_client_id = models.CharField(max_length=200, blank=True)
    oidc_client_secret = EncryptedTextField(blank=True)
    # On-site: accept the <usec> secret of the panel URL, verified with NetServer.
    usec_enabled = models.BooleanField(default=False)
    # {"queue": [group ids], ...}; a missing or empty list lets every group see the panel.
    panel_groups = models.JSONField(default=dict, blank=True)
    flag_after_days = models.PositiveIntegerField(default=7)
    updated_at = models.DateTimeField(default=timezone.now)
    # Why sign-in with SuperOffice cannot work as set (its address redirects or is
    # internal), from the last attempt; cleared by the next one that reaches it.
    oidc_error = models.TextField(blank=True)
    oidc_error_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Panel settings of {self.account}"

    def groups_for(self, panel: str) -> list[int]:
        return [int(g) for g in (self.panel_groups or {}).get(panel, [])]

    @property
    def ancestors(self) -> list[str]:
        return [a for a in self.frame_ancestors.split() if a]

    @property
    def oidc_configured(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id and self.context_identifier)


class PanelSession(models.Model):
    """A SuperOffice user signed in to the account's panels.

    The panel carries a random token; only its SHA-256 is kept, so this table cannot be
    replayed from. Signing out or an admin's revocation ends the session at once.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="panel_sessions")
    key_hash = models.CharField(max_length=64, unique=True)
    context_identifier = models.CharField(max_length=100)
    associate_id = models.IntegerField()
    name = models.CharField(max_length=200, blank=True)
    # None when the sign-in did not tell the user's groups.
    group_ids = models.JSONField(null=True, blank=True)
    method = models.CharField(max_length=10)  # "oidc" | "usec"
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        indexes = [models.Index(fields=["account", "revoked_at", "expires_at"])]

    def __str__(self) -> str:
        return f"Panel session of associate {self.associate_id}"


class LeadDecision(models.Model):
    """What a rep decided about a contact in the Lead Report or the queue.

    Rejected leads stay here (hidden from the report, never deleted), so the decision and
    who made it can be read later. An undone rejection stays too, marked with when and by
    whom it was undone: the lead is back in the report and the history still tells it.
    """

    class Outcome(models.TextChoices):
        APPROVED = "approved", "Approved"
        MATCHED = "matched", "Matched"
        REJECTED = "rejected", "Rejected"
        DISMISSED = "dismissed", "Dismissed"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="lead_decisions")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="lead_decisions")
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    reason = models.CharField(max_length=300, blank=True)
    person_id = models.BigIntegerField(null=True, blank=True)
    company_id = models.BigIntegerField(null=True, blank=True)
    # The SuperOffice associate who decided (verified by the panel sign-in).
    associate_id = models.IntegerField(null=True, blank=True)
    decided_at = models.DateTimeField(default=timezone.now)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by_associate_id = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-decided_at", "-id"]
        indexes = [models.Index(fields=["account", "contact", "outcome"])]

    def __str__(self) -> str:
        return f"{self.contact_id} {self.outcome}"


class BulkMatch(models.Model):
    """A rep's "Match selected" in the queue: the contacts they ticked, matched by exact
    e-mail by a worker, one after the other, with progress the panel follows."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="bulk_matches")
    associate_id = models.IntegerField(null=True, blank=True)
    contact_ids = models.JSONField(default=list)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    checked = models.PositiveIntegerField(default=0)
    # [[contact id, person id, runs resumed], ...] in the order they were matched.
    matched = models.JSONField(default=list)
    skipped = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "-created_at"])]

    def __str__(self) -> str:
        return f"Bulk match {self.pk} ({self.status})"

    @property
    def total(self) -> int:
        return len(self.contact_ids)

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)
