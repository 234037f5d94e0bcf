"""Legal basis per contact and purpose: an append-only history, its current state,
the sync cycles that keep it in step with SuperOffice, and the per-account lease
that lets only one cycle run at a time.

Between cycles both sides push: SuperOffice through the account's webhook (each
delivery kept once in ``SuperOfficeEvent``), the hub through its outbox
(``ConsentPush``); one worker per account at a time (``ConsentPushLease``) drains both."""

from django.db import models
from django.utils import timezone

from campaigns.models import Contact
from emhub.fields import EncryptedTextField
from emhub.models import Account

# WITHDRAWN is SuperOffice's legal-base key for a withdrawn consent. A withdrawal is
# kept as a change with this key (and its own time), never as a deleted row: a
# deletion leaves no timestamp to compare (see the reference notes on ConsentPerson).
from .rules import WITHDRAWN


class Purpose(models.TextChoices):
    # Keys as SuperOffice knows them; display names are the hub's.
    STORE = "STORE", "Store and process"
    EMARKETING = "EMARKETING", "Marketing sendouts"


class Origin(models.TextChoices):
    HUB = "hub", "Hub"
    SUPEROFFICE = "superoffice", "SuperOffice"
    API = "api", "API"
    FORM = "form", "Form"
    IMPORT = "import", "Import"
    # The recipient of a sendout, through the unsubscribe link or the mail client's
    # one-click unsubscribe (campaigns.unsubscribe).
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe link"


class ConsentChange(models.Model):
    """One change of a contact's legal basis for one purpose. Never updated or deleted."""

    # Indexes are few on purpose: an import merges a million rows, and every index
    # costs on each. The composite index below leads with the account, so the
    # account's own FK index would only duplicate it.
    # No database-level constraint either: every write goes through the contact,
    # whose own constraint ties it to the account, and the ORM still cascades.
    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        related_name="consent_changes",
        db_index=False,
        db_constraint=False,
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consent_changes")
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    # A SuperOffice legal-base key (61A, 61B, 61F, …) or WITHDRAWN.
    legal_basis = models.CharField(max_length=40)
    # A SuperOffice consent-source key (USER, WEBFORM, API, …) or free text from the caller.
    source = models.CharField(max_length=60, blank=True)
    # When the consent changed, on whichever side it changed; decisions compare this.
    changed_at = models.DateTimeField()
    # When the hub stored the row (differs from changed_at for changes read from SuperOffice).
    recorded_at = models.DateTimeField(default=timezone.now)
    origin = models.CharField(max_length=20, choices=Origin.choices)
    # Why the hub holds this value: the decision text for synced rows, the caller's note otherwise.
    reason = models.TextField(blank=True)
    # The SuperOffice person the change was read from, for changes that came from there.
    superoffice_person_id = models.BigIntegerField(null=True, blank=True)
    # Not indexed: cycles are kept, so the SET NULL on deletion never scans in practice.
    cycle = models.ForeignKey(
        "ConsentSyncCycle",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["account", "contact", "purpose", "-changed_at"])]

    def __str__(self) -> str:
        when = f"{self.changed_at:%Y-%m-%d %H:%M}"
        return f"{self.purpose} {self.legal_basis} for {self.contact_id} at {when}"

    @property
    def is_withdrawn(self) -> bool:
        return self.legal_basis == WITHDRAWN


class CurrentConsent(models.Model):
    """The latest change per contact and purpose, kept by the services in the same
    transaction as the change, so the current state is one indexed lookup."""

    # The unique (contact, purpose) constraint serves lookups by contact, and the
    # (account, updated_at) index those by account; changes are never deleted. Only
    # the contact is a database-level constraint: a bulk merge checks each one at
    # commit, and the others follow from it (see ConsentChange).
    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        related_name="current_consents",
        db_index=False,
        db_constraint=False,
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="current_consents", db_index=False
    )
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    change = models.ForeignKey(
        ConsentChange,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    legal_basis = models.CharField(max_length=40)
    source = models.CharField(max_length=60, blank=True)
    changed_at = models.DateTimeField()
    origin = models.CharField(max_length=20, choices=Origin.choices)
    # Moves on every change; an incremental cycle looks at rows touched since its watermark.
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["purpose"]
        constraints = [
            models.UniqueConstraint(fields=["contact", "purpose"], name="current_consent_unique"),
        ]
        indexes = [models.Index(fields=["account", "updated_at"])]

    def __str__(self) -> str:
        return f"{self.purpose} {self.legal_basis} for {self.contact_id}"

    @property
    def is_withdrawn(self) -> bool:
        return self.legal_basis == WITHDRAWN


class ConsentSyncCycle(models.Model):
    """One sync run for one account, with its figures."""

    class Kind(models.TextChoices):
        INCREMENTAL = "incremental", "Incremental"
        FULL = "full", "Full reconciliation"
        ON_DEMAND = "on_demand", "On demand"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Partial"
        FAILED = "failed", "Failed"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="consent_cycles")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # SuperOffice changes at or after (watermark_from - overlap) were read…
    watermark_from = models.DateTimeField(null=True, blank=True)
    # …and the next incremental cycle starts from here. Set only when the cycle
    # completed, so a failed cycle's changes are read again.
    watermark = models.DateTimeField(null=True, blank=True)
    contacts_checked = models.PositiveIntegerField(default=0)
    written_to_superoffice = models.PositiveIntegerField(default=0)
    written_to_hub = models.PositiveIntegerField(default=0)
    conflicts = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    crm_calls = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["account", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.started_at:%Y-%m-%d %H:%M} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        return None if self.duration_ms is None else self.duration_ms / 1000


class ConsentDecision(models.Model):
    """What a cycle or a push decided for one contact and purpose, and why."""

    class Trigger(models.TextChoices):
        CYCLE = "cycle", "Sync cycle"
        SUPEROFFICE_PUSH = "superoffice_push", "SuperOffice's webhook"
        HUB_PUSH = "hub_push", "The hub's change"

    class Action(models.TextChoices):
        NONE = "none", "No change"
        WRITE_SUPEROFFICE = "write_superoffice", "Written to SuperOffice"
        WRITE_HUB = "write_hub", "Written to the hub"

    class Outcome(models.TextChoices):
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="consent_decisions")
    # A push decides outside any cycle.
    cycle = models.ForeignKey(
        ConsentSyncCycle,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="decisions",
    )
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.CYCLE)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consent_decisions")
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    action = models.CharField(max_length=20, choices=Action.choices)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.DONE)
    reason = models.TextField()
    # The two sides as the cycle saw them.
    hub_legal_basis = models.CharField(max_length=40, blank=True)
    hub_changed_at = models.DateTimeField(null=True, blank=True)
    superoffice_legal_basis = models.CharField(max_length=40, blank=True)
    superoffice_changed_at = models.DateTimeField(null=True, blank=True)
    # The person that counted (the oldest among those sharing the email) and was written.
    superoffice_person_id = models.BigIntegerField(null=True, blank=True)
    result_legal_basis = models.CharField(max_length=40, blank=True)
    # Several SuperOffice persons share the email and disagree.
    conflict = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["account", "cycle"]),
            models.Index(fields=["account", "contact", "-decided_at"]),
            # An incremental cycle finds contacts by the person a change happened on.
            models.Index(fields=["account", "superoffice_person_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} {self.action} for {self.contact_id}"


class ConsentSyncLease(models.Model):
    """Who runs the account's cycle now. Taken with a conditional UPDATE (holder empty
    or expired), which holds on PostgreSQL and SQLite alike, and renewed while the
    cycle runs; a crashed worker's lease simply expires."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="consent_lease")
    holder = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    acquired_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.account_id}: {self.holder or 'free'}"


# -- pushes between cycles -------------------------------------------------------------


class SuperOfficeWebhook(models.Model):
    """The account's webhook in SuperOffice, which pushes its persons' consent changes to
    the hub's receiver. Kept after sync is turned off (state REMOVED), so a delivery that
    still arrives is answered 410 Gone, which makes SuperOffice disable it."""

    class State(models.TextChoices):
        REGISTERING = "registering", "Being registered"
        ACTIVE = "active", "Active"
        FAILING = "failing", "Failing"
        DISABLED = "disabled", "Disabled by SuperOffice"
        STOPPED = "stopped", "Stopped in SuperOffice"
        MISSING = "missing", "Gone from SuperOffice"
        NOT_REGISTERED = "not_registered", "Not registered"
        REMOVING = "removing", "Being removed"
        REMOVED = "removed", "Removed"

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, related_name="superoffice_webhook"
    )
    # The receiver's address is /hooks/superoffice/<token>/: a random name for the account
    # that says nothing about it. The signature, not the address, proves the sender.
    token = models.CharField(max_length=64, unique=True)
    # The HMAC key SuperOffice signs every delivery with.
    secret = EncryptedTextField()
    webhook_id = models.PositiveIntegerField(null=True, blank=True)
    name = models.CharField(max_length=200)
    target_url = models.CharField(max_length=500, blank=True)
    events = models.JSONField(default=list)
    state = models.CharField(max_length=20, choices=State.choices, default=State.NOT_REGISTERED)
    # WebhookState as SuperOffice last reported it (Active, Stopped, TooManyErrors).
    superoffice_state = models.CharField(max_length=20, blank=True)
    # Why the last registration, removal or check failed (shown to the admin).
    error = models.TextField(blank=True)
    # SuperOffice's last delivery error (GetLastError) and when the hub first saw it; an
    # error already there when the hub (re-)registered is acknowledged, not "failing".
    superoffice_error = models.TextField(blank=True)
    superoffice_error_seen_at = models.DateTimeField(null=True, blank=True)
    acknowledged_error = models.TextField(blank=True)
    consecutive_errors = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # When the sweeper tries a failed registration or removal again.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    registered_at = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    last_delivery_at = models.DateTimeField(null=True, blank=True)
    deliveries = models.PositiveIntegerField(default=0)
    # Deliveries refused for a missing or wrong signature.
    refused = models.PositiveIntegerField(default=0)
    last_refused_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Webhook of {self.account_id} ({self.state})"

    @property
    def is_receiving(self) -> bool:
        """SuperOffice may deliver to it: the receiver verifies and stores."""
        return self.state in (self.State.ACTIVE, self.State.FAILING, self.State.REGISTERING)


class PushStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class SuperOfficeEvent(models.Model):
    """One delivery of the account's webhook, kept once by its EventId. The payload names
    the person only, so the worker reads the person's consents from SuperOffice."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="superoffice_events", db_index=False
    )
    event_id = models.CharField(max_length=64)
    event = models.CharField(max_length=100)
    person_id = models.BigIntegerField()
    # The event's Timestamp as SuperOffice sent it (when the change happened there).
    occurred_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=PushStatus.choices, default=PushStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    # What the worker made of it (the decisions carry the details).
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "event_id"], name="superoffice_event_once")
        ]
        indexes = [
            models.Index(fields=["account", "status", "next_attempt_at"]),
            models.Index(fields=["status", "next_attempt_at"], name="superoffice_event_sweep"),
        ]

    def __str__(self) -> str:
        return f"{self.event} for person {self.person_id} ({self.status})"


class ConsentPush(models.Model):
    """A contact whose legal basis the hub changed, waiting to be written to SuperOffice.
    At most one pending row per contact: later changes before the worker gets to it are
    decided together, on the hub's state at that time."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="consent_pushes", db_index=False
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="consent_pushes", db_index=False
    )
    # The change that queued it (later ones join it while it waits).
    change = models.ForeignKey(
        ConsentChange,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    status = models.CharField(max_length=10, choices=PushStatus.choices, default=PushStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact"],
                condition=models.Q(status="pending"),
                name="consent_push_one_pending",
            )
        ]
        indexes = [
            models.Index(fields=["account", "status", "next_attempt_at"]),
            models.Index(fields=["status", "next_attempt_at"], name="consent_push_sweep"),
        ]

    def __str__(self) -> str:
        return f"Push of contact {self.contact_id} ({self.status})"


class ConsentPushLease(models.Model):
    """Who drains the account's pushes now: one worker at a time, so deliveries for one
    person are read once and the two directions never race on a contact. Taken with a
    conditional UPDATE like ConsentSyncLease; a dead worker's lease expires."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="push_lease")
    holder = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Set when a wake-up was published and no drain has begun since: further deliveries
    # and pushes of the burst leave their rows to that drain instead of publishing again.
    # A drain clears it when it takes the lease and when it lets it go.
    wake_requested_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.account_id}: {self.holder or 'free'}"
