"""The client's core: its settings and collaborators, and one SOAP round trip
(concurrency cap, ticket header and renewal, classification, the call log)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..errors import ConfigurationCrmError, CrmError, TransientCrmError
from ..types import Principal
from ..wsdl import spec
from . import direct, slots, transport
from .transport import CallRecorder, TicketRefused

BUNDLED_WSDL_DIR = Path(__file__).resolve().parent.parent / "wsdl"
PARTNER_AGENT = "PartnerSystemUserService"
PARTNER_BINDING = f"{{{spec.PARTNER_NS}}}BasicHttpBinding_IPartnerSystemUserService"
PARTNER_PATH = "/login/services/PartnerSystemUserService.svc"
# SuperOffice publishes the keys that sign its tokens here, per environment
# (SuperOfficeDocs: docs/en/api/authentication/online/validate-security-tokens.md).
JWKS_PATH = "/login/.well-known/jwks"

WsdlLocator = Callable[[str], str]


def bundled_wsdl(agent: str) -> str:
    return str(BUNDLED_WSDL_DIR / f"{agent}.wsdl")


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
    def login_root(self) -> str:
        """The SuperOffice environment's sign-in host (``https://online.superoffice.com``).

        A tenant may live on a numbered host (``online3``); SuperOffice says never to
        use those for authentication (SuperOfficeDocs:
        docs/en/api/authentication/online/api.md), so the digits are dropped there."""
        parts = urlsplit(self.base_url)
        host = parts.netloc
        name, _, domain = host.partition(".")
        if domain.lower() == "superoffice.com":
            host = f"{name.rstrip('0123456789') or name}.{domain}"
        return f"{parts.scheme}://{host}"

    @property
    def partner_service_url(self) -> str:
        return f"{self.login_root}{PARTNER_PATH}"

    @property
    def jwks_url(self) -> str:
        return f"{self.login_root}{JWKS_PATH}"

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


class ClientCore:
    """Settings, collaborators and the SOAP round trip every operation goes through."""

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
        call_slots: slots.CallSlots | None = None,
        slot_wait_seconds: float | None = None,
        parse_archive_directly: bool = True,
        read_persons_directly: bool = True,
        read_replies_directly: bool = True,
        build_requests_directly: bool = True,
    ) -> None:
        self.connection = connection
        # Archive replies (thousands of rows) are read straight from the XML instead of
        # through zeep's object model, which costs about a millisecond per row; the
        # contract tests run both ways against the official WSDL.
        self.parse_archive_directly = parse_archive_directly
        # The same for a person read (crm.client.persons.person_from_reply).
        self.read_persons_directly = read_persons_directly
        # And for the replies of the engine's saves and consent sync (crm.client.direct).
        self.read_replies_directly = read_replies_directly
        # And the requests of the engine's hot calls are written straight as the XML zeep
        # would send (crm.client.envelopes), not built through zeep's objects.
        self.build_requests_directly = build_requests_directly
        # One tenant's slow hour must not hold every worker: at most this many calls to
        # it at once, in this process or (``call_slots`` from crm.services) in them all.
        self._slots = call_slots or slots.process_slots(connection.base_url, max_concurrent_calls)
        self._slot_wait = timeout if slot_wait_seconds is None else slot_wait_seconds
        # Inside one_slot(): what keeps the slot between calls.
        self._hold: slots.SlotHold | None = None
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

    # -- the call log ------------------------------------------------------------------

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
        error: Exception | None,
        capture: Any,
    ) -> None:
        """Hand one round trip to the call log: the one place a call is recorded."""
        transport.STATS["calls"] += 1
        if self.recorder is None:
            return
        self.recorder(
            transport.call_record(
                agent=agent,
                operation=operation,
                started_at=started_at,
                duration_ms=int((time.perf_counter() - started) * 1000),
                outcome=transport.outcome_of(error),
                error="" if error is None else str(error),
                capture=capture,
                secrets=self._secrets(),
                correlation=self.correlation,
            )
        )

    # -- one round trip ---------------------------------------------------------------

    @contextmanager
    def one_slot(self, hold: slots.SlotHold | None = None) -> Iterator[None]:
        """The calls made inside go out under one slot of the tenant's cap, taken at the
        first call and kept between calls (see slots.SlotHold). A run's calls follow one
        another, so it never needs two at once, and taking the slot once instead of for
        every call saves two round trips to the shared cap per call after the first.
        Given back at the end, unless ``hold`` is the caller's: then the caller gives it
        back (a worker keeps it for the next run of the same tenant). Not for a client
        used by several threads at once."""
        own = hold is None
        self._hold = slots.SlotHold() if hold is None else hold
        try:
            yield
        finally:
            held, self._hold = self._hold, None
            if own:
                held.release_all()

    def _send(self, **kwargs: Any) -> Any:
        """``_send_now`` within the tenant's concurrency cap."""
        hold = self._hold
        if hold is None:
            token = self._slots.acquire(timeout=self._slot_wait)
        else:
            token = hold.take(self._slots, timeout=self._slot_wait)
        if token is None:
            raise TransientCrmError(
                "Too many concurrent calls to this SuperOffice tenant", retry_after=1.0
            )
        try:
            return self._send_now(**kwargs)
        finally:
            if hold is None:
                self._slots.release(token)

    def _service_of(self, agent: str, binding: str | None = None, address: str | None = None):
        location = self.wsdl_locator(agent)
        zservice = transport.service(
            location,
            self.timeout,
            binding or f"{{{spec.NS}}}BasicHttpBinding_{agent}",
            address or f"{self.connection.base_url}{agent}.svc",
        )
        return transport.zeep_client(location, self.timeout), zservice

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
        read: Callable[[Any, Callable[[], Any]], Any] | None = None,
    ) -> Any:
        """One SOAP round trip, classified and logged. Returns the reply body (with
        ``raw_reply``, the response element as lxml parsed it, see ``transport.send_raw``).

        ``check`` may raise a CrmError for a reply that is valid SOAP but a refusal
        (a failed sign-in), so the log row carries the real outcome. ``read`` (implies
        ``raw_reply``) turns the response element into what is returned, given it and
        a function that reads it through zeep instead; what it raises is classified and
        logged like an error of zeep's own reading."""
        started, started_at = time.perf_counter(), datetime.now(UTC)
        capture: Any = None

        def record(error: Exception | None = None) -> None:
            self._record(
                agent=agent,
                operation=operation,
                started=started,
                started_at=started_at,
                error=error,
                capture=capture,
            )

        try:
            zclient, zservice = self._service_of(agent, binding, address)
            capture = zclient.transport.capture
            build = self.build_requests_directly
            if raw_reply or read is not None:
                result = transport.send_raw(
                    zclient, zservice, operation, params, headers, build_directly=build
                )
            else:
                result = transport.send(
                    zclient, zservice, operation, params, headers, build_directly=build
                )
        except CrmError as exc:
            record(exc)
            raise
        except Exception as exc:
            error = transport.classify(exc, base_url=self.connection.base_url, timeout=self.timeout)
            record(error)
            raise error from exc
        body = getattr(result, "body", result)
        # NetServer may also report failure in the ExceptionInfo header of a 200 reply.
        failure = transport.failure_of_reply(getattr(result, "header", None))
        if failure is not None:
            record(failure)
            raise failure
        if read is not None:
            element = body
            try:
                body = read(element, lambda: transport.zeep_body(zservice, operation, element))
            except CrmError as exc:
                record(exc)
                raise
            except Exception as exc:
                error = transport.classify(
                    exc, base_url=self.connection.base_url, timeout=self.timeout
                )
                record(error)
                raise error from exc
        if check is not None:
            try:
                check(body)
            except CrmError as exc:
                record(exc)
                raise
        record()
        return body

    def _offers(self, agent: str, operation: str) -> bool:
        """Whether the WSDL the client uses for ``agent`` has ``operation`` (a tenant's
        own WSDL may be newer than the hub's)."""
        try:
            _, zservice = self._service_of(agent)
            zservice._binding.get(operation)
        except ValueError:
            return False
        except Exception as exc:
            raise transport.classify(
                exc, base_url=self.connection.base_url, timeout=self.timeout
            ) from exc
        return True

    # -- tickets -------------------------------------------------------------------------

    def _authenticate(self) -> tuple[str, datetime, Principal | None]:
        raise NotImplementedError  # AuthenticationMixin

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

    def _call(
        self,
        agent: str,
        operation: str,
        *,
        raw_reply: bool = False,
        read: Callable[[Any, Callable[[], Any]], Any] | None = None,
        **params: Any,
    ) -> Any:
        headers = {
            "ApplicationToken": self.connection.application_token,
            "Credentials": {"Ticket": self._current_ticket()},
        }
        send = {
            "agent": agent,
            "operation": operation,
            "params": params,
            "raw_reply": raw_reply,
            "read": read,
        }
        try:
            return self._send(**send, headers=headers)
        except TicketRefused:
            self.ticket_store.clear()
        # The ticket expired or was revoked: renew once, then give up as configuration.
        headers["Credentials"] = {"Ticket": self._renew_ticket()}
        try:
            return self._send(**send, headers=headers)
        except TicketRefused as exc:
            self.ticket_store.clear()
            self._ticket = None
            raise ConfigurationCrmError(
                "SuperOffice refused a freshly issued ticket", exception_type="TicketRefused"
            ) from exc

    def _call_read(
        self,
        agent: str,
        operation: str,
        *,
        directly: Callable[[Any], Any],
        through_zeep: Callable[[Any], Any],
        **params: Any,
    ) -> Any:
        """``_call``, the reply read by ``directly`` from its response element, or (where
        that leaves it to zeep, or the client reads no replies directly) by
        ``through_zeep`` from zeep's body, after the call is logged as without this."""
        if not self.read_replies_directly:
            return through_zeep(self._call(agent, operation, **params))
        result = self._call(agent, operation, read=direct.reader(directly), **params)
        return result.value if isinstance(result, direct.Read) else through_zeep(result)


# The ticket lifetime: "The ticket is short-lived and will only last 6 hours"
# (SuperOfficeDocs, system user docs).
TICKET_LIFETIME = timedelta(hours=6)
TICKET_SAFETY_MARGIN = timedelta(minutes=10)
