"""The NetServer simulator's HTTP server (SOAP 1.1 over a threaded http.server).

Routes:
- ``POST /Remote/Services88/<Agent>.svc``                SOAP operations
- ``GET  /Remote/Services88/<Agent>.svc?wsdl``           the hub's WSDL, address rewritten
- ``POST /login/services/PartnerSystemUserService.svc``  Online system-user ticket exchange
- ``POST /_sim/control``  JSON ``{"mode": "normal"|"down"|"slow"|"fail_ratio"|"throttle"|
  "entity_bomb"|"truncated", "delay": s, "ratio": r, "retry_after": s, "operations": [...],
  "refuse_tickets": bool, "expire_tickets": bool, "newer_version": bool,
  "system_user_jwt": "valid"|"forged"|"wrong_issuer"|"wrong_audience"|"expired"}``
- ``/login/...``  the OpenID Connect identity provider (see ``idp``)
- ``POST /_sim/reset``, ``GET /_sim/state/<what>[/<id>]``, ``GET /_sim/partner-key``
- ``POST /_sim/consent``  a consent change made in SuperOffice at a given time
- webhooks: ``GET /_sim/state/webhooks`` (as saved), ``/_sim/state/webhook_log`` (every
  delivery attempt), ``/_sim/state/webhook_queue`` ({"idle": bool}); ``/_sim/control``
  takes ``webhook_delay``, ``webhook_duplicate``, ``webhook_reorder``, ``webhook_drop``,
  ``webhook_retry_scale``, ``webhook_failures_to_disable``, ``webhook_sign_with``,
  ``webhook_senders``
  (see ``state.Control``)
- ``GET /_sim/state/consents?ids=1,2,3``  several persons' consents at once
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

from crm.wsdl import render, spec

from . import idp, xmlio
from .errors import SimFault
from .handlers import HANDLERS, authenticate_username_password
from .state import Tenant

SERVICES_PREFIX = "/Remote/Services88/"
PARTNER_PATH = "/login/services/PartnerSystemUserService.svc"
TICKET_CLAIM = "http://schemes.superoffice.net/identity/ticket"
ASSOCIATE_CLAIM = "http://schemes.superoffice.net/identity/associateid"
NETSERVER_URL_CLAIM = "http://schemes.superoffice.net/identity/netserver_url"
CTX_CLAIM = "http://schemes.superoffice.net/identity/ctx"
SERIAL_CLAIM = "http://schemes.superoffice.net/identity/serial"

TRUNCATED_REPLY = (
    f'<s:Envelope xmlns:s="{xmlio.SOAP_ENV}"><s:Body><GetPersonEntityResponse xmlns="{spec.NS}">'
    "<Response><PersonId>5</PersonId><Firstname>Ol"
).encode()
ENTITY_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>&lol3;'
    b"</s:Body></s:Envelope>"
)


class Simulator:
    """Tenant state + partner key + the WSDL cache; shared by all request threads."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.partner_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.partner_public_key = self.partner_key.public_key()
        self._wsdl_cache: dict[tuple[str, str, bool], bytes] = {}

    def partner_private_pem(self) -> str:
        return self.partner_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def wsdl(self, agent: str, base: str, *, newer: bool = False) -> bytes:
        """The agent's WSDL; as a newer NetServer's, with the operations only it has."""
        key = (agent, base, newer)
        if key not in self._wsdl_cache:
            self._wsdl_cache[key] = render.render_agent(
                agent, address_base=base, newer=newer
            ).encode()
        return self._wsdl_cache[key]

    def verify_signed_token(self, signed: str) -> bool:
        try:
            token, stamp, signature = signed.rsplit(".", 2)
            self.partner_public_key.verify(
                base64.b64decode(signature),
                f"{token}.{stamp}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            when = datetime.strptime(stamp, "%Y%m%d%H%M").replace(tzinfo=UTC)
        except (ValueError, InvalidSignature):
            return False
        if token != self.tenant.system_user_token:
            return False
        return abs(datetime.now(UTC) - when) < timedelta(minutes=10)

    def system_user_jwt(self, ticket: str, netserver_url: str) -> str:
        """The system user's JWT as SuperOffice issues it: RS256, signed with the key the
        simulator publishes at /login/.well-known/jwks, issuer "SuperOffice AS", audience
        ``spn:<serial>``. ``control.system_user_jwt`` spoils it on purpose for tests."""
        t = self.tenant
        key = idp.provider_for(self).key
        now = int(time.time())
        claims = {
            TICKET_CLAIM: ticket,
            ASSOCIATE_CLAIM: str(t.system_associate_id),
            NETSERVER_URL_CLAIM: netserver_url,
            CTX_CLAIM: t.context_identifier,
            SERIAL_CLAIM: t.serial,
            "iss": "SuperOffice AS",
            "aud": f"spn:{t.serial}",
            "iat": now,
            "nbf": now,
            "exp": int(now + t.ticket_ttl),
        }
        spoil = t.control.system_user_jwt
        if spoil == "wrong_issuer":
            claims["iss"] = "https://impostor.example"
        elif spoil == "wrong_audience":
            claims["aud"] = "spn:someone-else"
        elif spoil == "expired":
            claims |= {"iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}
        elif spoil == "forged":
            # Another key under the published key's id: the signature cannot verify.
            key = RSAKey.generate_key(2048, parameters={"kid": key.kid, "alg": "RS256"})
        return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)


def _header_text(header: Any, name: str) -> str | None:
    if header is None:
        return None
    for child in header:
        if xmlio.local(child.tag) == name:
            if len(child):
                return child[0].text
            return child.text
    return None


class SimulatorHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "NetServerSimulator/1.0"
    sim: Simulator  # set on the server class

    def setup(self) -> None:
        super().setup()
        # Without TCP_NODELAY keep-alive calls stall on Nagle + delayed ACK (~40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        # Quiet by default: the benchmark makes thousands of calls.
        return

    # -- plumbing ---------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str = "text/xml; charset=utf-8",
        extra: dict[str, str] | None = None,
    ) -> None:
        head = [
            f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
        ]
        for key, value in (extra or {}).items():
            head.append(f"{key}: {value}")
        if getattr(self, "_call_answered", None) is not None:
            self._call_answered()  # the reply is ready: the call is no longer being answered
        # One write for head and body (see TCP_NODELAY above).
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        self.wfile.flush()

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data, default=str).encode(), content_type="application/json")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _base_url(self) -> str:
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        return f"http://{host}{SERVICES_PREFIX}"

    # -- GET ------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        path = parts.path
        if path.startswith(SERVICES_PREFIX) and parts.query.lower() == "wsdl":
            agent = path[len(SERVICES_PREFIX) :].removesuffix(".svc")
            if agent not in spec.AGENTS:
                self._send(404, b"unknown agent", content_type="text/plain")
                return
            with self.sim.tenant.lock:
                self.sim.tenant.counters["wsdl_loads"] += 1
            newer = self.sim.tenant.control.newer_version
            self._send(200, self.sim.wsdl(agent, self._base_url(), newer=newer))
            return
        if path == "/_sim/partner-key":
            self._send(200, self.sim.partner_private_pem().encode(), content_type="text/plain")
            return
        if path == "/_sim/health":
            self._json(200, {"ok": True})
            return
        if path.startswith("/_sim/state/"):
            self._state(path[len("/_sim/state/") :].strip("/").split("/"), parts.query)
            return
        if path.startswith(idp.PREFIX):
            idp.respond(self, self.sim)
            return
        self._send(404, b"not found", content_type="text/plain")

    def _state(self, parts: list[str], query: str = "") -> None:
        t = self.sim.tenant
        what = parts[0]
        arg = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        with t.lock:
            if what == "counters":
                data: Any = dict(t.counters) | {"operations": dict(t.op_counts)}
            elif what == "config":
                data = {
                    "username": t.username,
                    "password": t.password,
                    "app_token": t.app_token,
                    "system_user_token": t.system_user_token,
                    "context_identifier": t.context_identifier,
                    "usecs": dict(t.usecs),
                    "duplicate_email": "duplicate@example.com",
                }
            elif what == "archive_log":
                data = list(t.archive_log)
            elif what == "list_log":
                data = list(t.list_log)
            elif what == "sales":
                data = list(t.sales.values())
            elif what == "appointments":
                data = list(t.appointments.values())
            elif what == "tickets":
                data = list(t.service_tickets.values())
            elif what == "persons" and arg is not None:
                person = t.persons.get(arg)
                data = (
                    None if person is None else person | {"Interests": sorted(person["Interests"])}
                )
            elif what == "persons":
                data = {"count": len(t.persons), "max_id": max(t.persons, default=0)}
            elif what == "companies" and arg is not None:
                data = t.companies.get(arg)
            elif what == "selections" and arg is not None:
                selection = t.selections.get(arg)
                data = (
                    None
                    if selection is None
                    else {"name": selection["name"], "members": sorted(selection["members"])}
                )
            elif what == "projects" and arg is not None:
                project = t.projects.get(arg)
                data = (
                    None
                    if project is None
                    else {
                        "name": project["name"],
                        "members": sorted(project["members"].values()),
                        "member_ids": {str(k): v for k, v in project["members"].items()},
                    }
                )
            elif what == "consents" and arg is not None:
                data = dict(t.consents_by_person.get(arg, {}))
            elif what == "consents" and query.startswith("ids="):
                ids = [int(i) for i in query[4:].split(",") if i.strip().isdigit()]
                data = {str(i): dict(t.consents_by_person.get(i, {})) for i in ids}
            elif what == "webhooks":
                data = [
                    {k: v for k, v in hook.items() if k != "Secret"}
                    | {"has_secret": bool(hook["Secret"])}
                    for hook in t.webhooks.values()
                ]
            elif what == "webhook_log":
                data = list(t.webhook_log)
            elif what == "webhook_queue":
                data = {"idle": t._dispatcher is None or t._dispatcher.idle()}
            else:
                self._json(404, {"error": f"unknown state {'/'.join(parts)}"})
                return
        self._json(200, data)

    # -- POST -----------------------------------------------------------------------

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        body = self._read_body()
        if path == "/_sim/control":
            self._control(json.loads(body or b"{}"))
            return
        if path == "/_sim/consent":
            self._consent_at(json.loads(body or b"{}"))
            return
        if path == "/_sim/reset":
            self.sim.tenant.reset()
            self._json(200, {"ok": True})
            return
        if path == PARTNER_PATH:
            self._partner(body)
            return
        if path.startswith(idp.PREFIX):
            idp.respond(self, self.sim, body)
            return
        if path.startswith(SERVICES_PREFIX):
            with self.sim.tenant.call_in_flight() as self._call_answered:
                self._soap(path[len(SERVICES_PREFIX) :].removesuffix(".svc"), body)
            self._call_answered = None
            return
        self._send(404, b"not found", content_type="text/plain")

    def _control(self, data: dict[str, Any]) -> None:
        t = self.sim.tenant
        with t.lock:
            c = t.control
            if "mode" in data:
                c.mode = data["mode"]
            c.delay = float(data.get("delay", c.delay))
            c.ratio = float(data.get("ratio", c.ratio))
            if "retry_after" in data:
                c.retry_after = data["retry_after"]
            if "operations" in data:
                c.operations = set(data["operations"] or [])
            if "refuse_tickets" in data:
                c.refuse_tickets = bool(data["refuse_tickets"])
            if "newer_version" in data:
                c.newer_version = bool(data["newer_version"])
            if "system_user_jwt" in data:
                c.system_user_jwt = str(data["system_user_jwt"])
            if data.get("expire_tickets"):
                t.expire_tickets()
            for name, kind in (
                ("webhook_delay", float),
                ("webhook_duplicate", bool),
                ("webhook_reorder", int),
                ("webhook_drop", float),
                ("webhook_retry_scale", float),
                ("webhook_failures_to_disable", int),
                ("webhook_sign_with", str),
                ("webhook_senders", int),
            ):
                if name in data:
                    setattr(c, name, kind(data[name]))
            c.calls_seen = 0
        self._json(200, {"ok": True, "mode": c.mode})

    def _consent_at(self, data: dict[str, Any]) -> None:
        """A consent change someone in SuperOffice made at a given time (now by default):
        {"person_id", "purpose", "legal_base", "updated", "associate_id" (2)}."""
        t = self.sim.tenant
        when = datetime.fromisoformat(data["updated"]) if data.get("updated") else datetime.now(UTC)
        with t.lock:
            if int(data["person_id"]) not in t.persons:
                self._json(404, {"error": "unknown person"})
                return
            t._write_consent(
                int(data["person_id"]),
                data["purpose"],
                data["legal_base"],
                data.get("source", "USER"),
                data.get("comment", ""),
                when,
                # Someone in SuperOffice, not the hub's own user (associate 1).
                associate_id=int(data.get("associate_id", 2)),
            )
        self._json(200, {"ok": True})

    def _misbehave(self, operation: str) -> bool:
        """Apply the control mode. True when a response was already sent (or dropped)."""
        c = self.sim.tenant.control
        if c.mode == "normal" or (c.operations and operation not in c.operations):
            return False
        if c.mode == "down":
            # Drop the connection without an answer, as a dead tenant does.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if c.mode == "slow":
            time.sleep(c.delay)
            return False
        if c.mode == "throttle":
            extra = {} if c.retry_after is None else {"Retry-After": str(c.retry_after)}
            self._send(429, b"Too many requests", content_type="text/plain", extra=extra)
            return True
        if c.mode == "entity_bomb":
            self._send(200, ENTITY_BOMB)
            return True
        if c.mode == "truncated":
            # The first part of a well-formed answer, as when a proxy cuts the reply short.
            self._send(200, TRUNCATED_REPLY)
            return True
        if c.mode == "fail_ratio":
            with self.sim.tenant.lock:
                c.calls_seen += 1
                n = c.calls_seen
            # Deterministic share: fail whenever n * ratio crosses a whole number.
            if int(n * c.ratio) != int((n - 1) * c.ratio):
                self._send(
                    503,
                    b"Service unavailable",
                    content_type="text/plain",
                    extra={"Retry-After": "0"},
                )
                return True
        return False

    def _fault(self, fault: SimFault, namespace: str = spec.NS) -> None:
        self._send(
            500,
            xmlio.fault_envelope(
                code=fault.code,
                message=fault.message,
                exception_type=fault.exception_type,
                namespace=namespace,
            ),
        )

    def _soap(self, agent: str, body: bytes) -> None:
        t = self.sim.tenant
        operations = spec.AGENTS.get(agent)
        if operations is None:
            self._send(404, b"unknown service", content_type="text/plain")
            return
        try:
            header, request = xmlio.parse_envelope(body)
        except xmlio.UnsafeXml as exc:
            self._fault(SimFault(str(exc), exception_type="XmlSecurityException"))
            return
        except ValueError as exc:
            self._fault(
                SimFault(f"Malformed request: {exc}", exception_type="SerializationException")
            )
            return
        operation = xmlio.local(request.tag)
        if self._misbehave(operation):
            return
        newer_only = (agent, operation) in spec.NEWER_OPERATIONS
        if operation not in operations or (newer_only and not t.control.newer_version):
            self._fault(
                SimFault(
                    f"Unknown operation {agent}.{operation}",
                    exception_type="ActionNotSupportedException",
                )
            )
            return
        request_fields, response_fields = operations[operation]
        params = xmlio.read_fields(request_fields, request)
        with t.lock:
            t.counters["calls"] += 1
            key = f"{agent}.{operation}"
            t.op_counts[key] = t.op_counts.get(key, 0) + 1
            if _header_text(header, "ApplicationToken") != t.app_token:
                self._fault(
                    SimFault(
                        "Invalid application token", exception_type="SoApplicationTokenException"
                    )
                )
                return
            try:
                if agent in spec.NO_TICKET_AGENTS:
                    values = authenticate_username_password(t, params)
                else:
                    associate_id = t.associate_for_ticket(_header_text(header, "Credentials"))
                    if associate_id is None:
                        raise SimFault(
                            "The ticket is not valid or has expired",
                            exception_type="SoSessionExpiredException",
                        )
                    values = HANDLERS[(agent, operation)](t, associate_id, params)
            except SimFault as fault:
                self._fault(fault)
                return
            except (KeyError, TypeError, ValueError) as exc:
                self._fault(
                    SimFault(f"Invalid request: {exc}", exception_type="SoValidationException")
                )
                return
        newer = xmlio.NEWER_VERSION.set(t.control.newer_version)
        try:
            envelope = xmlio.response_envelope(
                element=spec.response_element(agent, operation),
                fields=response_fields,
                values=values,
            )
        finally:
            xmlio.NEWER_VERSION.reset(newer)
        self._send(200, envelope)

    def _partner(self, body: bytes) -> None:
        t = self.sim.tenant
        try:
            header, request = xmlio.parse_envelope(body)
        except ValueError as exc:
            self._fault(SimFault(str(exc), exception_type="XmlSecurityException"), spec.PARTNER_NS)
            return
        if self._misbehave("Authenticate"):
            return
        signed = None
        for child in request:
            if xmlio.local(child.tag) == "SignedSystemToken":
                signed = child.text
        fields = [("IsSuccessful", "boolean"), ("Token", "string"), ("ErrorMessage", "string")]
        with t.lock:
            if _header_text(header, "ApplicationToken") != t.app_token:
                values: dict[str, Any] = {
                    "IsSuccessful": False,
                    "ErrorMessage": "Invalid application token",
                }
            elif _header_text(header, "ContextIdentifier") != t.context_identifier:
                values = {"IsSuccessful": False, "ErrorMessage": "Unknown context identifier"}
            elif not signed or not self.sim.verify_signed_token(signed):
                values = {"IsSuccessful": False, "ErrorMessage": "Invalid signed system token"}
            else:
                ticket = t.issue_ticket(t.system_associate_id)
                values = {
                    "IsSuccessful": True,
                    "Token": self.sim.system_user_jwt(ticket, self._base_url()),
                }
        self._send(
            200,
            xmlio.response_envelope(
                element="AuthenticationResponse",
                fields=fields,
                values=values,
                namespace=spec.PARTNER_NS,
                with_headers=False,
            ),
        )


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def make_server(*, host: str, port: int, tenant: Tenant) -> SimulatorServer:
    simulator = Simulator(tenant)
    handler = type("BoundSimulatorHandler", (SimulatorHandler,), {"sim": simulator})
    return SimulatorServer((host, port), handler)


def serve_in_thread(server: SimulatorServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread
