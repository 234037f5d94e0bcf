"""The SuperOffice NetServer SOAP client. The only module in the hub that imports zeep.

It returns the plain dataclasses of ``crm.types`` and raises only ``crm.errors``.
Every SOAP call has a timeout, is described by a ``CallRecord`` handed to the
recorder (the call log), and parses XML with no DTDs, entities or external
references. zeep ``Client`` objects are built once per (WSDL, timeout) per process;
tickets are cached by the ``TicketStore`` and renewed once when NetServer refuses one.

Operation docs: https://docs.superoffice.com/en/api/reference/soap/Services88/
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
import zeep
import zeep.exceptions
from lxml import etree
from requests.adapters import HTTPAdapter
from zeep.cache import InMemoryCache
from zeep.transports import Transport

from . import auth
from .errors import (
    ConfigurationCrmError,
    CrmError,
    NotFoundCrmError,
    PermanentCrmError,
    TransientCrmError,
)
from .types import (
    UNASSIGNED,
    Consent,
    CreatedTicket,
    Interest,
    ListItem,
    Member,
    MemberPage,
    NewCompany,
    Person,
    PersonMatch,
    Principal,
)
from .wsdl import spec

BUNDLED_WSDL_DIR = Path(__file__).resolve().parent / "wsdl"
PARTNER_AGENT = "PartnerSystemUserService"
PARTNER_BINDING = f"{{{spec.PARTNER_NS}}}BasicHttpBinding_IPartnerSystemUserService"
PARTNER_PATH = "/login/services/PartnerSystemUserService.svc"
# "The ticket is short-lived and will only last 6 hours" (SuperOffice, system user docs).
TICKET_LIFETIME = timedelta(hours=6)
TICKET_SAFETY_MARGIN = timedelta(minutes=10)
EXCERPT_CHARS = 2000

# Read NetServer's answers tolerantly: its carriers hold more elements than the hub's WSDL
# names (and later versions add more), so elements are matched by name and the rest are
# ignored, or kept where a type says so (spec.OPEN_ENDED). zeep ties that to lxml's
# recover mode; _CapturingTransport parses every answer strictly first, so a damaged
# reply is still an error, never half-read.
ZEEP_SETTINGS = zeep.Settings(
    strict=False,
    xsd_ignore_sequence_order=True,
    xml_huge_tree=False,
    forbid_dtd=True,
    forbid_entities=True,
    forbid_external=True,
)

# Process-wide counters, read by the benchmark and the tests.
STATS = {"wsdl_loads": 0, "authentications": 0, "calls": 0}

LIST_SOURCES: dict[str, tuple[str, str]] = {
    "sources": ("MDO", "source"),
    "ratings": ("MDO", "prob"),
    "activity_types": ("MDO", "task"),
    "interests": ("MDO", "persint"),
    "selections": ("MDO", "selection"),
    "projects": ("MDO", "project"),
    "associates": ("MDO", "associate"),
    "user_groups": ("MDO", "usergroup"),
    "countries": ("MDO", "country"),
    "categories": ("MDO", "category"),
    "businesses": ("MDO", "business"),
    "ticket_priorities": ("MDO", "ticketpriority"),
    "ticket_categories": ("MDO", "ejcategory"),
    # CRMScripts a link action may run. The MDO list name is not in the reference notes:
    # verify against a real tenant.
    "scripts": ("MDO", "ejscript"),
    # The person's user-defined and extra fields, with their types.
    "person_fields": ("UserDefinedFieldInfo", "person"),
    "legal_bases": ("List", "GetLegalBases"),
    "consent_purposes": ("List", "GetConsentPurposes"),
}


# -- configuration and collaborators ------------------------------------------------


@dataclass(frozen=True)
class ConnectionSettings:
    base_url: str  # ".../Remote/Services88/"
    auth_mode: str  # "onsite" | "online"
    application_token: str = ""
    username: str = ""
    password: str = ""
    system_user_token: str = ""
    private_key_pem: str = ""
    context_identifier: str = ""
    use_tenant_wsdl: bool = False

    @property
    def partner_service_url(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}{PARTNER_PATH}"

    def secrets(self) -> list[str]:
        return [s for s in (self.application_token, self.password, self.system_user_token) if s]


class TicketStore(Protocol):
    def load(self) -> tuple[str, datetime] | None: ...
    def save(self, *, ticket: str, expires_at: datetime) -> None: ...
    def clear(self) -> None: ...


class MemoryTicketStore:
    def __init__(self) -> None:
        self._value: tuple[str, datetime] | None = None

    def load(self) -> tuple[str, datetime] | None:
        return self._value

    def save(self, *, ticket: str, expires_at: datetime) -> None:
        self._value = (ticket, expires_at)

    def clear(self) -> None:
        self._value = None


@dataclass
class CallRecord:
    agent: str
    operation: str
    started_at: datetime
    duration_ms: int
    outcome: str  # ok | transient | permanent | not_found | configuration | ticket_refused
    http_status: int | None
    error: str
    request_excerpt: str
    response_excerpt: str
    correlation: str


CallRecorder = Callable[[CallRecord], None]
WsdlLocator = Callable[[str], str]


def bundled_wsdl(agent: str) -> str:
    return str(BUNDLED_WSDL_DIR / f"{agent}.wsdl")


# -- transport and process-wide zeep caches -----------------------------------------


class _HttpStatusError(Exception):
    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(status)
        self.status = status
        self.retry_after = retry_after


class _CapturingTransport(Transport):
    """Keeps the raw request/response bytes of the current thread's call for the log."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.capture = threading.local()

    def post(self, address: str, message: bytes, headers: dict[str, str]) -> Any:
        self.capture.request = message
        self.capture.response = b""
        self.capture.status = None
        response = super().post(address, message, headers)
        self.capture.response = response.content
        self.capture.status = response.status_code
        if response.status_code in (404, 429, 502, 503, 504):
            raise _HttpStatusError(response.status_code, _retry_after(response))
        if response.content:
            _ensure_well_formed(response.content)
        return response


_STRICT_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)


def _ensure_well_formed(content: bytes) -> None:
    try:
        etree.fromstring(content, _STRICT_PARSER)
    except etree.XMLSyntaxError as exc:
        raise zeep.exceptions.XMLSyntaxError(
            f"Invalid XML content received ({exc.msg})", content=content
        ) from exc


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


_cache_lock = threading.Lock()
_zeep_clients: dict[tuple[str, float], zeep.Client] = {}
_services: dict[tuple[str, float, str, str], Any] = {}
_wsdl_cache = InMemoryCache(timeout=3600)
_slots: dict[tuple[str, int], threading.BoundedSemaphore] = {}


def _tenant_slots(base_url: str, limit: int) -> threading.BoundedSemaphore:
    key = (base_url, limit)
    slots = _slots.get(key)
    if slots is None:
        with _cache_lock:
            slots = _slots.setdefault(key, threading.BoundedSemaphore(limit))
    return slots


# Who the hub signed in as, per connection identity (see NetServerClient.whoami).
_principals: dict[tuple[str, ...], Principal] = {}


def _new_session() -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=16, pool_maxsize=64, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _zeep_client(location: str, timeout: float) -> zeep.Client:
    key = (location, timeout)
    client = _zeep_clients.get(key)
    if client is not None:
        return client
    with _cache_lock:
        client = _zeep_clients.get(key)
        if client is None:
            transport = _CapturingTransport(
                session=_new_session(),
                timeout=timeout,
                operation_timeout=timeout,
                cache=_wsdl_cache if location.startswith("http") else None,
            )
            client = zeep.Client(location, transport=transport, settings=ZEEP_SETTINGS)
            STATS["wsdl_loads"] += 1
            _zeep_clients[key] = client
    return client


def _service(location: str, timeout: float, binding: str, address: str) -> Any:
    key = (location, timeout, binding, address)
    service = _services.get(key)
    if service is None:
        client = _zeep_client(location, timeout)
        service = client.create_service(binding, address)
        _services[key] = service
    return service


def clear_caches() -> None:
    """Forget every zeep client (tests, or after a tenant changed its WSDL)."""
    with _cache_lock:
        _zeep_clients.clear()
        _services.clear()
        _principals.clear()


# -- small helpers -------------------------------------------------------------------

_SECRET_ELEMENTS = re.compile(
    r"(<(?:[\w-]+:)?(?:Ticket|Password|ApplicationToken|SignedSystemToken|Token|UserName)"
    r"(?:\s[^>]*)?>)[^<]*(</)"
)


def redact(text: str, secrets: Iterable[str]) -> str:
    text = _SECRET_ELEMENTS.sub(r"\1[redacted]\2", text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


def _decode_archive(value: str | None) -> Any:
    """NetServer encodes archive values as [I:1], [DT:mm/dd/yyyy hh:mm:ss.fffff], [B:1]..."""
    if not value:
        return value
    if value.startswith("[") and value.endswith("]") and ":" in value:
        kind, raw = value[1:-1].split(":", 1)
        if kind == "I":
            return int(raw)
        if kind == "B":
            return raw in ("1", "true", "True")
        if kind in ("DT", "D"):
            fmt = "%m/%d/%Y %H:%M:%S.%f" if kind == "DT" else "%m/%d/%Y"
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC)
    return value


def _elements(array: Any, item: str) -> list[Any]:
    if array is None:
        return []
    values = getattr(array, item, None) if not isinstance(array, list) else array
    return list(values or [])


def _restriction(name: str, value: Any, operator: str = "equals") -> dict[str, Any]:
    # Operators by restriction type (SuperOffice "Archive Provider Restriction Types"):
    # int "equals", string "is" (equals), datetime "afterTime" (after or equal).
    return {
        "Name": name,
        "Operator": operator,
        "Values": {"string": [str(value)]},
        "IsActive": True,
        "InterOperator": "And",
    }


def _detail_text(detail: Any, name: str) -> str:
    if detail is None:
        return ""
    for element in detail.iter():
        if isinstance(element.tag, str) and element.tag.rsplit("}", 1)[-1] == name:
            return element.text or ""
    return ""


def _is_ticket_refusal(exception_type: str) -> bool:
    return any(word in exception_type for word in ("Session", "Ticket", "NotAuthenticated"))


def _error_for_fault(message: str, exception_type: str) -> CrmError:
    if "ApplicationToken" in exception_type or "Licens" in exception_type:
        return ConfigurationCrmError(message, exception_type=exception_type)
    if "NotFound" in exception_type:
        return NotFoundCrmError(message, exception_type=exception_type)
    if "Throttl" in exception_type or "TooMany" in exception_type:
        return TransientCrmError(message, exception_type=exception_type)
    return PermanentCrmError(message, exception_type=exception_type)


class _TicketRefused(Exception):
    pass


def _person_from_entity(entity: Any) -> Person:
    emails = tuple(e.Value for e in _elements(entity.Emails, "EntityElement") if e.Value)
    phones = [e.Value for e in _elements(entity.OfficePhones, "EntityElement") if e.Value]
    mobiles = [e.Value for e in _elements(entity.MobilePhones, "EntityElement") if e.Value]
    custom = {
        pair.Key: pair.Value or "" for pair in _elements(entity.CustomFields, "StringKeyValuePair")
    }
    contact = entity.Contact
    return Person(
        id=entity.PersonId,
        first_name=entity.Firstname or "",
        last_name=entity.Lastname or "",
        title=entity.Title or "",
        email=emails[0] if emails else "",
        emails=emails,
        phone=phones[0] if phones else "",
        mobile=mobiles[0] if mobiles else "",
        company_id=(contact.ContactId or None) if contact is not None else None,
        company_name=(contact.Name or "") if contact is not None else "",
        company_owner_id=(contact.AssociateId or None) if contact is not None else None,
        country_id=entity.Country.CountryId if entity.Country is not None else None,
        no_mailing=bool(entity.NoMailing),
        created_at=entity.CreatedDate,
        updated_at=entity.UpdatedDate,
        interests=tuple(
            Interest(id=i.Id, name=i.Name or "", selected=bool(i.Selected))
            for i in _elements(entity.Interests, "SelectableMDOListItem")
        ),
        custom_fields=custom,
    )


# -- the client ---------------------------------------------------------------------


class NetServerClient:
    """One account's connection to its SuperOffice tenant.

    Cheap to create (zeep clients are shared per process); create one per unit of
    work with ``crm.services.client_for_account``.
    """

    def __init__(
        self,
        *,
        connection: ConnectionSettings,
        ticket_store: TicketStore | None = None,
        recorder: CallRecorder | None = None,
        correlation: str = "",
        timeout: float = 30.0,
        wsdl_locator: WsdlLocator | None = None,
        max_concurrent_calls: int = 4,
        parse_archive_directly: bool = True,
    ) -> None:
        self.connection = connection
        # Archive replies (thousands of rows) are read straight from the XML instead of
        # through zeep's object model, which costs about a millisecond per row; the
        # contract tests run both ways against the official WSDL.
        self.parse_archive_directly = parse_archive_directly
        # One tenant's slow hour must not hold every thread of this process.
        self._slots = _tenant_slots(connection.base_url, max_concurrent_calls)
        self.ticket_store = ticket_store or MemoryTicketStore()
        self.recorder = recorder
        self.correlation = correlation
        self.timeout = timeout
        if wsdl_locator is None:
            if connection.use_tenant_wsdl:

                def wsdl_locator(agent: str) -> str:
                    if agent == PARTNER_AGENT:
                        return bundled_wsdl(agent)
                    return f"{connection.base_url}{agent}.svc?wsdl"
            else:
                wsdl_locator = bundled_wsdl
        self.wsdl_locator = wsdl_locator
        self._ticket: str | None = None
        self._extra_secrets: list[str] = []

    # -- plumbing --------------------------------------------------------------------

    def _secrets(self) -> list[str]:
        values = self.connection.secrets() + self._extra_secrets
        if self._ticket:
            values.append(self._ticket)
        return values

    def _record(
        self,
        *,
        agent: str,
        operation: str,
        started: float,
        started_at: datetime,
        outcome: str,
        error: str,
        transport: _CapturingTransport | None,
    ) -> None:
        STATS["calls"] += 1
        if self.recorder is None:
            return
        capture = transport.capture if transport is not None else None
        request = getattr(capture, "request", b"") or b""
        response = getattr(capture, "response", b"") or b""
        secrets = self._secrets()
        self.recorder(
            CallRecord(
                agent=agent,
                operation=operation,
                started_at=started_at,
                duration_ms=int((time.perf_counter() - started) * 1000),
                outcome=outcome,
                http_status=getattr(capture, "status", None),
                error=redact(error, secrets)[:1000],
                request_excerpt=redact(
                    request[: EXCERPT_CHARS * 2].decode("utf-8", "replace"), secrets
                )[:EXCERPT_CHARS],
                response_excerpt=redact(
                    response[: EXCERPT_CHARS * 2].decode("utf-8", "replace"), secrets
                )[:EXCERPT_CHARS],
                correlation=self.correlation,
            )
        )

    def _send(self, **kwargs: Any) -> Any:
        """``_send_now`` within the tenant's concurrency cap of this process."""
        if not self._slots.acquire(timeout=self.timeout):
            raise TransientCrmError(
                "Too many concurrent calls to this SuperOffice tenant", retry_after=1.0
            )
        try:
            return self._send_now(**kwargs)
        finally:
            self._slots.release()

    def _send_now(
        self,
        *,
        agent: str,
        operation: str,
        params: dict[str, Any],
        headers: dict[str, Any],
        binding: str | None = None,
        address: str | None = None,
        check: Callable[[Any], None] | None = None,
        raw_reply: bool = False,
    ) -> Any:
        """One SOAP round trip, classified and logged. Returns the reply body (with
        ``raw_reply``, the response element as lxml parsed it, see ``_send_raw``).

        ``check`` may raise a CrmError for a reply that is valid SOAP but a refusal
        (a failed sign-in), so the log row carries the real outcome."""
        location = self.wsdl_locator(agent)
        started, started_at = time.perf_counter(), datetime.now(UTC)
        transport: _CapturingTransport | None = None

        def record(error: Exception | None = None) -> None:
            """Log this call: "ok" without an error, else the error's outcome."""
            self._record(
                agent=agent,
                operation=operation,
                started=started,
                started_at=started_at,
                outcome="ok" if error is None else _outcome(error),
                error="" if error is None else str(error),
                transport=transport,
            )

        try:
            service = _service(
                location,
                self.timeout,
                binding or f"{{{spec.NS}}}BasicHttpBinding_{agent}",
                address or f"{self.connection.base_url}{agent}.svc",
            )
            transport = _zeep_clients[(location, self.timeout)].transport
            if raw_reply:
                result = _send_raw(
                    _zeep_clients[(location, self.timeout)], service, operation, params, headers
                )
            else:
                result = getattr(service, operation)(**params, _soapheaders=headers)
        except CrmError as exc:
            record(exc)
            raise
        except Exception as exc:
            error = self._classify(exc)
            record(error)
            raise error from exc
        header = getattr(result, "header", None)
        body = getattr(result, "body", result)
        info = getattr(header, "ExceptionInfo", None) if header is not None else None
        if info is not None and getattr(header, "Succeeded", True) is False:
            # NetServer may also report failure in the ExceptionInfo header of a 200 reply.
            exception_type = info.ExceptionType or ""
            failure: Exception = (
                _TicketRefused(info.Message or "")
                if _is_ticket_refusal(exception_type)
                else _error_for_fault(info.Message or "NetServer call failed", exception_type)
            )
            record(failure)
            raise failure
        if check is not None:
            try:
                check(body)
            except CrmError as exc:
                record(exc)
                raise
        record()
        return body

    def _classify(self, exc: Exception) -> Exception:
        if isinstance(exc, _HttpStatusError):
            if exc.status == 404:
                return ConfigurationCrmError(
                    f"HTTP 404: no NetServer service at this address ({self.connection.base_url})"
                )
            return TransientCrmError(
                f"HTTP {exc.status} from NetServer", retry_after=exc.retry_after
            )
        if isinstance(exc, requests.Timeout):
            return TransientCrmError(f"NetServer did not answer within {self.timeout:g} s")
        if isinstance(exc, requests.ConnectionError):
            return TransientCrmError(f"Cannot connect to NetServer: {type(exc).__name__}")
        if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
            return ConfigurationCrmError(f"Invalid NetServer address: {exc}")
        if isinstance(exc, zeep.exceptions.Fault):
            exception_type = _detail_text(exc.detail, "ExceptionType")
            if _is_ticket_refusal(exception_type):
                return _TicketRefused(exc.message or "ticket refused")
            return _error_for_fault(exc.message or "SOAP fault", exception_type)
        if isinstance(
            exc,
            zeep.exceptions.DTDForbidden
            | zeep.exceptions.EntitiesForbidden
            | zeep.exceptions.ExternalReferenceForbidden,
        ):
            return PermanentCrmError(
                "Refused a reply with a DTD, entities or external references",
                exception_type="UnsafeXml",
            )
        if isinstance(exc, zeep.exceptions.TransportError):
            status = exc.status_code or 0
            if status in (401, 403):
                return ConfigurationCrmError(f"HTTP {status}: NetServer refused the hub")
            if status == 404:
                return ConfigurationCrmError(
                    f"HTTP 404: no NetServer WSDL at this address ({self.connection.base_url})"
                )
            if status >= 500:
                return TransientCrmError(f"HTTP {status} from NetServer")
            return PermanentCrmError(f"HTTP {status} from NetServer: {exc.message}")
        if isinstance(exc, zeep.exceptions.XMLSyntaxError):
            return TransientCrmError("NetServer answered with something that is not XML")
        if isinstance(exc, zeep.exceptions.Error):
            return PermanentCrmError(f"SOAP message error: {exc}")
        if isinstance(exc, OSError):
            return TransientCrmError(f"Network error: {type(exc).__name__}")
        return PermanentCrmError(f"Unexpected error: {type(exc).__name__}: {exc}")

    # -- tickets ---------------------------------------------------------------------

    def _authenticate(self) -> tuple[str, datetime, Principal | None]:
        STATS["authentications"] += 1
        now = datetime.now(UTC)
        if self.connection.auth_mode == "online":
            return self._authenticate_online(now)
        principal, ticket = self._authenticate_username_password(
            username=self.connection.username,
            password=self.connection.password,
            refusal=ConfigurationCrmError("SuperOffice refused the user name or password"),
        )
        if ticket is None or principal is None:  # only when no refusal was asked for
            raise ConfigurationCrmError("SuperOffice refused the user name or password")
        return ticket, now + TICKET_LIFETIME - TICKET_SAFETY_MARGIN, principal

    def _authenticate_username_password(
        self, *, username: str, password: str, refusal: CrmError | None = None
    ) -> tuple[Principal | None, str | None]:
        """SoPrincipal.AuthenticateUsernamePassword: a principal and its ticket, or
        (None, None) when NetServer does not accept the credentials (``refusal``, when
        given, is raised instead, and logged as the call's outcome)."""

        def check(body: Any) -> None:
            if refusal is not None and (not body.AuthenticationSucceeded or not body.Credentials):
                raise refusal

        body = self._send(
            agent="SoPrincipal",
            operation="AuthenticateUsernamePassword",
            params={"UserName": username, "Password": password},
            headers={"ApplicationToken": self.connection.application_token},
            check=check,
        )
        if not body.AuthenticationSucceeded or body.Credentials is None:
            return None, None
        return _principal_from_carrier(body.Response), body.Credentials.Ticket

    def _authenticate_online(self, now: datetime) -> tuple[str, datetime, Principal | None]:
        """PartnerSystemUserService.Authenticate with the signed system user token."""
        c = self.connection
        if not (c.system_user_token and c.private_key_pem and c.context_identifier):
            raise ConfigurationCrmError(
                "Online needs the system user token, the private key and the context identifier"
            )
        signed = auth.sign_system_user_token(
            system_user_token=c.system_user_token, private_key_pem=c.private_key_pem, now=now
        )
        self._extra_secrets.append(signed)
        body = self._send(
            agent=PARTNER_AGENT,
            operation="Authenticate",
            params={"SignedSystemToken": signed, "ReturnTokenType": "Jwt"},
            headers={
                "ApplicationToken": c.application_token,
                "ContextIdentifier": c.context_identifier,
            },
            binding=PARTNER_BINDING,
            address=c.partner_service_url,
            check=_check_partner_reply,
        )
        self._extra_secrets.append(body.Token)
        claims = auth.jwt_claims(body.Token)
        ticket = claims.get(auth.TICKET_CLAIM)
        if not ticket:
            raise ConfigurationCrmError("The system user token carried no ticket")
        expires = now + TICKET_LIFETIME
        if isinstance(claims.get("exp"), int | float):
            expires = min(expires, datetime.fromtimestamp(claims["exp"], UTC))
        associate_id = int(claims.get(auth.ASSOCIATE_CLAIM) or 0)
        principal = Principal(
            associate_id=associate_id,
            name="",
            full_name="System user",
            context_identifier=c.context_identifier,
        )
        return ticket, expires - TICKET_SAFETY_MARGIN, principal

    def _current_ticket(self) -> str:
        if self._ticket:
            return self._ticket
        stored = self.ticket_store.load()
        if stored is not None and stored[1] > datetime.now(UTC):
            self._ticket = stored[0]
            return self._ticket
        return self._renew_ticket()

    def _renew_ticket(self) -> str:
        self._ticket = None
        ticket, expires_at, _ = self._authenticate()
        self._ticket = ticket
        self.ticket_store.save(ticket=ticket, expires_at=expires_at)
        return ticket

    def _call(self, agent: str, operation: str, *, raw_reply: bool = False, **params: Any) -> Any:
        headers = {
            "ApplicationToken": self.connection.application_token,
            "Credentials": {"Ticket": self._current_ticket()},
        }
        send = {"agent": agent, "operation": operation, "params": params, "raw_reply": raw_reply}
        try:
            return self._send(**send, headers=headers)
        except _TicketRefused:
            self.ticket_store.clear()
        # The ticket expired or was revoked: renew once, then give up as configuration.
        headers["Credentials"] = {"Ticket": self._renew_ticket()}
        try:
            return self._send(**send, headers=headers)
        except _TicketRefused as exc:
            self.ticket_store.clear()
            self._ticket = None
            raise ConfigurationCrmError(
                "SuperOffice refused a freshly issued ticket", exception_type="TicketRefused"
            ) from exc

    # -- connection ------------------------------------------------------------------

    def whoami(self, *, fresh: bool = False) -> Principal:
        """Who the hub is in SuperOffice.

        Signs in (SoPrincipal.AuthenticateUsernamePassword, or the Online
        PartnerSystemUserService.Authenticate) the first time per process and
        connection, or always with ``fresh=True`` ("Test connection"); otherwise the
        answer is remembered, so asking costs no call."""
        cache_key = self._principal_cache_key()
        if not fresh and cache_key in _principals:
            return _principals[cache_key]
        ticket, expires_at, principal = self._authenticate()
        self._ticket = ticket
        self.ticket_store.save(ticket=ticket, expires_at=expires_at)
        assert principal is not None  # noqa: S101 - _authenticate never returns None here
        if self.connection.auth_mode == "online" and principal.associate_id:
            names = {item.id: item.name for item in self.list_items(list_name="associates")}
            principal = Principal(
                associate_id=principal.associate_id,
                name=names.get(principal.associate_id, "System user"),
                full_name=names.get(principal.associate_id, "System user"),
                context_identifier=principal.context_identifier,
            )
        _principals[cache_key] = principal
        return principal

    def _principal_cache_key(self) -> tuple[str, ...]:
        c = self.connection
        return (c.base_url, c.auth_mode, c.username, c.context_identifier, c.system_user_token)

    def verify_panel_user(self, *, usec: str) -> Principal | None:
        """Who a web panel's ``<usec>`` secret belongs to (SoPrincipal.AuthenticateUsernamePassword
        with the secret as user name), or None when NetServer does not accept it."""
        if not usec:
            return None
        self._extra_secrets.append(usec)
        principal, _ = self._authenticate_username_password(username=usec, password="")
        return principal

    def verify_access_token(self, *, access_token: str) -> Principal | None:
        """Who a user's access token from SuperOffice sign-in belongs to, with their groups
        (SoPrincipal.AuthenticateWithAccessToken), or None when NetServer refuses it."""
        if not access_token:
            return None
        self._extra_secrets.append(access_token)
        body = self._send(
            agent="SoPrincipal",
            operation="AuthenticateWithAccessToken",
            params={"AccessToken": access_token},
            headers={"ApplicationToken": self.connection.application_token},
        )
        if not body.AuthenticationSucceeded or body.Response is None:
            return None
        return _principal_from_carrier(body.Response)

    # -- persons ---------------------------------------------------------------------

    def _person_entity(self, person_id: int) -> Any:
        entity = self._call("Person", "GetPersonEntity", PersonEntityId=person_id).Response
        if entity is None or not entity.PersonId:
            raise NotFoundCrmError(f"Person {person_id} does not exist")
        return entity

    def get_person(self, *, person_id: int) -> Person:
        """Person.GetPersonEntity."""
        return _person_from_entity(self._person_entity(person_id))

    def find_persons_by_email(self, *, email: str) -> list[PersonMatch]:
        """Archive.GetArchiveListByColumns on provider ``Person``, restriction
        ``email/emailAddress equals <email>``; oldest registration first."""
        columns = [
            "personId",
            "firstName",
            "lastName",
            "contactId",
            "email/emailAddress",
            "registered",
        ]
        rows = self._archive(
            provider="Person",
            columns=columns,
            restrictions=[_restriction("email/emailAddress", email.strip(), "is")],
            order_by="personId",
            page=0,
            page_size=100,
        )
        matches = [
            PersonMatch(
                id=row["personId"] or key,
                first_name=row["firstName"] or "",
                last_name=row["lastName"] or "",
                email=row["email/emailAddress"] or "",
                company_id=row["contactId"] or None,
                registered_at=row["registered"] or None,
            )
            for key, row in rows
        ]
        far_future = datetime.max.replace(tzinfo=UTC)
        return sorted(matches, key=lambda m: (m.registered_at or far_future, m.id))

    # What search_persons looks in: Archive provider Person columns, operator "contains".
    PERSON_SEARCH_COLUMNS = {
        "name": "fullName",
        "company": "name",
        "email": "email/emailAddress",
    }

    def search_persons(self, *, text: str, field: str, limit: int = 20) -> list[PersonMatch]:
        """Archive.GetArchiveListByColumns on provider ``Person``, restriction
        ``<column> contains <text>``: persons by part of their name, their company's name
        or their email (e.g. ``@example.com`` for a company domain); oldest first."""
        if field not in self.PERSON_SEARCH_COLUMNS or not text.strip():
            raise PermanentCrmError(f"Cannot search persons by {field!r}")
        column = self.PERSON_SEARCH_COLUMNS[field]
        columns = [
            "personId",
            "firstName",
            "lastName",
            "contactId",
            "email/emailAddress",
            "registered",
        ]
        rows = self._archive(
            provider="Person",
            columns=columns,
            restrictions=[_restriction(column, text.strip(), "contains")],
            order_by="personId",
            page=0,
            page_size=max(1, min(limit, 100)),
        )
        return [
            PersonMatch(
                id=row["personId"] or key,
                first_name=row["firstName"] or "",
                last_name=row["lastName"] or "",
                email=row["email/emailAddress"] or "",
                company_id=row["contactId"] or None,
                registered_at=row["registered"] or None,
            )
            for key, row in rows
        ]

    def create_company(self, *, company: NewCompany) -> int:
        """Contact.SaveContactEntity with ContactId 0 (creates a company)."""
        entity: dict[str, Any] = {"ContactId": 0, "Name": company.name}
        if company.owner_id:
            entity["Associate"] = {"AssociateId": company.owner_id}
        if company.business_id:
            entity["Business"] = {"Id": company.business_id}
        if company.category_id:
            entity["Category"] = {"Id": company.category_id}
        if company.country_id:
            entity["Country"] = {"CountryId": company.country_id}
        saved = self._call("Contact", "SaveContactEntity", ContactEntity=entity).Response
        return saved.ContactId

    def create_person(
        self,
        *,
        first_name: str,
        last_name: str,
        email: str,
        phone: str = "",
        mobile: str = "",
        title: str = "",
        company_id: int | None = None,
        new_company: NewCompany | None = None,
    ) -> Person:
        """Person.SavePersonEntity with PersonId 0 under an existing company, or under a
        new one made first with Contact.SaveContactEntity."""
        if (company_id is None) == (new_company is None):
            raise PermanentCrmError("Give exactly one of company_id and new_company")
        if new_company is not None:
            company_id = self.create_company(company=new_company)
        entity: dict[str, Any] = {
            "PersonId": 0,
            "Firstname": first_name,
            "Lastname": last_name,
            "Title": title,
            "Emails": {"EntityElement": [{"Value": email}]} if email else None,
            "MobilePhones": {"EntityElement": [{"Value": mobile}]} if mobile else None,
            "OfficePhones": {"EntityElement": [{"Value": phone}]} if phone else None,
            "Contact": {"ContactId": company_id},
        }
        saved = self._call("Person", "SavePersonEntity", PersonEntity=entity).Response
        return _person_from_entity(saved)

    def _save_person_entity(self, entity: Any) -> Person:
        # Read-modify-write of the whole entity as NetServer returned it, so fields
        # the hub does not know about are sent back unchanged.
        saved = self._call("Person", "SavePersonEntity", PersonEntity=entity).Response
        return _person_from_entity(saved)

    def person_interests(self, *, person_id: int) -> list[Interest]:
        """Person.GetPersonEntity (its Interests: available and selected, MDO list persint)."""
        return list(self.get_person(person_id=person_id).interests)

    def set_person_interests(
        self, *, person_id: int, add_ids: Iterable[int] = (), remove_ids: Iterable[int] = ()
    ) -> list[Interest]:
        """Person.GetPersonEntity, flip Interests[].Selected, Person.SavePersonEntity."""
        add, remove = set(add_ids), set(remove_ids)
        entity = self._person_entity(person_id)
        items = _elements(entity.Interests, "SelectableMDOListItem")
        known = {item.Id for item in items}
        unknown = (add | remove) - known
        if unknown:
            raise NotFoundCrmError(f"Unknown interest ids {sorted(unknown)}")
        changed = False
        for item in items:
            wanted = True if item.Id in add else False if item.Id in remove else bool(item.Selected)
            if wanted != bool(item.Selected):
                item.Selected = wanted
                changed = True
        if not changed:
            return list(_person_from_entity(entity).interests)
        return list(self._save_person_entity(entity).interests)

    def get_no_mailing(self, *, person_id: int) -> bool:
        """Person.GetPersonEntity (NoMailing: "should not retrieve advertising")."""
        return bool(self._person_entity(person_id).NoMailing)

    def set_no_mailing(self, *, person_id: int, no_mailing: bool) -> None:
        """Person.GetPersonEntity + Person.SavePersonEntity with NoMailing set."""
        entity = self._person_entity(person_id)
        if bool(entity.NoMailing) == no_mailing:
            return
        entity.NoMailing = no_mailing
        self._save_person_entity(entity)

    def set_person_custom_field(self, *, person_id: int, field: str, value: str) -> None:
        """Person.GetPersonEntity + Person.SavePersonEntity with CustomFields[field] = value.

        ``field`` is a user-defined field key ("SuperOffice:3") or an extra field name
        ("x_score"); ``value`` is NetServer-encoded ("[I:3]", plain text...)."""
        entity = self._person_entity(person_id)
        pairs = [
            {"Key": p.Key, "Value": p.Value}
            for p in _elements(entity.CustomFields, "StringKeyValuePair")
            if p.Key != field
        ]
        pairs.append({"Key": field, "Value": value})
        entity.CustomFields = {"StringKeyValuePair": pairs}
        self._save_person_entity(entity)

    # -- consent -----------------------------------------------------------------------

    def consents(self, *, person_id: int) -> list[Consent]:
        """Person.GetConsentInfos (may include withdrawn consents)."""
        infos = self._call("Person", "GetConsentInfos", PersonId=person_id).Response
        return [
            Consent(
                purpose_key=i.ConsentPurposeKey or "",
                purpose_name=i.ConsentPurposeName or "",
                legal_base_key=i.LegalBaseKey or "",
                legal_base_name=i.LegalBaseName or "",
                source_key=i.ConsentSourceKey or "",
                comment=i.Comment or "",
                registered_at=i.Registered,
                updated_at=i.Updated,
            )
            for i in _elements(infos, "ConsentInfo")
        ]

    def set_consent(
        self,
        *,
        person_id: int,
        purpose_key: str,
        legal_base_key: str,
        source_key: str = "API",
        comment: str = "",
    ) -> None:
        """Person.SetConsent (keys: purpose "STORE"/"EMARKETING", legal base "61A"...)."""
        self._call(
            "Person",
            "SetConsent",
            PersonId=person_id,
            Purpose=purpose_key,
            Source=source_key,
            LegalBase=legal_base_key,
            Comment=comment,
        )

    def withdraw_consent(self, *, person_id: int, purpose_key: str) -> None:
        """Person.RemoveConsent (the consent reads back with legal base WITHDRAWN)."""
        self._call("Person", "RemoveConsent", PersonId=person_id, Purpose=purpose_key)

    def consents_changed_since(self, *, since: datetime) -> list[int]:
        """Ids of persons whose consents changed at or after ``since``: Archive
        GetArchiveListByColumns, provider Person, restriction ``consentPerson/updatedDate
        afterTime [DT:...]``, every page (ordered by personId)."""
        stamp = f"[DT:{since.astimezone(UTC).strftime('%m/%d/%Y %H:%M:%S.00000')}]"
        person_ids: list[int] = []
        page, page_size = 0, 500
        while True:
            rows = self._archive(
                provider="Person",
                columns=["personId"],
                restrictions=[_restriction("consentPerson/updatedDate", stamp, "afterTime")],
                order_by="personId",
                page=page,
                page_size=page_size,
            )
            person_ids += [row["personId"] or key for key, row in rows]
            if len(rows) < page_size:
                return person_ids
            page += 1

    # -- sales and appointments ----------------------------------------------------------

    def create_sale(
        self,
        *,
        heading: str,
        text: str,
        person_id: int,
        owner_id: int,
        company_id: int | None = None,
        source_id: int | None = None,
        rating_id: int | None = None,
        sale_date: datetime | None = None,
    ) -> int:
        """Sale.SaveSaleEntity with SaleId 0. Put the caller's marker in ``text``."""
        entity: dict[str, Any] = {
            "Associate": {"AssociateId": owner_id},
            "Contact": {"ContactId": company_id} if company_id else None,
            "SaleText": text,
            "Person": {"PersonId": person_id},
            "Rating": {"Id": rating_id} if rating_id else None,
            "Source": {"Id": source_id} if source_id else None,
            "Status": "Open",
            "Saledate": sale_date or datetime.now(UTC),
            "SaleId": 0,
            "Heading": heading,
        }
        return self._call("Sale", "SaveSaleEntity", SaleEntity=entity).Response.SaleId

    def find_sale_by_marker(self, *, person_id: int, marker: str) -> int | None:
        """Sale.GetSalesFromPerson (open and closed); the lowest id whose text or
        heading contains ``marker``."""
        sales = self._call(
            "Sale", "GetSalesFromPerson", PersonId=person_id, OnlyOpenSales=False
        ).Response
        found = [
            s.SaleId
            for s in _elements(sales, "Sale")
            if marker in (s.Description or "") or marker in (s.Title or "")
        ]
        return min(found) if found else None

    def create_appointment(
        self,
        *,
        person_id: int,
        owner_id: int,
        task_id: int,
        description: str,
        start: datetime,
        end: datetime,
        completed: bool = False,
        company_id: int | None = None,
        project_id: int | None = None,
        appointment_type: str = "inDiary",
    ) -> int:
        """Appointment.SaveAppointmentEntity with AppointmentId 0 (Completed = Completed
        or NotStarted; ``appointment_type`` "inDiary" for a meeting, "inChecklist" for a
        task). Put the caller's marker in ``description``."""
        entity: dict[str, Any] = {
            "Associate": {"AssociateId": owner_id},
            "Contact": {"ContactId": company_id} if company_id else None,
            "AppointmentId": 0,
            "Description": description,
            "StartDate": start,
            "EndDate": end,
            "Person": {"PersonId": person_id},
            "Project": {"ProjectId": project_id} if project_id else None,
            "Type": appointment_type,
            "Completed": "Completed" if completed else "NotStarted",
            "Task": {"TaskListItemId": task_id},
        }
        saved = self._call("Appointment", "SaveAppointmentEntity", AppointmentEntity=entity)
        return saved.Response.AppointmentId

    def find_appointment_by_marker(self, *, person_id: int, marker: str) -> int | None:
        """Appointment.GetPersonAppointments over 2000-2100; the lowest id whose
        description contains ``marker``."""
        appointments = self._call(
            "Appointment",
            "GetPersonAppointments",
            PersonId=person_id,
            IncludeProjectAppointments=True,
            StartTime=datetime(2000, 1, 1, tzinfo=UTC),
            EndTime=datetime(2100, 1, 1, tzinfo=UTC),
            Count=1000,
        ).Response
        found = [
            a.AppointmentId
            for a in _elements(appointments, "Appointment")
            if marker in (a.Description or "")
        ]
        return min(found) if found else None

    # -- selections and projects -----------------------------------------------------------

    def _company_of(self, person_id: int, company_id: int | None) -> int:
        if company_id:
            return company_id
        return self.get_person(person_id=person_id).company_id or 0

    def selection_add_person(
        self, *, selection_id: int, person_id: int, company_id: int | None = None
    ) -> None:
        """Selection.AddContactSelectionMembers (person and the company it belongs to)."""
        pair = {"PersonId": person_id, "ContactId": self._company_of(person_id, company_id)}
        self._call(
            "Selection",
            "AddContactSelectionMembers",
            SelectionId=selection_id,
            ContactPersonIds={"ContactPersonId": [pair]},
        )

    def selection_remove_person(
        self, *, selection_id: int, person_id: int, company_id: int | None = None
    ) -> None:
        """Selection.RemoveContactSelectionMembers."""
        pair = {"PersonId": person_id, "ContactId": self._company_of(person_id, company_id)}
        self._call(
            "Selection",
            "RemoveContactSelectionMembers",
            SelectionId=selection_id,
            ContactPersonIds={"ContactPersonId": [pair]},
        )

    # Everything an import maps, in the member rows themselves: no call per person.
    # Column names as the person archive providers document them.
    _MEMBER_COLUMNS = [
        "personId",
        "contactId",
        "email/emailAddress",
        "firstName",
        "lastName",
        "title",
        "personDirectPhone/formattedNumber",
        "personMobilePhone/formattedNumber",
        "name",
        "personRegisteredDate",
        "personNoMail",
        "hasEmarketingConsent",
    ]

    def selection_members(
        self, *, selection_id: int, page: int = 0, page_size: int = 200
    ) -> MemberPage:
        """Archive.GetArchiveListByColumns, provider ContactPersonStaticSelectionV2,
        restriction selectionId, ordered by personId (cheap paging)."""
        rows = self._archive(
            provider="ContactPersonStaticSelectionV2",
            columns=self._MEMBER_COLUMNS,
            restrictions=[_restriction("selectionId", selection_id)],
            order_by="personId",
            page=page,
            page_size=page_size,
        )
        return MemberPage(
            members=tuple(_member(row) for _, row in rows), page=page, page_size=page_size
        )

    def _archive_count(self, *, provider: str, restriction: dict[str, Any], key: str) -> int:
        # The archive answers no row count: page through the key column alone, the
        # largest page the documentation calls reasonable.
        total, page = 0, 0
        while True:
            rows = self._archive(
                provider=provider,
                columns=[key],
                restrictions=[restriction],
                order_by=key,
                page=page,
                page_size=self._COUNT_PAGE_SIZE,
            )
            total += len(rows)
            if len(rows) < self._COUNT_PAGE_SIZE:
                return total
            page += 1

    _COUNT_PAGE_SIZE = 1000

    def selection_member_count(self, *, selection_id: int) -> int:
        """Archive.GetArchiveListByColumns as ``selection_members``, personId column only."""
        return self._archive_count(
            provider="ContactPersonStaticSelectionV2",
            restriction=_restriction("selectionId", selection_id),
            key="personId",
        )

    def project_member_count(self, *, project_id: int) -> int:
        """Archive.GetArchiveListByColumns as ``project_members``, projectMemberId only."""
        return self._archive_count(
            provider="ProjectMember",
            restriction=_restriction("projectId", project_id),
            key="projectMemberId",
        )

    def selection_has_person(self, *, selection_id: int, person_id: int) -> bool:
        """Archive.GetArchiveListByColumns as ``selection_members`` plus personId = N."""
        rows = self._archive(
            provider="ContactPersonStaticSelectionV2",
            columns=["personId"],
            restrictions=[
                _restriction("selectionId", selection_id),
                _restriction("personId", person_id),
            ],
            order_by="personId",
            page=0,
            page_size=1,
        )
        return bool(rows)

    def project_add_person(
        self, *, project_id: int, person_id: int, company_id: int | None = None
    ) -> None:
        """Project.AddProjectMembers."""
        member = {
            "ProjectmemberId": 0,
            "ContactId": self._company_of(person_id, company_id),
            "ProjectId": project_id,
            "PersonId": person_id,
        }
        self._call(
            "Project",
            "AddProjectMembers",
            ProjectEntityId=project_id,
            ProjectMembers={"ProjectMember": [member]},
        )

    def _project_member_ids(self, *, project_id: int, person_id: int) -> list[int]:
        rows = self._archive(
            provider="ProjectMember",
            columns=["projectMemberId", "personId"],
            restrictions=[
                _restriction("projectId", project_id),
                _restriction("personId", person_id),
            ],
            order_by="projectMemberId",
            page=0,
            page_size=50,
        )
        return [row.get("projectMemberId") or key for key, row in rows]

    def project_has_person(self, *, project_id: int, person_id: int) -> bool:
        """Archive.GetArchiveListByColumns, provider ProjectMember, projectId and personId."""
        return bool(self._project_member_ids(project_id=project_id, person_id=person_id))

    def project_remove_person(self, *, project_id: int, person_id: int) -> bool:
        """Archive (find the project member rows) + Project.DeleteProjectMemberByIds.
        False when the person was not a member."""
        member_ids = self._project_member_ids(project_id=project_id, person_id=person_id)
        if not member_ids:
            return False
        self._call("Project", "DeleteProjectMemberByIds", ProjectMemberIds={"int": member_ids})
        return True

    def project_members(
        self, *, project_id: int, page: int = 0, page_size: int = 200
    ) -> MemberPage:
        """Archive.GetArchiveListByColumns, provider ProjectMember, restriction projectId."""
        rows = self._archive(
            provider="ProjectMember",
            columns=[*self._MEMBER_COLUMNS, "projectMemberId"],
            restrictions=[_restriction("projectId", project_id)],
            order_by="projectMemberId",
            page=page,
            page_size=page_size,
        )
        return MemberPage(
            members=tuple(_member(row, key) for key, row in rows), page=page, page_size=page_size
        )

    def _archive(
        self,
        *,
        provider: str,
        columns: list[str],
        restrictions: list[dict[str, Any]],
        order_by: str,
        page: int,
        page_size: int,
    ) -> list[tuple[int, dict[str, Any]]]:
        reply = self._call(
            "Archive",
            "GetArchiveListByColumns",
            raw_reply=self.parse_archive_directly,
            ProviderName=provider,
            Columns={"string": columns},
            SortOrder={"ArchiveOrderByInfo": [{"Name": order_by, "Direction": "ASC"}]},
            Restriction={"ArchiveRestrictionInfo": restrictions},
            Entities=None,
            Page=page,
            PageSize=page_size,
        )
        if self.parse_archive_directly:
            return _archive_rows(reply, columns)
        items = reply.Response
        result = []
        for item in _elements(items, "ArchiveListItem"):
            data = {column: None for column in columns}
            for pair in _elements(item.ColumnData, "ColumnDataKeyValuePair"):
                display = pair.Value.DisplayValue if pair.Value is not None else None
                data[pair.Key] = _decode_archive(display)
            result.append((item.PrimaryKey, data))
        return result

    # -- tickets, scripts, lists -----------------------------------------------------------

    def create_ticket(
        self,
        *,
        title: str,
        person_id: int | None = None,
        priority_id: int | None = None,
        category_id: int | None = None,
        owner_id: int = UNASSIGNED,
    ) -> CreatedTicket:
        """Ticket.SaveTicketEntity with TicketId 0. ``owner_id``: an associate,
        ``types.UNASSIGNED`` (0) or ``types.ASSIGN_BY_CATEGORY``."""
        entity: dict[str, Any] = {
            "TicketId": 0,
            "Title": title,
            "OwnedBy": {"AssociateId": owner_id},
            "Category": {"TicketCategoryId": category_id} if category_id else None,
            "Priority": {"TicketPriorityId": priority_id} if priority_id else None,
            "Person": {"PersonId": person_id} if person_id else None,
        }
        saved = self._call("Ticket", "SaveTicketEntity", TicketEntity=entity).Response
        owner = saved.OwnedBy.AssociateId if saved.OwnedBy is not None else 0
        return CreatedTicket(id=saved.TicketId, owner_id=owner or 0)

    def find_ticket_by_marker(self, *, person_id: int, marker: str) -> int | None:
        """Archive.GetArchiveListByColumns on provider ``Ticket``, ``title contains
        <marker>`` and the person: the lowest id of a request a run already created."""
        rows = self._archive(
            provider="Ticket",
            columns=["ticketId", "title"],
            restrictions=[
                _restriction("title", marker, "contains"),
                _restriction("personId", str(person_id)),
            ],
            order_by="ticketId",
            page=0,
            page_size=50,
        )
        found = [row["ticketId"] or key for key, row in rows if marker in (row["title"] or "")]
        return min(found) if found else None

    def custom_field_infos(self, *, table: str = "person") -> list[ListItem]:
        """UserDefinedFieldInfo.GetCustomFieldInfoList(table, IncludeStandard false): the
        table's user-defined and extra fields as ListItem(key=field name, type=field type);
        ``id`` is the field's position, for pickers that want a number."""
        infos = self._call(
            "UserDefinedFieldInfo",
            "GetCustomFieldInfoList",
            TableName=table,
            IncludeStandard=False,
        ).Response
        return [
            ListItem(
                id=index,
                name=i.DisplayName or i.FieldName or "",
                key=i.FieldName or "",
                type=str(i.FieldType or ""),
            )
            for index, i in enumerate(_elements(infos, "FieldInfoBase"), start=1)
            if i.FieldName
        ]

    def execute_script(self, *, script_id: int, parameters: dict[str, str]) -> str:
        """CRMScript.ExecuteScript: the script's printed output."""
        pairs = [{"Key": k, "Value": str(v)} for k, v in parameters.items()]
        body = self._call(
            "CRMScript",
            "ExecuteScript",
            CRMScriptId=script_id,
            Parameters={"StringKeyValuePair": pairs},
        )
        return body.Response or ""

    def list_items(self, *, list_name: str) -> list[ListItem]:
        """MDO.GetList(<mdo list>) or List.GetLegalBases / List.GetConsentPurposes;
        see ``LIST_SOURCES`` for the names."""
        if list_name not in LIST_SOURCES:
            raise PermanentCrmError(f"Unknown list {list_name!r}")
        agent, name = LIST_SOURCES[list_name]
        if agent == "MDO":
            items = self._call(
                "MDO",
                "GetList",
                Name=name,
                ForceFlatList=True,
                AdditionalInfo="",
                OnlyHistory=False,
            ).Response
            return [
                ListItem(id=i.Id, name=i.Name or "")
                for i in _elements(items, "MDOListItem")
                if not i.Deleted
            ]
        if agent == "UserDefinedFieldInfo":
            return self.custom_field_infos(table=name)
        items = self._call("List", name).Response
        if name == "GetLegalBases":
            return [
                ListItem(id=i.LegalBaseId, name=i.Name or "", key=i.Key or "")
                for i in _elements(items, "LegalBase")
            ]
        return [
            ListItem(id=i.ConsentPurposeId, name=i.Name or "", key=i.Key or "")
            for i in _elements(items, "ConsentPurpose")
        ]


def _check_partner_reply(body: Any) -> None:
    if not body.IsSuccessful or not body.Token:
        raise ConfigurationCrmError(
            f"SuperOffice refused the system user: {body.ErrorMessage or 'no reason given'}"
        )


def _principal_from_carrier(carrier: Any) -> Principal:
    return Principal(
        associate_id=carrier.AssociateId or 0,
        name=carrier.Associate or "",
        full_name=carrier.FullName or "",
        email=carrier.EMailAddress or "",
        group_id=carrier.GroupId or 0,
        secondary_group_ids=tuple(_elements(carrier.SecondaryGroups, "int")),
        context_identifier=carrier.DatabaseContextIdentifier or "",
    )


def _member(row: dict[str, Any], key: int | None = None) -> Member:
    return Member(
        person_id=row.get("personId") or 0,
        company_id=row.get("contactId") or None,
        email=row.get("email/emailAddress") or "",
        first_name=row.get("firstName") or "",
        last_name=row.get("lastName") or "",
        member_id=row.get("projectMemberId") or (key if "projectMemberId" in row else None),
        title=row.get("title") or "",
        phone=row.get("personDirectPhone/formattedNumber") or "",
        mobile=row.get("personMobilePhone/formattedNumber") or "",
        company_name=row.get("name") or "",
        registered_at=row.get("personRegisteredDate") or None,
        no_mailing=row.get("personNoMail") is True,
        has_emarketing_consent=row.get("hasEmarketingConsent") is True,
    )


def _outcome(error: Exception) -> str:
    if isinstance(error, _TicketRefused):
        return "ticket_refused"
    if isinstance(error, NotFoundCrmError):
        return "not_found"
    if isinstance(error, PermanentCrmError):
        return "permanent"
    if isinstance(error, TransientCrmError):
        return "transient"
    if isinstance(error, ConfigurationCrmError):
        return "configuration"
    return "error"


# -- archive replies read straight from the XML ------------------------------------------


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(element: Any, name: str) -> Any:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _send_raw(
    zclient: zeep.Client, service: Any, operation: str, params: dict, headers: dict
) -> Any:
    """Send through zeep (the request is built and checked as always) but parse the
    reply with zeep's hardened XML parser only (no DTDs, entities or network), into
    ``SimpleNamespace(header=..., body=<the response element>)`` shaped like zeep's
    result, so ``_send_now`` reads ExceptionInfo and Succeeded the same way. A reply
    other than 200 (a fault) goes through zeep's own processing and raises there."""
    with zclient.settings(raw_response=True):
        response = getattr(service, operation)(**params, _soapheaders=headers)
    binding = service._binding
    if response.status_code != 200:
        return binding.process_reply(zclient, binding.get(operation), response)
    envelope = zeep.loader.parse_xml(response.content, zclient.transport, settings=ZEEP_SETTINGS)
    header_el, body_el = _child(envelope, "Header"), _child(envelope, "Body")
    if body_el is None or not len(body_el):
        raise PermanentCrmError(f"NetServer answered {operation} without a body")
    info = None
    succeeded = True
    if header_el is not None:
        info_el = _child(header_el, "ExceptionInfo")
        if info_el is not None and len(info_el):
            info = SimpleNamespace(
                Message=(getattr(_child(info_el, "Message"), "text", None) or ""),
                ExceptionType=(getattr(_child(info_el, "ExceptionType"), "text", None) or ""),
            )
        flag = _child(header_el, "Succeeded")
        if flag is not None and (flag.text or "").strip().lower() == "false":
            succeeded = False
    return SimpleNamespace(
        header=SimpleNamespace(ExceptionInfo=info, Succeeded=succeeded), body=body_el[0]
    )


def _archive_rows(body: Any, columns: list[str]) -> list[tuple[int, dict[str, Any]]]:
    """(PrimaryKey, {column: decoded value}) per ArchiveListItem of a
    GetArchiveListByColumnsResponse element, the same as the zeep path returns."""
    ns = f"{{{spec.NS}}}"
    item_tag, key_tag = f"{ns}ArchiveListItem", f"{ns}PrimaryKey"
    name_tag, display_tag = f"{ns}Key", f"{ns}DisplayValue"
    response = body.find(f"{ns}Response")
    if response is None:
        return []
    rows: list[list[Any]] = []
    data: dict[str, Any] = {}
    name = None
    # One pass in document order over the four elements that matter, filtered by lxml in
    # C: an item, its PrimaryKey, then each column's Key and Value/DisplayValue (the
    # schema's sequence order). About a hundred times faster than zeep's objects.
    for element in response.iter(item_tag, key_tag, name_tag, display_tag):
        tag = element.tag
        if tag == item_tag:
            data = dict.fromkeys(columns)
            rows.append([0, data])
            name = None
        elif tag == key_tag:
            rows[-1][0] = int(element.text) if element.text else 0
        elif tag == name_tag:
            name = element.text
        elif name:
            data[name] = _decode_archive(element.text or None)
            name = None
    return [(key, values) for key, values in rows]
