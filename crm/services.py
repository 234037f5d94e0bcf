"""Writes of the crm app, and the way other apps get a SuperOffice client.

Other apps call ``client_for_account(account, correlation=...)`` and use the
returned ``NetServerClient``; they never see zeep, tickets or the call log.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from emhub.models import Account

from .call_cap import call_slots_for
from .call_log import call_log_record
from .client import CallRecord, ConnectionSettings, NetServerClient
from .errors import ConfigurationCrmError, CrmError, PermanentCrmError
from .http import address_allowed
from .models import CrmListCache, SuperOfficeConnection
from .types import Company, ListItem, NewCompany, Person, Principal

LIST_TTL = timedelta(seconds=getattr(settings, "CRM_LIST_TTL_SECONDS", 900))


# -- addresses ---------------------------------------------------------------------


def netserver_url_normalize(*, url: str) -> str:
    """Accept the tenant root or the Services88 address; return ".../Remote/Services88/"."""
    url = url.strip()
    if not url.endswith("/"):
        url += "/"
    if not url.lower().endswith("/remote/services88/"):
        url += "Remote/Services88/"
    return url


def netserver_url_validate(*, url: str, resolve: bool = True) -> None:
    """Refuse addresses a tenant's settings must not make the hub call.

    Only globally routable addresses are accepted (crm.http.address_allowed: no loopback,
    private, link-local, shared 100.64.0.0/10, 192.0.0.0/24 or reserved ranges; the hub
    would otherwise be a proxy into its own network) unless the operator allows them with
    CRM_ALLOW_PRIVATE_ADDRESSES (the embedded default and the tests run the simulator
    on loopback). Plain http is accepted only where private addresses are allowed.

    This check tells the admin early; the one that holds is made again by crm.http each
    time a connection is opened, so a name that later resolves elsewhere is refused too.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            "Enter an http(s) address, e.g. https://sod.superoffice.com/Cust12345/"
        )
    if parts.username or parts.password:
        raise ValidationError("The address may not carry a user name or password.")
    if settings.CRM_ALLOW_PRIVATE_ADDRESSES:
        return
    if parts.scheme != "https":
        raise ValidationError("Use https for SuperOffice.")
    host = parts.hostname
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".local"):
        raise ValidationError("Internal addresses are not allowed.")
    try:
        addresses = (
            [host]
            if _is_ip(host)
            else (
                [info[4][0] for info in socket.getaddrinfo(host, parts.port or 443)]
                if resolve
                else []
            )
        )
    except OSError as exc:
        raise ValidationError(f"The host {host} cannot be resolved.") from exc
    if not all(address_allowed(a) for a in addresses):
        raise ValidationError("Internal addresses are not allowed.")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# -- tickets and the call log --------------------------------------------------------


class _ConnectionTicketStore:
    """Keeps the account's ticket on its connection row (encrypted, with its expiry)."""

    def __init__(self, connection: SuperOfficeConnection) -> None:
        self.connection_id = connection.pk
        self._value = (
            (connection.ticket, connection.ticket_expires_at)
            if connection.ticket and connection.ticket_expires_at
            else None
        )

    def load(self) -> tuple[str, datetime] | None:
        return self._value

    def save(self, *, ticket: str, expires_at: datetime) -> None:
        self._value = (ticket, expires_at)
        SuperOfficeConnection.objects.filter(pk=self.connection_id).update(
            ticket=ticket, ticket_expires_at=expires_at
        )

    def clear(self) -> None:
        self._value = None
        SuperOfficeConnection.objects.filter(pk=self.connection_id).update(
            ticket="", ticket_expires_at=None
        )


def _recorder_for(account: Account, connection_id: int):
    """The client's recorder: each call goes to the call log (crm.call_log), which writes
    it now or, in a worker process, buffers it and writes calls in bulk."""

    def record(call: CallRecord) -> None:
        call_log_record(account_id=account.pk, connection_id=connection_id, call=call)

    return record


def connection_settings_of(connection: SuperOfficeConnection) -> ConnectionSettings:
    return ConnectionSettings(
        base_url=connection.base_url,
        auth_mode=connection.auth_mode,
        application_token=connection.application_token,
        username=connection.username,
        password=connection.password,
        system_user_token=connection.system_user_token,
        private_key_pem=connection.private_key,
        context_identifier=connection.context_identifier,
        use_tenant_wsdl=connection.use_tenant_wsdl,
    )


def client_for_account(
    account: Account,
    *,
    correlation: str = "",
    connection: SuperOfficeConnection | None = None,
) -> NetServerClient:
    """The SuperOffice client of an account. Raises ConfigurationCrmError without a connection.

    Every call is logged as a CrmCall row carrying ``correlation`` (e.g. a run id).
    ``connection`` is the account's connection row when the caller has just read it (the
    engine loads it with the run it claimed), saving the query.
    """
    if connection is None or connection.account_id != account.pk:
        connection = SuperOfficeConnection.objects.filter(account=account).first()
    if connection is None:
        raise ConfigurationCrmError("This account has no SuperOffice connection yet")
    try:
        # No DNS here: crm.http checks every address it connects to; this catches edits
        # that bypassed the form (IP literals and localhost) with a clear message.
        netserver_url_validate(url=connection.base_url, resolve=False)
    except ValidationError as exc:
        raise ConfigurationCrmError(f"Refused SuperOffice address: {exc.messages[0]}") from exc
    return NetServerClient(
        connection=connection_settings_of(connection),
        ticket_store=_ConnectionTicketStore(connection),
        recorder=_recorder_for(account, connection.pk),
        correlation=correlation[:200],
        timeout=settings.CRM_TIMEOUT_SECONDS,
        max_concurrent_calls=getattr(settings, "CRM_MAX_CONCURRENT_CALLS_PER_ACCOUNT", 4),
        call_slots=call_slots_for(base_url=connection.base_url),
        slot_wait_seconds=getattr(settings, "CRM_CALL_SLOT_WAIT_SECONDS", None),
    )


# -- the connection ------------------------------------------------------------------


def connection_save(
    *,
    account: Account,
    base_url: str,
    auth_mode: str,
    username: str = "",
    password: str = "",
    application_token: str = "",
    system_user_token: str = "",
    private_key: str = "",
    context_identifier: str = "",
    use_tenant_wsdl: bool = False,
    allow_company_creation: bool | None = None,
    legal_basis_sync_enabled: bool | None = None,
) -> SuperOfficeConnection:
    """Create or update the account's connection. A blank secret keeps the stored one."""
    base_url = netserver_url_normalize(url=base_url)
    netserver_url_validate(url=base_url)
    connection = SuperOfficeConnection.objects.filter(account=account).first()
    if connection is None:
        connection = SuperOfficeConnection(account=account)
    connection.base_url = base_url
    connection.auth_mode = auth_mode
    connection.username = username
    connection.context_identifier = context_identifier
    connection.use_tenant_wsdl = use_tenant_wsdl
    for field, value in (
        ("password", password),
        ("application_token", application_token),
        ("system_user_token", system_user_token),
        ("private_key", private_key),
    ):
        if value:
            setattr(connection, field, value)
    if allow_company_creation is not None:
        connection.allow_company_creation = allow_company_creation
    if legal_basis_sync_enabled is not None:
        connection.legal_basis_sync_enabled = legal_basis_sync_enabled
    # New settings: the old ticket and the old verdict no longer apply.
    connection.ticket = ""
    connection.ticket_expires_at = None
    connection.config_error = ""
    connection.config_error_at = None
    connection.full_clean(exclude=["account"])
    connection.save()
    return connection


@dataclass(frozen=True)
class ConnectionTestResult:
    ok: bool
    message: str
    principal: Principal | None = None


def connection_test(*, account: Account) -> ConnectionTestResult:
    """Sign in afresh and report who the hub is in SuperOffice, or why it cannot sign in."""
    try:
        client = client_for_account(account, correlation="test-connection")
        principal = client.whoami(fresh=True)
    except ConfigurationCrmError as exc:
        return ConnectionTestResult(ok=False, message=f"SuperOffice refused the hub: {exc}")
    except CrmError as exc:
        return ConnectionTestResult(
            ok=False, message=f"SuperOffice could not be reached or answered with an error: {exc}"
        )
    label = principal.full_name or principal.name or f"associate {principal.associate_id}"
    SuperOfficeConnection.objects.filter(account=account).update(
        config_error="",
        config_error_at=None,
        last_verified_at=timezone.now(),
        verified_as=f"{label} (associate {principal.associate_id})"[:300],
    )
    # The connection works again: work paused after configuration errors goes on now,
    # not when the pause would have run out.
    from automations.services import account_crm_resume

    account_crm_resume(account=account)
    return ConnectionTestResult(
        ok=True,
        message=f"Signed in as {label} (associate {principal.associate_id}).",
        principal=principal,
    )


# -- cached pick lists ----------------------------------------------------------------


def crm_list_items(*, account: Account, list_name: str, refresh: bool = False) -> list[ListItem]:
    """A SuperOffice pick list (see crm.client.LIST_SOURCES), cached per account for LIST_TTL."""
    cached = CrmListCache.objects.filter(account=account, list_name=list_name).first()
    if cached is not None and not refresh and cached.fetched_at > timezone.now() - LIST_TTL:
        return [ListItem(**item) for item in cached.items]
    items = client_for_account(account, correlation=f"list:{list_name}").list_items(
        list_name=list_name
    )
    CrmListCache.objects.update_or_create(
        account=account,
        list_name=list_name,
        defaults={"items": [asdict(item) for item in items], "fetched_at": timezone.now()},
    )
    return items


def crm_companies_search(*, account: Account, text: str, limit: int = 20) -> list[Company]:
    """SuperOffice companies whose name contains ``text``, by name (the company picker)."""
    return client_for_account(account, correlation="picker:companies").search_companies(
        text=text, limit=limit
    )


def crm_company_get(*, account: Account, company_id: int) -> Company:
    """The SuperOffice company ``company_id``; NotFoundCrmError when there is none."""
    return client_for_account(account, correlation="picker:companies").get_company(
        company_id=company_id
    )


def crm_person_create(
    *,
    account: Account,
    first_name: str,
    last_name: str,
    email: str,
    phone: str = "",
    mobile: str = "",
    title: str = "",
    company_id: int | None = None,
    new_company: NewCompany | None = None,
    correlation: str = "",
) -> Person:
    """Create a SuperOffice person; a new company only where the admin allows it."""
    connection = SuperOfficeConnection.objects.filter(account=account).first()
    if new_company is not None and (connection is None or not connection.allow_company_creation):
        raise PermanentCrmError("Company creation is switched off for this account")
    return client_for_account(account, correlation=correlation).create_person(
        first_name=first_name,
        last_name=last_name,
        email=email,
        phone=phone,
        mobile=mobile,
        title=title,
        company_id=company_id,
        new_company=new_company,
    )
