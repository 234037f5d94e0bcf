"""Replies read straight from their XML, as zeep reads them, instead of through zeep's objects.

zeep builds an object of every element of a reply (a saved SaleEntity or AppointmentEntity
has some 50, nested), about a millisecond per reply, more than the rest of the call, where
the hub reads one or a few of them. So the replies on the engine's and consent sync's hot
paths are read here as zeep reads them with ZEEP_SETTINGS: children matched by local name,
the first of a name taken and the rest (and every element no type names) passed over, text
converted by zeep's own xsd types, an element with neither children nor attributes read as
None. A shape whose reading by zeep this does not repeat exactly (an xsi:type, a value zeep
cannot convert and reads as None, an array item without content, a comment among the
elements) raises LeftToZeep, and the reply is read through zeep then, as before.
tests/crm/test_person_reading.py and tests/crm/test_reply_reading.py compare both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lxml import etree
from zeep.xsd.types import builtins as xsd

STRING, INT, BOOLEAN, DATETIME = xsd.String(), xsd.Int(), xsd.Boolean(), xsd.DateTime()
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

# Anywhere in a reply, what only zeep reads exactly: an xsi:type (zeep reads the element as
# that type, or fails on one it does not know), a comment or a processing instruction.
_ONLY_ZEEP_READS = etree.XPath(
    "boolean(descendant-or-self::*/@xsi:type | descendant::comment()"
    " | descendant::processing-instruction())",
    namespaces={"xsi": "http://www.w3.org/2001/XMLSchema-instance"},
)


class LeftToZeep(Exception):
    """The reply has a shape that zeep is left to read (see above)."""


def response_fields(element: Any, operation: str, *, whole: bool = False) -> dict[str, Any]:
    """The children of the ``<operation>Response`` element, after checking it is one.
    With ``whole``, also leaves to zeep a reply with anything in it only zeep reads
    exactly, for readers that look at a part of the reply zeep reads all of."""
    tag = element.tag
    if not isinstance(tag, str) or not tag.endswith("}" + operation + "Response"):
        raise LeftToZeep
    if whole and _ONLY_ZEEP_READS(element):
        raise LeftToZeep
    return fields(element) or {}


def fields(element: Any) -> dict[str, Any] | None:
    """A complex element's children by local name (the first of each), or None where
    zeep reads it as None (no children, no attributes)."""
    if XSI_TYPE in element.attrib:
        raise LeftToZeep
    if not len(element) and not element.attrib:
        return None
    found: dict[str, Any] = {}
    for item in element:
        tag = item.tag
        if not isinstance(tag, str):
            raise LeftToZeep
        found.setdefault(tag.rsplit("}", 1)[-1], item)
    return found


def value(parent: dict[str, Any] | None, name: str, kind: Any) -> Any:
    element = parent.get(name) if parent else None
    if element is None:
        return None
    if XSI_TYPE in element.attrib:
        raise LeftToZeep
    text = element.text
    if text is None:
        return None
    try:
        return kind.pythonvalue(text)
    except (TypeError, ValueError):
        raise LeftToZeep from None  # zeep logs it and reads None


def items(parent: dict[str, Any] | None, name: str, item: str) -> list[dict[str, Any]]:
    """The fields of each ``item`` of the array element ``name``, in order."""
    if fields_of(parent, name) is None:
        return []
    tag_end = "}" + item
    result = []
    for element in parent[name]:
        tag = element.tag
        if tag == item or tag.endswith(tag_end):
            item_fields = fields(element)
            if item_fields is None:
                raise LeftToZeep  # zeep's item is None, which the hub cannot read
            result.append(item_fields)
    return result


def fields_of(parent: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    """The fields of the complex child ``name`` (None: absent, or read as None)."""
    return fields(parent[name]) if parent and name in parent else None


class Read:
    """What a direct reader read (as opposed to zeep's body of a reply left to zeep)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def reader(direct: Callable[[Any], Any]) -> Callable[[Any, Callable[[], Any]], Any]:
    """A ``read`` for ClientCore._send: ``Read(direct(element))``, or zeep's body of the
    reply where ``direct`` leaves it to zeep."""

    def read(element: Any, zeep_body: Callable[[], Any]) -> Any:
        try:
            return Read(direct(element))
        except LeftToZeep:
            return zeep_body()

    return read
