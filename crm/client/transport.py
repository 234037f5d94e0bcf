"""Transport and reply checks: the one HTTP session and zeep transport of the client,
the process-wide zeep caches, the call record of every round trip, and the
classification of whatever went wrong into the hub's CRM errors.

Every request to SuperOffice leaves through ``new_session()`` (the requests Session)
and ``CapturingTransport`` (zeep's transport over it): hardening of the HTTP layer
hooks in there, in one place.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import requests
import zeep
import zeep.exceptions
from lxml import etree
from zeep.cache import InMemoryCache
from zeep.transports import Transport

from ..errors import (
    ConfigurationCrmError,
    CrmError,
    NotFoundCrmError,
    PermanentCrmError,
    TransientCrmError,
)
from ..http import AddressRefused, DeadlineExceeded, RedirectRefused, ReplyTooLarge, guarded_session
from . import envelopes

EXCERPT_CHARS = 2000

# Read NetServer's answers tolerantly: its carriers hold more elements than the hub's WSDL
# names (and later versions add more), so elements are matched by name and the rest are
# ignored, or kept where a type says so (spec.OPEN_ENDED). zeep ties that to lxml's
# recover mode; CapturingTransport parses every answer strictly first, so a damaged
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
STATS = {"wsdl_loads": 0, "authentications": 0, "calls": 0, "requests_written": 0}


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


# -- the HTTP session and zeep's transport over it ---------------------------------------


def new_session() -> requests.Session:
    """The requests Session of every call to SuperOffice (SOAP, WSDL, signing keys): the
    guarded one of crm.http (addresses checked when connecting, no redirects, replies
    capped, an overall deadline per request)."""
    return guarded_session()


class HttpStatusError(Exception):
    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(status)
        self.status = status
        self.retry_after = retry_after


class CapturingTransport(Transport):
    """Keeps the raw request/response bytes of the current thread's call for the log."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.capture = threading.local()
        # A prepared request per address and headers, copied for each call: preparing one
        # anew (merging the session's settings, parsing the URL, checking the headers)
        # cost more CPU than the rest of requests' work for the call.
        self._prepared: dict[tuple, requests.PreparedRequest] = {}

    def post(self, address: str, message: bytes, headers: dict[str, str]) -> Any:
        self.capture.request = message
        self.capture.response = b""
        self.capture.status = None
        response = self._post(address, message, headers)
        self.capture.response = response.content
        self.capture.status = response.status_code
        if response.status_code in (404, 429, 502, 503, 504):
            raise HttpStatusError(response.status_code, _retry_after(response))
        if response.content:
            ensure_well_formed(response.content)
        return response

    def _post(self, address: str, message: bytes, headers: dict[str, str]) -> Any:
        """What zeep's Transport.post sends (``session.post`` of the message with these
        headers), from a copy of a prepared request. Where the session holds cookies (a
        load balancer's affinity), each request is prepared anew, so they go along."""
        if self.session.cookies:
            return self.session.post(
                address, data=message, headers=headers, timeout=self.operation_timeout
            )
        key = (address, tuple(headers.items()))
        template = self._prepared.get(key)
        if template is None:
            template = self.session.prepare_request(
                requests.Request("POST", address, headers=headers)
            )
            if len(self._prepared) < 256:
                self._prepared[key] = template
        prepared = template.copy()
        prepared.prepare_body(message, None)
        return self.session.send(prepared, timeout=self.operation_timeout, allow_redirects=True)


_STRICT_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)


def ensure_well_formed(content: bytes) -> None:
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


# -- process-wide caches ---------------------------------------------------------------

_cache_lock = threading.Lock()
_zeep_clients: dict[tuple[str, float], zeep.Client] = {}
_services: dict[tuple[str, float, str, str], Any] = {}


class _WsdlCache(InMemoryCache):
    """zeep's in-memory cache of fetched WSDL and schema files, with a dict of its own that
    clear_caches empties: zeep's instances share one class-wide dict, which nothing
    empties before its timeout, so a tenant's changed WSDL was read as before."""

    def __init__(self, timeout: int) -> None:
        super().__init__(timeout=timeout)
        self._cache = {}

    def clear(self) -> None:
        self._cache.clear()


_wsdl_cache = _WsdlCache(timeout=3600)
# Other modules' per-process caches (who signed in, signing keys), emptied with these.
_other_caches: list[Callable[[], None]] = [envelopes.forget_plans]


def zeep_client(location: str, timeout: float) -> zeep.Client:
    key = (location, timeout)
    client = _zeep_clients.get(key)
    if client is not None:
        return client
    with _cache_lock:
        client = _zeep_clients.get(key)
        if client is None:
            transport = CapturingTransport(
                session=new_session(),
                timeout=timeout,
                operation_timeout=timeout,
                cache=_wsdl_cache if location.startswith("http") else None,
            )
            client = zeep.Client(location, transport=transport, settings=ZEEP_SETTINGS)
            STATS["wsdl_loads"] += 1
            _zeep_clients[key] = client
    return client


def service(location: str, timeout: float, binding: str, address: str) -> Any:
    key = (location, timeout, binding, address)
    found = _services.get(key)
    if found is None:
        client = zeep_client(location, timeout)
        found = client.create_service(binding, address)
        _services[key] = found
    return found


def register_cache(clear: Callable[[], None]) -> None:
    _other_caches.append(clear)


def clear_caches() -> None:
    """Forget every zeep client and fetched WSDL (tests, or after a tenant changed its
    WSDL)."""
    with _cache_lock:
        _zeep_clients.clear()
        _services.clear()
        _wsdl_cache.clear()
    for clear in _other_caches:
        clear()


# -- sending ---------------------------------------------------------------------------


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def child(element: Any, name: str) -> Any:
    for item in element:
        if _local(item.tag) == name:
            return item
    return None


def _post(
    zclient: zeep.Client,
    zservice: Any,
    operation: str,
    params: dict,
    headers: dict,
    build_directly: bool,
) -> Any:
    """The HTTP response to the call, its request written by crm.client.envelopes where
    ``build_directly`` and it can, else built by zeep; posted alike through this client's
    CapturingTransport either way, as zeep's binding posts it."""
    if build_directly:
        try:
            message, http_headers = envelopes.envelope(
                zclient, zservice, operation, params, headers
            )
        except envelopes.LeftToZeep:
            pass
        else:
            STATS["requests_written"] += 1  # by crm.client.envelopes, not zeep
            return zclient.transport.post(
                zservice._binding_options["address"], message, http_headers
            )
    with zclient.settings(raw_response=True):
        return getattr(zservice, operation)(**params, _soapheaders=headers)


def send(
    zclient: zeep.Client,
    zservice: Any,
    operation: str,
    params: dict,
    headers: dict,
    *,
    build_directly: bool = False,
) -> Any:
    """zeep's result of the call (what ``getattr(zservice, operation)(...)`` returns),
    its request written directly where ``build_directly`` and it can (see ``_post``)."""
    if not build_directly or operation not in envelopes.OPERATIONS:
        return getattr(zservice, operation)(**params, _soapheaders=headers)
    response = _post(zclient, zservice, operation, params, headers, build_directly)
    binding = zservice._binding
    return binding.process_reply(zclient, binding.get(operation), response)


def send_raw(
    zclient: zeep.Client,
    zservice: Any,
    operation: str,
    params: dict,
    headers: dict,
    *,
    build_directly: bool = False,
) -> Any:
    """Send as zeep does (the request built and checked by zeep, or written directly
    where ``build_directly`` and it can, see ``_post``) but parse the
    reply with zeep's hardened XML parser only (no DTDs, entities or network), into
    ``SimpleNamespace(header=..., body=<the response element>)`` shaped like zeep's
    result, so the caller reads ExceptionInfo and Succeeded the same way. A reply
    other than 200 (a fault) goes through zeep's own processing and raises there."""
    response = _post(zclient, zservice, operation, params, headers, build_directly)
    binding = zservice._binding
    if response.status_code != 200:
        return binding.process_reply(zclient, binding.get(operation), response)
    envelope = zeep.loader.parse_xml(response.content, zclient.transport, settings=ZEEP_SETTINGS)
    # What zeep checks before it reads a body, with its errors: the root is a SOAP
    # envelope, and a Fault in the body of a 200 reply is raised as a fault.
    nsmap = binding.nsmap
    if envelope.tag != etree.QName(nsmap["soap-env"], "Envelope"):
        raise zeep.exceptions.XMLSyntaxError(
            "The XML returned by the server does not contain a valid "
            f"{{{nsmap['soap-env']}}}Envelope root element. The root element found is "
            f"{envelope.tag} "
        )
    if envelope.find("soap-env:Body/soap-env:Fault", namespaces=nsmap) is not None:
        return binding.process_error(envelope, binding.get(operation))
    header_el, body_el = child(envelope, "Header"), child(envelope, "Body")
    if body_el is None or not len(body_el):
        raise PermanentCrmError(f"NetServer answered {operation} without a body")
    info = None
    succeeded = True
    if header_el is not None:
        info_el = child(header_el, "ExceptionInfo")
        if info_el is not None and len(info_el):
            info = SimpleNamespace(
                Message=(getattr(child(info_el, "Message"), "text", None) or ""),
                ExceptionType=(getattr(child(info_el, "ExceptionType"), "text", None) or ""),
            )
        flag = child(header_el, "Succeeded")
        if flag is not None and (flag.text or "").strip().lower() == "false":
            succeeded = False
    return SimpleNamespace(
        header=SimpleNamespace(ExceptionInfo=info, Succeeded=succeeded), body=body_el[0]
    )


def zeep_body(zservice: Any, operation: str, element: Any) -> Any:
    """The reply body zeep would have returned for the envelope ``element`` (a response
    element from ``send_raw``) is in: for a direct reader that meets a shape it leaves
    to zeep."""
    result = zservice._binding.get(operation).process_reply(element.getroottree().getroot())
    return getattr(result, "body", result)


# -- the call record ---------------------------------------------------------------------

_SECRET_ELEMENTS = re.compile(
    r"(<(?:[\w-]+:)?(?:Ticket|Password|ApplicationToken|SignedSystemToken|Token|UserName|Secret)"
    r"(?:\s[^>]*)?>)[^<]*(</)"
)


def redact(text: str, secrets: Iterable[str]) -> str:
    text = _SECRET_ELEMENTS.sub(r"\1[redacted]\2", text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


def call_record(
    *,
    agent: str,
    operation: str,
    started_at: datetime,
    duration_ms: int,
    outcome: str,
    error: str,
    capture: Any,
    secrets: list[str],
    correlation: str,
) -> CallRecord:
    """The log's record of one round trip, with every secret taken out."""
    request = getattr(capture, "request", b"") or b""
    response = getattr(capture, "response", b"") or b""
    return CallRecord(
        agent=agent,
        operation=operation,
        started_at=started_at,
        duration_ms=duration_ms,
        outcome=outcome,
        http_status=getattr(capture, "status", None),
        error=redact(error, secrets)[:1000],
        request_excerpt=redact(request[: EXCERPT_CHARS * 2].decode("utf-8", "replace"), secrets)[
            :EXCERPT_CHARS
        ],
        response_excerpt=redact(response[: EXCERPT_CHARS * 2].decode("utf-8", "replace"), secrets)[
            :EXCERPT_CHARS
        ],
        correlation=correlation,
    )


# -- what went wrong -------------------------------------------------------------------------


class TicketRefused(Exception):
    """NetServer refused the ticket: renew it once and try again."""


def detail_text(detail: Any, name: str) -> str:
    if detail is None:
        return ""
    for element in detail.iter():
        if isinstance(element.tag, str) and element.tag.rsplit("}", 1)[-1] == name:
            return element.text or ""
    return ""


def is_ticket_refusal(exception_type: str) -> bool:
    return any(word in exception_type for word in ("Session", "Ticket", "NotAuthenticated"))


def error_for_fault(message: str, exception_type: str) -> CrmError:
    if "ApplicationToken" in exception_type or "Licens" in exception_type:
        return ConfigurationCrmError(message, exception_type=exception_type)
    if "NotFound" in exception_type:
        return NotFoundCrmError(message, exception_type=exception_type)
    if "Throttl" in exception_type or "TooMany" in exception_type:
        return TransientCrmError(message, exception_type=exception_type)
    return PermanentCrmError(message, exception_type=exception_type)


def failure_of_reply(header: Any) -> Exception | None:
    """The error a 200 reply reports in its ExceptionInfo header, if it reports one."""
    info = getattr(header, "ExceptionInfo", None) if header is not None else None
    if info is None or getattr(header, "Succeeded", True) is not False:
        return None
    exception_type = info.ExceptionType or ""
    if is_ticket_refusal(exception_type):
        return TicketRefused(info.Message or "")
    return error_for_fault(info.Message or "NetServer call failed", exception_type)


def classify(exc: Exception, *, base_url: str, timeout: float) -> Exception:
    """The hub's error for an exception raised while calling NetServer."""
    if isinstance(exc, HttpStatusError):
        if exc.status == 404:
            return ConfigurationCrmError(
                f"HTTP 404: no NetServer service at this address ({base_url})"
            )
        return TransientCrmError(f"HTTP {exc.status} from NetServer", retry_after=exc.retry_after)
    if isinstance(exc, AddressRefused):
        return ConfigurationCrmError(f"Refused SuperOffice address: {exc}")
    if isinstance(exc, RedirectRefused):
        return ConfigurationCrmError(
            f"NetServer at {base_url} answered HTTP {exc.status} with a redirect to "
            f"{exc.location or 'another address'}. The hub follows no redirect (it would "
            "send the credentials along): set the SuperOffice address to the one to use."
        )
    if isinstance(exc, ReplyTooLarge):
        return ConfigurationCrmError(
            f"NetServer's reply was larger than {exc.limit // (1024 * 1024)} MB and was "
            "refused. Ask for less at a time, or raise CRM_MAX_REPLY_MB."
        )
    if isinstance(exc, DeadlineExceeded):
        return TransientCrmError(
            f"NetServer's reply did not arrive in full within {exc.seconds:g} s "
            "(CRM_DEADLINE_SECONDS)"
        )
    if isinstance(exc, requests.Timeout):
        return TransientCrmError(f"NetServer did not answer within {timeout:g} s")
    if isinstance(exc, requests.ConnectionError):
        return TransientCrmError(f"Cannot connect to NetServer: {type(exc).__name__}")
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return ConfigurationCrmError(f"Invalid NetServer address: {exc}")
    if isinstance(exc, zeep.exceptions.Fault):
        exception_type = detail_text(exc.detail, "ExceptionType")
        if is_ticket_refusal(exception_type):
            return TicketRefused(exc.message or "ticket refused")
        return error_for_fault(exc.message or "SOAP fault", exception_type)
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
                f"HTTP 404: no NetServer WSDL at this address ({base_url})"
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


def outcome_of(error: Exception | None) -> str:
    if error is None:
        return "ok"
    if isinstance(error, TicketRefused):
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


def elements(array: Any, item: str) -> list[Any]:
    """The items of a zeep array (``ArrayOfX``), or of a plain list."""
    if array is None:
        return []
    values = getattr(array, item, None) if not isinstance(array, list) else array
    return list(values or [])
