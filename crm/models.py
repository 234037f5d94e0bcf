"""An account's SuperOffice connection, the CRM call log and cached pick lists."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from emhub.fields import EncryptedTextField
from emhub.models import Account


class SuperOfficeConnection(models.Model):
    """How the hub reaches one account's SuperOffice tenant. Secrets are encrypted at rest."""

    class AuthMode(models.TextChoices):
        ONSITE = "onsite", "On-site (user name and password)"
        ONLINE = "online", "SuperOffice CRM Online (system user)"

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, related_name="superoffice_connection"
    )
    base_url = models.URLField(
        "NetServer address",
        max_length=300,
        help_text="The tenant's web services address, ending in /Remote/Services88/.",
    )
    auth_mode = models.CharField(max_length=10, choices=AuthMode.choices, default=AuthMode.ONSITE)
    username = models.CharField(max_length=200, blank=True)
    password = EncryptedTextField(blank=True)
    application_token = EncryptedTextField(blank=True)
    system_user_token = EncryptedTextField(blank=True)
    private_key = EncryptedTextField(blank=True)
    context_identifier = models.CharField(max_length=100, blank=True)
    use_tenant_wsdl = models.BooleanField(
        default=False,
        help_text="Load the tenant's own WSDL (cached) instead of the hub's bundled one.",
    )

    ticket = EncryptedTextField(blank=True)
    ticket_expires_at = models.DateTimeField(null=True, blank=True)

    # The last configuration problem (bad credentials, wrong address): shown to the
    # admin; CRM work of the account stops while it is set.
    config_error = models.TextField(blank=True)
    config_error_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_verified_at = models.DateTimeField(null=True, blank=True)
    verified_as = models.CharField(max_length=300, blank=True)

    legal_basis_sync_enabled = models.BooleanField(default=False)
    allow_company_creation = models.BooleanField(default=False)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"SuperOffice connection of {self.account}"

    @property
    def has_config_error(self) -> bool:
        return bool(self.config_error)


class CrmCall(models.Model):
    """One SOAP call to SuperOffice: the audit trail and the operator's debugging tool.

    Request and response excerpts are redacted before they get here: no tickets,
    passwords, application tokens or signed tokens.
    """

    class Outcome(models.TextChoices):
        OK = "ok", "OK"
        TRANSIENT = "transient", "Transient error"
        PERMANENT = "permanent", "Refused"
        NOT_FOUND = "not_found", "Not found"
        CONFIGURATION = "configuration", "Configuration error"
        TICKET_REFUSED = "ticket_refused", "Ticket refused"
        ERROR = "error", "Error"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="crm_calls")
    agent = models.CharField(max_length=60)
    operation = models.CharField(max_length=100)
    started_at = models.DateTimeField(db_index=True)
    duration_ms = models.PositiveIntegerField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    request_excerpt = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)
    correlation = models.CharField(max_length=200, blank=True, db_index=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["account", "-started_at"], name="crmcall_account_started")]

    def __str__(self) -> str:
        return f"{self.agent}.{self.operation} {self.outcome}"


class CrmListCache(models.Model):
    """A pick list read from SuperOffice (sources, ratings...), kept for a while."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="crm_lists")
    list_name = models.CharField(max_length=40)
    items = models.JSONField(default=list)
    fetched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "list_name"], name="crmlist_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.list_name} of {self.account}"
