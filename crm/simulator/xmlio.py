"""SOAP envelopes for the simulator: a safe parser and a spec-driven serializer.

Requests are parsed with lxml configured to refuse DTDs, entities and network
access; anything carrying a DOCTYPE is refused before parsing. Responses are
built as strings from ``crm.wsdl.spec`` so element names and order can only be
what the hub's WSDL declares (and therefore what SuperOffice's declares).
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

from crm.wsdl import spec

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


# An element no WSDL of the hub names. A PersonEntity of the simulator always ends with
# one (as a NetServer newer than the hub's WSDL answers), and with NEWER_VERSION set every
# other entity carries one after its first element.
LATER_ELEMENT = "AddedInALaterVersion"
NEWER_VERSION: ContextVar[bool] = ContextVar("newer_version", default=False)


class UnsafeXml(ValueError):
    pass


def parse_envelope(data: bytes) -> tuple[etree._Element | None, etree._Element]:
    """Return (Header or None, first Body child). Raises UnsafeXml / ValueError."""
    head = data[:2048].lower()
    if b"<!doctype" in head or b"<!entity" in data.lower():
        raise UnsafeXml("DTDs and entity declarations are not accepted")
    root = etree.fromstring(data, _PARSER)
    if root.getroottree().docinfo.doctype:
        raise UnsafeXml("DTDs are not accepted")
    header = root.find(f"{{{SOAP_ENV}}}Header")
    body = root.find(f"{{{SOAP_ENV}}}Body")
    if body is None or len(body) == 0:
        raise ValueError("No SOAP Body")
    return header, body[0]


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse_primitive(type_name: str, text: str | None) -> Any:
    if text is None:
        return None
    if type_name in ("int", "short"):
        return int(text)
    if type_name == "boolean":
        return text.strip() in ("true", "1")
    if type_name == "double":
        return float(text)
    if type_name == "dateTime":
        value = text.strip()
        if value.endswith("Z"):
            value = value[:-1] + "+00:00"
        return datetime.fromisoformat(value)
    return text


def from_xml(type_name: str, element: etree._Element) -> Any:
    """Read an element as ``type_name`` into plain Python (dict, list, scalar)."""
    if element.get(f"{{{XSI}}}nil") == "true":
        return None
    if type_name in spec.PRIMITIVES or type_name in spec.ENUMS:
        return _parse_primitive(type_name, element.text)
    if type_name in spec.OPAQUE:
        return _opaque_from_xml(element)
    item = spec.array_item(type_name)
    if item is not None:
        return [from_xml(item, child) for child in element]
    if type_name in spec.DICTS:
        _, value_type = spec.DICTS[type_name]
        result = {}
        for pair in element:
            key = value = None
            for part in pair:
                if local(part.tag) == "Key":
                    key = part.text or ""
                else:
                    value = from_xml(value_type, part)
            result[key] = value
        return result
    fields = dict(spec.TYPES[type_name])
    result = {}
    for child in element:
        name = local(child.tag)
        if name in fields:
            result[name] = from_xml(fields[name], child)
        elif type_name in spec.OPEN_ENDED and isinstance(child.tag, str):
            result[name] = child.text or ""
    return result


def _opaque_from_xml(element: etree._Element) -> list:
    """A type the hub does not look into, as [[name, text or nested list], ...]: what
    NetServer keeps of it, to compare and to serve back."""
    return [
        [local(child.tag), _opaque_from_xml(child) if len(child) else (child.text or "")]
        for child in element
        if isinstance(child.tag, str)
    ]


def _opaque_to_xml(value: list, out: list[str]) -> None:
    for name, inner in value:
        out.append(f"<{name}>")
        if isinstance(inner, list):
            _opaque_to_xml(inner, out)
        else:
            out.append(escape(str(inner)))
        out.append(f"</{name}>")


def read_fields(fields: list[tuple[str, str]], element: etree._Element) -> dict[str, Any]:
    types = dict(fields)
    result: dict[str, Any] = {}
    for child in element:
        name = local(child.tag)
        if name in types:
            result[name] = from_xml(types[name], child)
    return result


def _text(type_name: str, value: Any) -> str:
    if type_name == "boolean":
        return "true" if value else "false"
    if type_name == "dateTime":
        return value.isoformat() if isinstance(value, datetime) else str(value)
    return escape(str(value))


def to_xml(type_name: str, name: str, value: Any, out: list[str], *, arr: bool = False) -> None:
    """Append <name> holding value serialized as type_name. None is left out."""
    if value is None:
        return
    tag = f"a:{name}" if arr else name
    if type_name in spec.PRIMITIVES or type_name in spec.ENUMS:
        out.append(f"<{tag}>{_text(type_name, value)}</{tag}>")
        return
    out.append(f"<{tag}>")
    item = spec.array_item(type_name)
    if type_name in spec.OPAQUE:
        _opaque_to_xml(value, out)
    elif item is not None:
        in_arrays_ns = type_name in spec.ARRAYS_NS_TYPES
        for entry in value:
            to_xml(item, item, entry, out, arr=in_arrays_ns)
    elif type_name in spec.DICTS:
        pair, value_type = spec.DICTS[type_name]
        for key, entry in value.items():
            out.append(f"<{pair}><Key>{escape(str(key))}</Key>")
            if entry is None:
                out.append('<Value i:nil="true"/>')
            else:
                to_xml(value_type, "Value", entry, out)
            out.append(f"</{pair}>")
    else:
        fields = spec.TYPES[type_name]
        newer = NEWER_VERSION.get() and type_name not in spec.OPEN_ENDED
        for field_name, field_type in fields:
            field_value = value.get(field_name)
            if field_value is not None:
                to_xml(field_type, field_name, field_value, out)
                if newer:
                    out.append(f"<{LATER_ELEMENT}>1</{LATER_ELEMENT}>")
                    newer = False
        if type_name in spec.OPEN_ENDED:
            names = {name for name, _ in fields}
            for extra, extra_value in value.items():
                if extra not in names and extra_value is not None:
                    out.append(f"<{extra}>{escape(str(extra_value))}</{extra}>")
    out.append(f"</{tag}>")


_ENVELOPE_OPEN = f'<s:Envelope xmlns:s="{SOAP_ENV}" xmlns:i="{XSI}" xmlns:a="{spec.ARRAYS_NS}">'


def response_envelope(
    *,
    element: str,
    fields: list[tuple[str, str]],
    values: dict[str, Any],
    namespace: str = spec.NS,
    with_headers: bool = True,
) -> bytes:
    out = [_ENVELOPE_OPEN]
    if with_headers:
        out.append(f'<s:Header><Succeeded xmlns="{namespace}">true</Succeeded></s:Header>')
    out.append(f'<s:Body><{element} xmlns="{namespace}">')
    for name, type_name in fields:
        to_xml(type_name, name, values.get(name), out)
    out.append(f"</{element}></s:Body></s:Envelope>")
    return "".join(out).encode()


def fault_envelope(
    *, code: str, message: str, exception_type: str, namespace: str = spec.NS
) -> bytes:
    """A SOAP 1.1 fault whose detail carries NetServer's SoExceptionInfo."""
    info: list[str] = []
    to_xml(
        "SoExceptionInfo",
        "ExceptionInfo",
        {
            "Message": message,
            "FriendlyText": message,
            "ExceptionType": exception_type,
            "Source": "NetServer",
        },
        info,
    )
    detail = "".join(info).replace("<ExceptionInfo>", f'<ExceptionInfo xmlns="{namespace}">', 1)
    return (
        f"{_ENVELOPE_OPEN}<s:Body><s:Fault><faultcode>s:{code}</faultcode>"
        f"<faultstring>{escape(message)}</faultstring><detail>{detail}</detail>"
        "</s:Fault></s:Body></s:Envelope>"
    ).encode()
