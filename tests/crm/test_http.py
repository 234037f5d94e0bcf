"""The guarded HTTP layer (crm.http) against loopback servers: addresses checked when the
connection is made, no redirects, replies capped in size, and an overall deadline."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from crm import http
from tests.crm.loopback import gzip_bomb, loopback_server, oversized, redirect, trickle

PRIVATE_OK = http.Limits(allow_private=True, max_reply_bytes=20 * http.MB, deadline_seconds=3)
PUBLIC_ONLY = http.Limits(allow_private=False, max_reply_bytes=20 * http.MB, deadline_seconds=3)


def session(limits: http.Limits) -> requests.Session:
    return http.guarded_session(limits=lambda: limits)


@pytest.fixture
def server():
    with loopback_server() as s:
        yield s


@pytest.fixture
def second_server():
    with loopback_server() as s:
        yield s


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.254",
        "192.0.0.8",
        "192.0.0.1",
        "198.18.0.1",
        "0.0.0.0",  # noqa: S104 - the address under test
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fc00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::7f00:1",
        "2002:7f00:1::1",
        "2001:db8::1",
        "not an address",
    ],
)
def test_non_global_addresses_are_not_allowed(address):
    assert http.address_allowed(address) is False


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111"])
def test_global_addresses_are_allowed(address):
    assert http.address_allowed(address) is True


def test_a_name_that_resolves_to_loopback_at_call_time_is_refused_before_connecting(
    server, monkeypatch
):
    # DNS rebinding: the name was public when the admin saved it; now it points at loopback.
    real = socket.getaddrinfo

    def rebound(host, port, *args, **kwargs):
        if host == "tenant.example":
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    with pytest.raises(http.AddressRefused, match="internal address"):
        session(PUBLIC_ONLY).get(f"http://tenant.example:{server.port}/", timeout=5)
    assert server.requests == []


def test_loopback_by_name_or_literal_is_refused_unless_the_operator_allows_it(server):
    for url in (f"http://localhost:{server.port}/", f"{server.url}/"):
        with pytest.raises(http.AddressRefused):
            session(PUBLIC_ONLY).get(url, timeout=5)
    assert server.requests == []
    assert session(PRIVATE_OK).get(f"{server.url}/", timeout=5).content == b"ok"
    assert len(server.requests) == 1


def test_the_environments_proxy_is_not_used(server, second_server, monkeypatch):
    # A proxy would connect on the hub's behalf, past the address check.
    monkeypatch.setenv("HTTP_PROXY", second_server.url)
    monkeypatch.setenv("http_proxy", second_server.url)
    assert session(PRIVATE_OK).get(f"{server.url}/", timeout=5).content == b"ok"
    assert second_server.requests == []


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_refused_and_nothing_reaches_its_target(status, server, second_server):
    server.behaviour["*"] = redirect(status, f"{second_server.url}/steal")
    with pytest.raises(http.RedirectRefused) as caught:
        session(PRIVATE_OK).post(
            f"{server.url}/svc", data=b"<password>secret</password>", timeout=5
        )
    assert caught.value.status == status
    assert caught.value.location == f"{second_server.url}/steal"
    assert second_server.requests == []
    assert len(server.requests) == 1


def test_a_redirect_to_another_host_is_refused_without_resolving_it(server, monkeypatch):
    server.behaviour["*"] = redirect(307, "https://elsewhere.example/")
    asked = []
    real = socket.getaddrinfo

    def recording(host, *args, **kwargs):
        asked.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    with pytest.raises(http.RedirectRefused):
        session(PRIVATE_OK).get(f"{server.url}/", timeout=5)
    assert "elsewhere.example" not in asked


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_an_oversized_reply_is_refused_at_the_cap(server, declared):
    server.behaviour["*"] = oversized(300, declared=declared)
    limits = http.Limits(allow_private=True, max_reply_bytes=5 * http.MB, deadline_seconds=10)
    started = time.monotonic()
    with pytest.raises(http.ReplyTooLarge, match="larger than 5 MB"):
        session(limits).get(f"{server.url}/", timeout=5)
    # Stopped at the cap, not after reading 300 MB.
    assert time.monotonic() - started < 5


def test_a_gzip_bomb_is_refused_once_it_expands_past_the_cap(server):
    server.behaviour["*"] = gzip_bomb(1024)
    limits = http.Limits(allow_private=True, max_reply_bytes=5 * http.MB, deadline_seconds=10)
    with pytest.raises(http.ReplyTooLarge):
        session(limits).get(f"{server.url}/", timeout=5)


def test_a_reply_under_the_cap_is_read_whole(server):
    server.behaviour["*"] = oversized(3, declared=False)
    limits = http.Limits(allow_private=True, max_reply_bytes=5 * http.MB, deadline_seconds=10)
    response = session(limits).get(f"{server.url}/", timeout=5)
    assert len(response.content) == 3 * http.MB


def test_a_trickled_reply_ends_at_the_deadline_not_the_read_timeout(server):
    server.behaviour["*"] = trickle(total_bytes=100, every_seconds=0.3)
    limits = http.Limits(allow_private=True, max_reply_bytes=http.MB, deadline_seconds=1.5)
    started = time.monotonic()
    with pytest.raises(http.DeadlineExceeded):
        # Every byte arrives well within the 5 s read timeout.
        session(limits).get(f"{server.url}/", timeout=5)
    elapsed = time.monotonic() - started
    assert 1.4 <= elapsed < 2.5, elapsed


def test_the_deadline_also_holds_on_a_kept_alive_connection(server):
    s = session(http.Limits(allow_private=True, max_reply_bytes=http.MB, deadline_seconds=1))
    assert s.get(f"{server.url}/", timeout=5).content == b"ok"
    server.behaviour["*"] = trickle(total_bytes=100, every_seconds=0.2)
    started = time.monotonic()
    with pytest.raises(http.DeadlineExceeded):
        s.get(f"{server.url}/", timeout=5)
    assert time.monotonic() - started < 2
    # The pool recovers: a later request on the same session works.
    server.behaviour.clear()
    assert s.get(f"{server.url}/", timeout=5).content == b"ok"


def test_a_session_made_elsewhere_gets_the_same_rules(server, second_server):
    server.behaviour["*"] = redirect(302, f"{second_server.url}/")
    guarded = http.guard_session(requests.Session(), limits=lambda: PRIVATE_OK)
    with pytest.raises(http.RedirectRefused):
        guarded.get(f"{server.url}/", timeout=5)
    assert second_server.requests == []


def _transport(limits: http.Limits):
    from crm.client.transport import CapturingTransport

    return CapturingTransport(session=session(limits), timeout=3, operation_timeout=3)


def _xml(handler, headers=()):
    handler._send(200, b"<ok/>", "text/xml", headers=headers)


def test_the_soap_transport_sends_each_post_as_requests_would_from_its_kept_prepared_request(
    server,
):
    server.behaviour["*"] = _xml
    transport = _transport(PRIVATE_OK)
    headers = {"SOAPAction": '"urn:x/Op"', "Content-Type": "text/xml; charset=utf-8"}
    bodies = [b"<a>first</a>", "<b>ø & ünïcode</b>".encode(), b"<c/>"]

    for body in bodies:
        assert transport.post(f"{server.url}/Agent.svc", body, headers).status_code == 200
    requests.post(f"{server.url}/Agent.svc", data=bodies[0], headers=headers, timeout=3)

    sent = server.requests
    assert [(m, p, b) for m, p, _, b in sent[:3]] == [("POST", "/Agent.svc", b) for b in bodies]
    for (_, _, seen, body), (_, _, plain, _) in zip(sent[:3], [sent[3]] * 3, strict=True):
        assert seen["Content-Length"] == str(len(body))
        assert seen["SOAPAction"] == '"urn:x/Op"'
        assert {k for k in seen if k != "User-Agent"} == {k for k in plain if k != "User-Agent"}
    assert transport.capture.request == bodies[-1]


def test_the_soap_transport_sends_back_a_cookie_the_server_set(server):
    def set_cookie(handler):
        _xml(handler, headers=[("Set-Cookie", "affinity=node7; Path=/")])

    server.behaviour["*"] = _xml
    transport = _transport(PRIVATE_OK)
    headers = {"SOAPAction": '"urn:x/Op"', "Content-Type": "text/xml; charset=utf-8"}
    transport.post(f"{server.url}/Agent.svc", b"<a/>", headers)  # prepared, kept
    server.behaviour["/Agent.svc"] = set_cookie
    transport.post(f"{server.url}/Agent.svc", b"<b/>", headers)
    del server.behaviour["/Agent.svc"]
    transport.post(f"{server.url}/Agent.svc", b"<c/>", headers)

    cookies = [seen.get("Cookie") for _, _, seen, _ in server.requests]
    assert cookies == [None, None, "affinity=node7"]


def test_the_soap_transport_keeps_the_guard_on_its_prepared_requests(server):
    transport = _transport(PUBLIC_ONLY)
    headers = {"SOAPAction": '"urn:x/Op"', "Content-Type": "text/xml; charset=utf-8"}
    for _ in range(2):
        with pytest.raises(http.AddressRefused):
            transport.post(f"{server.url}/Agent.svc", b"<a/>", headers)
    assert server.connections == 0
