"""The HTTP layer every call to a tenant's address goes through (SOAP, WSDL, OpenID Connect).

A tenant's admin names the address, so the hub must not become a way into its own
network, and a tenant's server must not be able to tie up or exhaust a worker:

- **Addresses are checked when the connection is made.** The name is resolved by the
  connection itself and every address it resolves to must be globally routable
  (``address_allowed``); the socket is connected to that checked address, while TLS
  still sends and verifies the real host name. A name that resolved to a public address
  when it was saved and to loopback now (DNS rebinding) is refused before any byte is
  sent. ``allow_private`` (CRM_ALLOW_PRIVATE_ADDRESSES) lifts this for the embedded
  default and the tests. Proxies from the environment are not used.
- **No redirect is followed.** A 3xx answer raises ``RedirectRefused`` before anything is
  sent to the new address: a 307 would re-send the POST with the password and the
  application token. The address to use is a setting the admin fixes.
- **Replies are read streamed with a cap** on the bytes received and on the bytes they
  expand to (urllib3 decodes gzip and deflate in bounded steps), so a huge or
  gzip-bomb reply is ``ReplyTooLarge`` with a worker's memory bounded by the cap.
- **Every request has an overall deadline**, not only a timeout per read: a reply that
  trickles in a byte at a time is cut off when the deadline passes (``DeadlineExceeded``).

``guarded_session(limits=...)`` returns a ``requests.Session`` with these rules;
``guard_session(session, limits=...)`` puts them on one made elsewhere (authlib's).
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
import itertools
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

MB = 1024 * 1024
CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class Limits:
    allow_private: bool = False
    max_reply_bytes: int = 20 * MB
    # The longest one request may take, from connecting to the last byte of the reply.
    deadline_seconds: float = 60.0


LimitsProvider = Callable[[], Limits]


def limits_from_settings() -> Limits:
    """The limits the operator set (read at every request, so a change applies at once)."""
    from django.conf import settings

    return Limits(
        allow_private=bool(getattr(settings, "CRM_ALLOW_PRIVATE_ADDRESSES", False)),
        max_reply_bytes=int(getattr(settings, "CRM_MAX_REPLY_MB", 20) * MB),
        deadline_seconds=float(getattr(settings, "CRM_DEADLINE_SECONDS", 60.0)),
    )


# -- errors (requests' own classes, so callers that know requests classify them) -------------


class AddressRefused(requests.ConnectionError):
    """The host resolves to an address the hub may not call (loopback, private, reserved)."""


class RedirectRefused(requests.RequestException):
    def __init__(self, status: int, location: str, **kwargs: Any) -> None:
        super().__init__(f"HTTP {status} redirect to {location or '(no Location)'}", **kwargs)
        self.status = status
        self.location = location


class ReplyTooLarge(requests.RequestException):
    def __init__(self, limit: int, **kwargs: Any) -> None:
        super().__init__(f"The reply is larger than {limit // MB} MB", **kwargs)
        self.limit = limit


class DeadlineExceeded(requests.Timeout):
    def __init__(self, seconds: float, **kwargs: Any) -> None:
        super().__init__(f"No complete reply within {seconds:g} s", **kwargs)
        self.seconds = seconds


# -- which addresses may be called ----------------------------------------------------------

# Python's is_global is the base. Ranges it lets through on some Python versions, or that
# IANA's special-purpose registries mark as not globally reachable, are added here:
# shared address space (RFC 6598) and IETF protocol assignments (RFC 6890), the NAT64
# local-use prefix (RFC 8215). 3.11 counts 192.0.0.0/24 as global.
_NOT_GLOBAL = tuple(
    ipaddress.ip_network(n)
    for n in ("100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "64:ff9b:1::/48")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def address_allowed(address: str) -> bool:
    """True where ``address`` (an IP literal) is globally routable, including any IPv4
    address an IPv6 one carries (IPv4-mapped, 6to4, NAT64), which would reach it."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            candidates.append(ip.sixtofour)
        if ip.teredo is not None:
            candidates.extend(ip.teredo)
        if ip in _NAT64:
            candidates.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return all(
        c.is_global
        and not c.is_multicast
        and not any(c in net for net in _NOT_GLOBAL if c.version == net.version)
        for c in candidates
    )


def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[tuple]:
    """getaddrinfo for a TCP connection, refused (AddressRefused) unless every address is
    allowed. Every address, not just one: a name that points anywhere internal is refused."""
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    if not allow_private:
        refused = sorted({info[4][0] for info in infos if not address_allowed(info[4][0])})
        if refused:
            raise AddressRefused(
                f"{host} resolves to an internal address ({', '.join(refused)}); "
                "the hub only calls public addresses"
            )
    return infos


# -- one call at a time: its deadline ---------------------------------------------------------


class _Watchdog:
    """One thread per process that ends the calls whose deadline passed.

    A thread per call (a ``threading.Timer``) cost more CPU to start and stop than the
    rest of the HTTP layer; this one sleeps until the nearest deadline. Started on the
    first call, and again in a forked child (a Celery worker), which has no thread of
    its parent's."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._heap: list[tuple[float, int, _Call]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, call: _Call) -> None:
        with self._ready:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="crm-deadlines")
                self._thread.daemon = True
                self._thread.start()
            heapq.heappush(self._heap, (call.deadline, next(self._order), call))
            if self._heap[0][2] is call:
                self._ready.notify()

    def _run(self) -> None:
        while True:
            due: list[_Call] = []
            with self._ready:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap)[2])
                if not due:
                    self._ready.wait(self._heap[0][0] - now if self._heap else None)
            for call in due:
                call.expire()


_watchdog = _Watchdog()


def _watchdog_renew() -> None:
    global _watchdog
    _watchdog = _Watchdog()


os.register_at_fork(after_in_child=_watchdog_renew)


class _Call:
    """The deadline of the request this thread is making, and the sockets it uses.

    When the deadline passes, the watchdog shuts the sockets down: a read blocked on a
    reply that trickles in returns at once, whatever the per-read timeout."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.expired = False
        self._finished = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.expired:
                _shutdown(sock)
            else:
                self._sockets.append(sock)

    def expire(self) -> None:
        with self._lock:
            if self._finished:
                return  # done in time: its sockets belong to the pool again
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def __enter__(self) -> _Call:
        _watchdog.watch(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._finished = True
            self._sockets.clear()


def _shutdown(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for an SSLSocket: it ends a blocked read in
    # another thread without touching the TLS state that thread is using.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_current = threading.local()


class _RefusedConnection(NewConnectionError):
    """AddressRefused inside urllib3, which wraps any OSError it sees; unwrapped in send."""


def _refusal_in(exc: BaseException) -> _RefusedConnection | None:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, _RefusedConnection):
            return exc
        reason = getattr(exc, "reason", None)
        nxt = reason if isinstance(reason, BaseException) else None
        if nxt is None and exc.args and isinstance(exc.args[0], BaseException):
            nxt = exc.args[0]
        exc = nxt or exc.__cause__ or exc.__context__
        seen += 1
    return None


def _current_call() -> _Call | None:
    return getattr(_current, "call", None)


# -- connections that resolve and check their own address ------------------------------------


class _GuardedConnectionMixin:
    limits_provider: LimitsProvider

    def _new_conn(self) -> socket.socket:
        call = _current_call()
        limits = self.limits_provider()
        timeout = self.timeout  # type: ignore[attr-defined]
        if call is not None:
            left = call.remaining()
            if left <= 0:
                raise ConnectTimeoutError(self, "The call's deadline passed before connecting")
            timeout = left if timeout is None else min(timeout, left)
        host, port = self._dns_host, self.port  # type: ignore[attr-defined]
        try:
            infos = resolve_checked(host, port, allow_private=limits.allow_private)
        except AddressRefused as exc:
            raise _RefusedConnection(self, str(exc)) from None
        except socket.gaierror as exc:
            raise NewConnectionError(self, f"Cannot resolve {host}: {exc}") from exc
        error: OSError | None = None
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            try:
                for option in self.socket_options or ():  # type: ignore[attr-defined]
                    sock.setsockopt(*option)
                sock.settimeout(timeout)
                # Connected to the address that was checked, never resolved again.
                sock.connect(address)
            except TimeoutError as exc:
                sock.close()
                raise ConnectTimeoutError(self, f"Connection to {host} timed out") from exc
            except OSError as exc:
                sock.close()
                error = exc
                continue
            if call is not None:
                call.watch(sock)
            return sock
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}")

    def request(self, *args: Any, **kwargs: Any) -> None:
        call = _current_call()
        if call is not None:
            # A kept-alive connection from the pool: its socket also obeys this deadline.
            call.watch(self.sock)  # type: ignore[attr-defined]
        super().request(*args, **kwargs)  # type: ignore[misc]


def _pool_classes(limits_provider: LimitsProvider) -> dict[str, type]:
    attrs = {"limits_provider": staticmethod(limits_provider)}
    http_conn = type("GuardedHTTPConnection", (_GuardedConnectionMixin, HTTPConnection), attrs)
    https_conn = type("GuardedHTTPSConnection", (_GuardedConnectionMixin, HTTPSConnection), attrs)
    return {
        "http": type(
            "GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}
        ),
        "https": type(
            "GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}
        ),
    }


class GuardedAdapter(HTTPAdapter):
    """requests' adapter with the rules of this module (see the module's docstring)."""

    def __init__(self, *, limits: LimitsProvider = limits_from_settings, **kwargs: Any) -> None:
        self.limits_provider = limits
        kwargs.setdefault("max_retries", 0)
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self.limits_provider)

    def __setstate__(self, state: dict) -> None:  # requests pickles adapters for copies
        super().__setstate__(state)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self.limits_provider)

    def send(self, request: requests.PreparedRequest, stream: bool = False, **kwargs: Any):
        if kwargs.get("proxies"):
            # A proxy would resolve and connect on the hub's behalf, past the check.
            kwargs["proxies"] = {}
        limits = self.limits_provider()
        with _Call(limits.deadline_seconds) as call:
            _current.call = call
            try:
                response = self._send_within(request, call, limits, **kwargs)
            except requests.RequestException as exc:
                refusal = _refusal_in(exc)
                if refusal is not None:
                    raise AddressRefused(refusal._message, request=request) from None
                if call.expired and not isinstance(exc, AddressRefused | RedirectRefused):
                    raise DeadlineExceeded(call.seconds, request=request) from exc
                raise
            finally:
                _current.call = None
        return response

    def _send_within(self, request, call: _Call, limits: Limits, **kwargs: Any):
        response = super().send(request, stream=True, **kwargs)
        try:
            if response.is_redirect or 300 <= response.status_code < 400:
                raise RedirectRefused(
                    response.status_code,
                    response.headers.get("Location", ""),
                    request=request,
                    response=None,
                )
            response._content = _read_capped(response, limits.max_reply_bytes)
        except BaseException:
            # A connection left mid-reply cannot be used again.
            response.raw.close()
            response.close()
            raise
        response._content_consumed = True
        if call.expired:
            raise DeadlineExceeded(call.seconds, request=request)
        return response


def _read_capped(response: requests.Response, limit: int) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ReplyTooLarge(limit, request=response.request)
    raw = response.raw
    chunks: list[bytes] = []
    size = 0
    try:
        # Decoded in steps of at most CHUNK_BYTES (urllib3 >= 2.6 bounds each step of
        # gzip/deflate/brotli/zstd), so a bomb never expands past the cap in memory.
        for chunk in raw.stream(CHUNK_BYTES, decode_content=True):
            size += len(chunk)
            if size > limit or raw.tell() > limit:
                raise ReplyTooLarge(limit, request=response.request)
            chunks.append(chunk)
    except ReplyTooLarge:
        raise
    except Exception as exc:
        raise requests.ConnectionError(
            f"The reply was cut off: {exc}", request=response.request
        ) from exc
    return b"".join(chunks)


def guard_session(session: requests.Session, *, limits: LimitsProvider = limits_from_settings):
    """Put the rules of this module on ``session`` (its http and https adapters)."""
    adapter = GuardedAdapter(limits=limits, pool_connections=16, pool_maxsize=64)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    # No proxy from the environment, no .netrc credentials sent along.
    session.trust_env = False
    session.max_redirects = 0
    return session


def guarded_session(*, limits: LimitsProvider = limits_from_settings) -> requests.Session:
    return guard_session(requests.Session(), limits=limits)
