"""Requests written straight as the XML zeep would send, instead of through zeep's objects.

zeep builds a request by making checked copies of the call's values as its objects,
rendering them element by element into an lxml tree and serializing that: more than a
millisecond of CPU for a saved entity, as much as the rest of the call on the engine's hot
path. For the operations in OPERATIONS the envelope is written here instead, by a plan made
once per operation from the schema zeep itself loaded (the WSDL the client uses): the same
elements in the same order and namespace, with the same prefixes, each value formatted by
zeep's own xsd type, an optional element whose value is None left out as zeep leaves it out,
the same SOAPAction and Content-Type. What this does not write exactly as zeep would (a
value not of the plain Python type of its xsd type, a name the schema does not have, None
where the schema wants an element, text XML cannot carry, a schema of another shape,
WS-Addressing, plugins, default headers) leaves the request to zeep, as before.
tests/crm/test_request_building.py compares both.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from zeep.wsdl.bindings.soap import Soap11Binding
from zeep.wsdl.messages.soap import DocumentMessage
from zeep.xsd import ComplexType, Element, Sequence
from zeep.xsd.elements.indicators import All
from zeep.xsd.types import builtins as xsd

# The engine's hot calls (crm.client.persons get_person, crm.client.activities).
OPERATIONS = frozenset({"GetPersonEntity", "SaveAppointmentEntity", "SaveSaleEntity"})

# The xsd types written here (those of these operations' values), each with the one
# Python type taken for it (zeep takes more, e.g. a str for an int; those go through zeep).
# Subtypes (an enumeration of strings, xs:int of xs:integer) are formatted by their base's
# xmlvalue, as zeep does.
_PYTHON_TYPES = (
    (xsd.DateTime, datetime),
    (xsd.Integer, int),
    (xsd.String, str),
)

# What XML 1.0 cannot carry, which lxml refuses: left to zeep, to fail as it fails.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class LeftToZeep(Exception):
    """The call has a value or shape that zeep is left to write (see above)."""


@dataclass(frozen=True)
class _Node:
    """One element of the schema: its local name, whether it may be left out, and either
    its children (a complex type: a plain sequence of elements) or the xsd type of its
    text and the Python type taken for it. Neither: a shape only zeep writes."""

    name: str
    optional: bool
    children: tuple[_Node, ...] | None = None
    names: frozenset[str] = frozenset()  # the children's
    xsd_type: Any = None
    python_type: type | None = None


@dataclass(frozen=True)
class _Plan:
    envelope_ns: str
    ns: str
    schema: Any  # zeep's, whose prefixes of its own (none here) would change the envelope
    body: _Node
    header: tuple[_Node, ...]
    http_headers: dict[str, str]


def _node(element: Any, ns: str, depth: int = 0) -> _Node:
    optional = getattr(element, "min_occurs", 1) == 0
    name = getattr(getattr(element, "qname", None), "localname", "")
    unknown = _Node(name=name, optional=optional)
    if (
        type(element) is not Element
        or element.max_occurs != 1
        or element.qname.namespace != ns
        or depth > 20  # a type within itself: its values nest no deeper in practice
    ):
        return unknown
    kind = element.type
    if isinstance(kind, ComplexType):
        content = kind._element
        if (
            # zeep makes each complex type of a schema a direct subclass of ComplexType
            type(kind).__bases__ != (ComplexType,)
            or kind._extension is not None
            or kind._restriction is not None
            or kind.attributes
            or type(content) is not Sequence
            or content.min_occurs != 1
            or content.max_occurs != 1
            or len(kind.elements_nested) != 1
            or kind.elements_nested[0][1] is not content
            or any(type(child) is not Element for _, child in content.elements_nested)
        ):
            return unknown
        children = tuple(_node(child, ns, depth + 1) for _, child in content.elements_nested)
        names = frozenset(child.name for child in children)
        if len(names) != len(children):
            return unknown
        return _Node(name=name, optional=optional, children=children, names=names)
    for xsd_type, python_type in _PYTHON_TYPES:
        if isinstance(kind, xsd_type):
            return _Node(name=name, optional=optional, xsd_type=kind, python_type=python_type)
    return unknown


def _plan_of(binding: Any, operation: Any) -> _Plan | None:
    """The plan of ``operation``, or None where zeep builds its request by other means."""
    message = operation.input
    if (
        type(binding) is not Soap11Binding
        or operation.abstract.wsa_action
        or type(message) is not DocumentMessage
        or message._is_body_wrapped
        or message.wsdl.types._prefix_map_custom
    ):
        return None
    body = message.body
    ns = body.qname.namespace
    plan_body = _node(body, ns)
    if plan_body.children is None or plan_body.optional:
        return None
    # The type zeep makes of a message's header parts, the elements in the WSDL's order.
    header_type = message.header.type if message.header is not None else None
    if type(header_type) is not ComplexType or type(header_type._element) is not All:
        return None
    header = tuple(_node(element, ns) for _, element in header_type.elements)
    soapaction = operation.soapaction
    return _Plan(
        envelope_ns=binding.nsmap["soap-env"],
        ns=ns,
        schema=message.wsdl.types,
        body=plan_body,
        header=header,
        http_headers={
            "SOAPAction": f'"{soapaction}"' if soapaction else '""',
            "Content-Type": "text/xml; charset=utf-8",
        },
    )


# By zeep's operation object; emptied with crm.client.transport's caches of zeep clients.
_plans: dict[Any, _Plan | None] = {}
_plans_lock = threading.Lock()


def forget_plans() -> None:
    with _plans_lock:
        _plans.clear()


def _plan(binding: Any, operation: str) -> _Plan | None:
    operation_obj = binding.get(operation)
    try:
        return _plans[operation_obj]
    except KeyError:
        pass
    with _plans_lock:
        plan = _plans[operation_obj] = _plan_of(binding, operation_obj)
    return plan


def _text(node: _Node, value: Any) -> str:
    if type(value) is not node.python_type:
        raise LeftToZeep
    text = node.xsd_type.xmlvalue(value)
    if type(text) is not str or _NOT_XML.search(text):
        raise LeftToZeep
    # lxml's escaping of text: markup, and a carriage return as a character reference
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    return text


def _content(node: _Node, value: Any, prefix: str) -> str:
    """The content of ``node``'s element with ``value`` (not None)."""
    if node.children is None:
        if node.python_type is None:
            raise LeftToZeep
        return _text(node, value)
    if type(value) is not dict or not value.keys() <= node.names:
        raise LeftToZeep  # zeep takes its own objects too, and refuses an unknown name
    parts = []
    for child in node.children:
        item = value.get(child.name)
        if item is None:
            if not child.optional:
                raise LeftToZeep  # zeep writes xsi:nil or refuses the call
            continue
        parts.append(_element(child, item, prefix))
    return "".join(parts)


def _element(node: _Node, value: Any, prefix: str, declare: str = "") -> str:
    content = _content(node, value, prefix)
    tag = f"{prefix}:{node.name}"
    if not content and node.children is not None:
        return f"<{tag}{declare}/>"  # lxml's element with neither text nor children
    return f"<{tag}{declare}>{content}</{tag}>"


def envelope(
    zclient: Any, zservice: Any, operation: str, params: dict, headers: dict | None
) -> tuple[bytes, dict[str, str]]:
    """The request zeep would post for the call (its bytes and HTTP headers), as zeep's
    ``_create`` and ``Transport.post_xml`` would make them; LeftToZeep where this does not
    write it exactly (see above)."""
    if (
        operation not in OPERATIONS
        or zclient.wsse
        or zclient.plugins
        or zclient._default_soapheaders
        or zclient.settings.extra_http_headers
    ):
        raise LeftToZeep
    binding = zservice._binding
    plan = _plan(binding, operation)
    if plan is None or plan.schema._prefix_map_custom:
        raise LeftToZeep
    envelope_ns, ns = plan.envelope_ns, plan.ns
    parts = [
        "<?xml version='1.0' encoding='utf-8'?>\n"
        f'<soap-env:Envelope xmlns:soap-env="{envelope_ns}">'
    ]
    if headers:
        # zeep renders the header apart, then moves it into the envelope: lxml names each
        # header element's namespace afresh there (ns0, ns1, ...), as no sibling's is in
        # scope; the body's element is the envelope's first (ns0) again.
        if type(headers) is not dict or not headers.keys() <= {node.name for node in plan.header}:
            raise LeftToZeep
        written = []
        for node in plan.header:
            value = headers.get(node.name)
            if value is not None:  # zeep writes only the headers with a value
                prefix = f"ns{len(written)}"
                written.append(_element(node, value, prefix, f' xmlns:{prefix}="{ns}"'))
        parts.append(
            f"<soap-env:Header>{''.join(written)}</soap-env:Header>"
            if written
            else "<soap-env:Header/>"
        )
    body = _element(plan.body, params, "ns0", f' xmlns:ns0="{ns}"')
    parts.append(f"<soap-env:Body>{body}</soap-env:Body></soap-env:Envelope>")
    return "".join(parts).encode("utf-8"), dict(plan.http_headers)
