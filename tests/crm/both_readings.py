"""A reply read both ways, straight from its XML (crm.client.direct) and through zeep's
objects, by two clients of one connection: for the tests that compare the two readings."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from crm.client import MemoryTicketStore, NetServerClient
from crm.errors import PermanentCrmError
from crm.models import SuperOfficeConnection
from crm.services import connection_settings_of
from tests.crm.loopback import loopback_server, soap

NS = "http://www.superoffice.net/ws/crm/NetServer/Services88"

# Odd shapes of any operation's reply, at the envelope: what every reading must take as zeep
# does (a reply text in, the same text with the shape made).
ENVELOPE_SHAPES = {
    "a fault in a 200 reply": lambda xml: re.sub(
        r"<s:Body>.*</s:Body>",
        "<s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>Bad</faultstring>"
        "</s:Fault></s:Body>",
        xml,
        flags=re.S,
    ),
    "not an envelope": lambda xml: xml.replace("s:Envelope", "s:Letter"),
    "no body": lambda xml: re.sub(r"<s:Body>.*</s:Body>", "", xml, flags=re.S),
    "a failure header": lambda xml: xml.replace(
        "<s:Header>",
        f'<s:Header><ExceptionInfo xmlns="{NS}"><Message>Gone</Message>'
        "<ExceptionType>EntityNotFound</ExceptionType></ExceptionInfo>",
    ).replace(">true</Succeeded>", ">false</Succeeded>"),
}


def clients_both_ways(account, *, switch: str, **kwargs) -> tuple[NetServerClient, ...]:
    """The account's client reading directly, then the same reading through zeep; `switch`
    names the client's option (read_persons_directly, read_replies_directly)."""
    connection = connection_settings_of(SuperOfficeConnection.objects.get(account=account))
    return tuple(
        NetServerClient(connection=connection, timeout=10, **{switch: direct}, **kwargs)
        for direct in (True, False)
    )


def outcome(call: Callable[[NetServerClient], Any], client: NetServerClient):
    """What `call` returns, or its error's type and text, to compare between readings."""
    try:
        return call(client)
    except Exception as exc:  # compared between the two readings
        return (type(exc), str(exc))


def shapes_read_both_ways(
    account, *, switch: str, sample: str, shapes: dict, call: Callable
) -> dict[str, Any]:
    """Each of `shapes` (a name and a function of the `sample` reply's text) answered over
    HTTP by a loopback NetServer to both readings' clients. Asserts that they read the same
    (the same error type for a reply without a body, worded better than zeep's TypeError)
    and log the same outcomes; returns what the direct reading read of each shape."""
    with loopback_server() as netserver:
        connection = connection_settings_of(SuperOfficeConnection.objects.get(account=account))
        connection = type(connection)(
            **{**connection.__dict__, "base_url": f"{netserver.url}/Remote/Services88/"}
        )
        tickets = MemoryTicketStore()
        tickets.save(ticket="a-ticket", expires_at=datetime.now(UTC) + timedelta(hours=1))
        logs: dict[bool, list] = {True: [], False: []}
        clients = {
            direct: NetServerClient(
                connection=connection,
                ticket_store=tickets,
                recorder=logs[direct].append,
                timeout=10,
                **{switch: direct},
            )
            for direct in (True, False)
        }
        read = {}
        for name, shape in shapes.items():
            netserver.behaviour["*"] = soap(shape(sample).encode())
            outcomes = [outcome(call, clients[direct]) for direct in (True, False)]
            if name == "no body":
                assert outcomes[0][0] is outcomes[1][0] is PermanentCrmError
            else:
                assert outcomes[0] == outcomes[1], name
            read[name] = outcomes[0]
        assert [r.outcome for r in logs[True]] == [r.outcome for r in logs[False]]
        assert len(logs[True]) == len(shapes)
    return read
