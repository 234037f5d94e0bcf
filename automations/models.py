"""Automation definitions, the run ledger (the durable queue of CRM work) and per-account
automation settings.

The ledger, not the broker, is the source of truth: a run row is written in the same
transaction as its event, a Celery message only wakes a worker up, and a worker claims
the row with a conditional UPDATE and a lease before it calls SuperOffice.
"""

from django.db import models
from django.utils import timezone

from campaigns.models import Campaign, Contact, Event, EventType, Form, TrackedLink
from emhub.models import Account


class AutomationType(models.TextChoices):
    CREATE_SALE = "create_sale", "Create new sale"
    CREATE_TASK = "create_task", "Create a task"
    NOTIFY_SALES_REP = "notify_sales_rep", "Notify sales rep"
    SET_INTEREST = "set_interest", "Set interest"
    UNSET_INTEREST = "unset_interest", "Unset interest"
    ADD_TO_PROJECT = "add_to_project", "Add to project"
    REMOVE_FROM_PROJECT = "remove_from_project", "Remove from project"
    ADD_TO_SELECTION = "add_to_selection", "Add to selection"
    REMOVE_FROM_SELECTION = "remove_from_selection", "Remove from selection"
    # Link actions (automations.link_actions); usable on any trigger.
    SET_FIELD = "set_field", "Set a field of the person"
    FOLLOW_UP = "follow_up", "Create a follow-up (meeting or task)"
    CREATE_REQUEST = "create_request", "Create a request (ticket)"
    RUN_SCRIPT = "run_script", "Run a CRMScript"


class Automation(models.Model):
    """When a contact does `trigger_event_type` in `campaign`, do `type` in SuperOffice.

    `settings` holds the SuperOffice ids the marketer picked (see automations.forms for
    which keys each type uses): source_id, rating_id, activity_type_id, description,
    interest_ids, project_id, selection_id, owner_id (null = the company's owner),
    and for create_sale optionally extra_selection_id / extra_project_id.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="automations")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="automations")
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=30, choices=AutomationType.choices)
    trigger_event_type = models.CharField(max_length=30, choices=EventType.choices)
    trigger_link = models.ForeignKey(
        TrackedLink, null=True, blank=True, on_delete=models.CASCADE, related_name="automations"
    )
    trigger_form = models.ForeignKey(
        Form, null=True, blank=True, on_delete=models.CASCADE, related_name="automations"
    )
    settings = models.JSONField(default=dict, blank=True)
    once_per_contact = models.BooleanField(default=False)
    is_enabled = models.BooleanField(default=True)
    # Deleting keeps the row so the run history (and the CRM objects it names) stays readable.
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            models.Index(
                fields=["campaign", "trigger_event_type"],
                name="automation_trigger_idx",
                condition=models.Q(is_enabled=True, deleted_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    WAITING_FOR_MATCH = "waiting_for_match", "Waiting for match"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class ErrorKind(models.TextChoices):
    TRANSIENT = "transient", "Transient"
    PERMANENT = "permanent", "Permanent"
    CONFIGURATION = "configuration", "Configuration"
    INTERNAL = "internal", "Internal"


class Run(models.Model):
    """One execution of one automation for one event: a row of the durable work queue."""

    # No single-column indexes on account, automation and contact: the composite indexes
    # below start with them, and every index costs on the ingest path's bulk insert.
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="automation_runs", db_index=False
    )
    automation = models.ForeignKey(
        Automation, on_delete=models.CASCADE, related_name="runs", db_index=False
    )
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="automation_runs")
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="automation_runs", db_index=False
    )
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.PENDING)
    # Claims so far; more than one means an earlier attempt's outcome may be unknown.
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=200, blank=True)
    # When a wake-up message was last published; null = not (successfully) published.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    error_kind = models.CharField(max_length=20, choices=ErrorKind.choices, blank=True)
    # Deterministic from (account, event, automation): a re-ingested event maps to the same
    # run, and the key is written into the CRM object so a retry can find what it made.
    key = models.CharField(max_length=40, unique=True)
    # "<automation>:<contact>" when the automation runs once per contact, else null;
    # unique, so a second run for the same contact cannot be stored.
    once_key = models.CharField(max_length=60, null=True, blank=True, unique=True)
    crm_object_type = models.CharField(max_length=30, blank=True)
    crm_object_id = models.BigIntegerField(null=True, blank=True)
    # What the action answered, when it answers something (a CRMScript's printed output).
    output = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    waiting_since = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="run_sweep_idx"),
            models.Index(fields=["account", "-created_at"], name="run_account_idx"),
            models.Index(
                fields=["account", "status", "-created_at"], name="run_account_status_idx"
            ),
            models.Index(fields=["automation", "-created_at"], name="run_automation_idx"),
            models.Index(fields=["contact", "status"], name="run_contact_status_idx"),
            models.Index(
                fields=["lease_expires_at"],
                name="run_running_lease_idx",
                condition=models.Q(status="running"),
            ),
            # An account's held-back runs (due, no wake-up out), oldest first: what a lane
            # claims next and a top-up publishes. Without it each claim read and sorted
            # the account's whole backlog to pick its oldest few.
            models.Index(
                fields=["account", "next_attempt_at", "id"],
                name="run_held_idx",
                condition=models.Q(status="pending", dispatched_at__isnull=True),
            ),
            # The Manage Automations Queue and the Lead Report read the waiting runs only:
            # partial, so the ingest path's inserts of pending runs do not touch it. On
            # PostgreSQL it also covers the event (migration 0004), so grouping the runs
            # by contact and joining their events is an index-only scan; not declared
            # here, as SQLite has no covering indexes and would warn on every check.
            models.Index(
                fields=["account", "contact", "waiting_since"],
                name="run_waiting_idx",
                condition=models.Q(status="waiting_for_match"),
            ),
            # Event details: the runs that made a SuperOffice object. Partial: runs that
            # made nothing (most, and every new one) are not in it.
            models.Index(
                fields=["account", "crm_object_type", "crm_object_id"],
                name="run_crm_object_idx",
                condition=models.Q(crm_object_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"Run {self.key} ({self.status})"

    # What a person calls the object the run made. SuperOffice keeps tasks, meetings and
    # done activities all as appointments; the automation's type says which it was.
    OBJECT_LABELS = {
        "sale": "Sale",
        "person": "Person",
        "project": "Project",
        "selection": "Selection",
        "ticket": "Request",
        "script": "Script",
    }

    @property
    def crm_object_label(self) -> str:
        if self.crm_object_type != "appointment":
            return self.OBJECT_LABELS.get(self.crm_object_type, self.crm_object_type.title())
        automation = self.automation
        if automation.type == AutomationType.CREATE_TASK:
            return "Task"
        if automation.type == AutomationType.NOTIFY_SALES_REP:
            return "Activity"
        if automation.type == AutomationType.FOLLOW_UP:
            kind = (automation.settings or {}).get("follow_up_kind")
            return "Task" if kind == "task" else "Meeting"
        return "Activity"

    @property
    def marker(self) -> str:
        """The tag written into the sale text / appointment description this run creates."""
        return f"[emhub:{self.key}]"


class AutomationSettings(models.Model):
    """Per-account switches of the automation engine, and the CRM pause an admin sees."""

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, related_name="automation_settings"
    )
    # Off by default: an email shared by one person today may be shared by two tomorrow,
    # so matching automatically is a choice the admin makes.
    auto_match_single_email = models.BooleanField(default=False)
    # Set when SuperOffice refused the account's configuration (credentials, address):
    # runs are held until `crm_paused_until`, then one run probes whether it was fixed.
    crm_paused_at = models.DateTimeField(null=True, blank=True)
    crm_paused_until = models.DateTimeField(null=True, blank=True)
    crm_pause_reason = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Automation settings of {self.account}"

    @property
    def is_crm_paused(self) -> bool:
        return self.crm_paused_at is not None
