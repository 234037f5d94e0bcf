"""Render the hub's WSDL files from ``spec.py``.

Run ``python -m crm.wsdl.render`` after changing the spec; the rendered files are
committed so the client needs no generation step at run time. The simulator
serves the same files with the address rewritten.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

from . import spec

WSDL_DIR = Path(__file__).resolve().parent
PLACEHOLDER_ADDRESS = "https://netserver.invalid/Remote/Services88/"


def _xsd_type(type_name: str) -> str:
    if type_name in spec.PRIMITIVES:
        return f"xs:{type_name}"
    if type_name in spec.ARRAYS_NS_TYPES:
        return f"arr:{type_name}"
    return f"tns:{type_name}"


def _element(name: str, type_name: str) -> str:
    nillable = (
        ""
        if type_name in spec.PRIMITIVES - {"string"} or type_name in spec.ENUMS
        else (' nillable="true"')
    )
    return f'<xs:element minOccurs="0" name="{name}"{nillable} type="{_xsd_type(type_name)}"/>'


def _types_used(agent: str) -> set[str]:
    seen: set[str] = set()
    pending: list[str] = []
    for request, response in spec.AGENTS[agent].values():
        pending += [t for _, t in request + response]
    pending += [t for _, t in spec.REQUEST_HEADERS + spec.RESPONSE_HEADERS]
    while pending:
        type_name = pending.pop()
        if type_name in seen or type_name in spec.PRIMITIVES:
            continue
        seen.add(type_name)
        item = spec.array_item(type_name)
        if item is not None:
            pending.append(item)
        elif type_name in spec.DICTS:
            pending.append(spec.DICTS[type_name][1])
        elif type_name in spec.TYPES:  # spec.OPAQUE types name no other type
            pending += [t for _, t in spec.TYPES[type_name]]
    return seen


def _complex_type(type_name: str) -> str:
    if type_name in spec.ENUMS:
        values = "".join(f'<xs:enumeration value="{v}"/>' for v in spec.ENUMS[type_name])
        return (
            f'<xs:simpleType name="{type_name}"><xs:restriction base="xs:string">{values}'
            "</xs:restriction></xs:simpleType>"
        )
    if type_name in spec.DICTS:
        pair, value_type = spec.DICTS[type_name]
        return (
            f'<xs:complexType name="{type_name}"><xs:sequence>'
            f'<xs:element minOccurs="0" maxOccurs="unbounded" name="{pair}"><xs:complexType>'
            '<xs:sequence><xs:element name="Key" nillable="true" type="xs:string"/>'
            f'<xs:element name="Value" nillable="true" type="{_xsd_type(value_type)}"/>'
            "</xs:sequence></xs:complexType></xs:element></xs:sequence></xs:complexType>"
        )
    if type_name in spec.OPAQUE:
        # Whatever NetServer put inside is kept as XML and sent back unchanged.
        return (
            f'<xs:complexType name="{type_name}"><xs:sequence><xs:any minOccurs="0" '
            'maxOccurs="unbounded" processContents="skip"/></xs:sequence></xs:complexType>'
        )
    item = spec.array_item(type_name)
    if item is not None:
        return (
            f'<xs:complexType name="{type_name}"><xs:sequence>'
            f'<xs:element minOccurs="0" maxOccurs="unbounded" name="{item}" nillable="true" '
            f'type="{_xsd_type(item)}"/></xs:sequence></xs:complexType>'
        )
    fields = "".join(_element(n, t) for n, t in spec.TYPES[type_name])
    if type_name in spec.OPEN_ENDED:
        fields += '<xs:any minOccurs="0" maxOccurs="unbounded" processContents="skip"/>'
    return (
        f'<xs:complexType name="{type_name}"><xs:sequence>{fields}</xs:sequence></xs:complexType>'
    )


def _wrapper(name: str, fields: list[tuple[str, str]]) -> str:
    body = "".join(_element(n, t) for n, t in fields)
    return (
        f'<xs:element name="{name}"><xs:complexType><xs:sequence>{body}'
        "</xs:sequence></xs:complexType></xs:element>"
    )


def render_agent(
    agent: str, *, address_base: str = PLACEHOLDER_ADDRESS, newer: bool = False
) -> str:
    """The agent's WSDL; ``newer`` adds the operations only newer NetServers have."""
    operations = spec.operations_of(agent, newer=newer)
    used = _types_used(agent)
    tns_types = sorted(t for t in used if t not in spec.ARRAYS_NS_TYPES)
    arr_types = sorted(t for t in used if t in spec.ARRAYS_NS_TYPES)
    request_headers = (
        spec.REQUEST_HEADERS[:1] if agent in spec.NO_TICKET_AGENTS else (spec.REQUEST_HEADERS)
    )

    schema = [
        f'<xs:schema elementFormDefault="qualified" targetNamespace="{spec.NS}">',
        f'<xs:import namespace="{spec.ARRAYS_NS}"/>',
        '<xs:element name="ApplicationToken" nillable="true" type="xs:string"/>',
        '<xs:element name="Credentials" nillable="true" type="tns:SoCredentials"/>',
        '<xs:element name="TimeZone" nillable="true" type="tns:SoTimeZone"/>',
        '<xs:element name="ExceptionInfo" nillable="true" type="tns:SoExceptionInfo"/>',
        '<xs:element name="ExtraInfo" nillable="true" type="tns:SoExtraInfo"/>',
        '<xs:element name="Succeeded" type="xs:boolean"/>',
    ]
    schema += [_complex_type(t) for t in tns_types]
    response_elements_done: set[str] = set()
    for operation, (request, response) in operations.items():
        schema.append(_wrapper(operation, request))
        response_name = spec.response_element(agent, operation)
        if response_name not in response_elements_done:
            schema.append(_wrapper(response_name, response))
            response_elements_done.add(response_name)
    schema.append("</xs:schema>")
    arrays_schema = [
        f'<xs:schema elementFormDefault="qualified" targetNamespace="{spec.ARRAYS_NS}" '
        f'xmlns:arr="{spec.ARRAYS_NS}">'
    ]
    arrays_schema += [_complex_type(t) for t in arr_types]
    arrays_schema.append("</xs:schema>")

    messages, port_ops, binding_ops = [], [], []
    for operation in operations:
        response_name = spec.response_element(agent, operation)
        messages.append(
            f'<wsdl:message name="{operation}Request"><wsdl:part name="parameters" '
            f'element="tns:{operation}"/></wsdl:message>'
            f'<wsdl:message name="{operation}Request_Headers">'
            + "".join(f'<wsdl:part name="{h}" element="tns:{h}"/>' for h, _ in request_headers)
            + "</wsdl:message>"
            f'<wsdl:message name="{operation}Response"><wsdl:part name="parameters" '
            f'element="tns:{response_name}"/></wsdl:message>'
            f'<wsdl:message name="{operation}Response_Headers">'
            + "".join(
                f'<wsdl:part name="{h}" element="tns:{h}"/>' for h, _ in spec.RESPONSE_HEADERS
            )
            + "</wsdl:message>"
        )
        port_ops.append(
            f'<wsdl:operation name="{operation}">'
            f'<wsdl:input name="{operation}Request" message="tns:{operation}Request"/>'
            f'<wsdl:output name="{operation}Response" message="tns:{operation}Response"/>'
            "</wsdl:operation>"
        )
        in_headers = "".join(
            f'<soap:header message="tns:{operation}Request_Headers" part="{h}" use="literal"/>'
            for h, _ in request_headers
        )
        out_headers = "".join(
            f'<soap:header message="tns:{operation}Response_Headers" part="{h}" use="literal"/>'
            for h, _ in spec.RESPONSE_HEADERS
        )
        binding_ops.append(
            f'<wsdl:operation name="{operation}">'
            f'<soap:operation soapAction="{spec.soap_action(agent, operation)}" style="document"/>'
            f'<wsdl:input name="{operation}Request">{in_headers}'
            '<soap:body use="literal"/></wsdl:input>'
            f'<wsdl:output name="{operation}Response">{out_headers}<soap:body use="literal"/>'
            "</wsdl:output></wsdl:operation>"
        )
    address = quoteattr(f"{address_base}{agent}.svc")
    return "\n".join(
        [
            '<?xml version="1.0" encoding="utf-8"?>',
            "<!-- The hub's own description of the NetServer operations it uses. "
            "Rendered from crm/wsdl/spec.py; do not edit by hand. -->",
            f'<wsdl:definitions name="{agent}" targetNamespace="{spec.NS}" '
            'xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" '
            'xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" '
            'xmlns:xs="http://www.w3.org/2001/XMLSchema" '
            f'xmlns:tns="{spec.NS}" xmlns:arr="{spec.ARRAYS_NS}">',
            "<wsdl:types>",
            "".join(schema),
            "".join(arrays_schema),
            "</wsdl:types>",
            "".join(messages),
            f'<wsdl:portType name="{agent}">{"".join(port_ops)}</wsdl:portType>',
            f'<wsdl:binding name="BasicHttpBinding_{agent}" type="tns:{agent}">'
            '<soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>'
            f"{''.join(binding_ops)}</wsdl:binding>",
            f'<wsdl:service name="{agent}"><wsdl:port name="BasicHttpBinding_{agent}" '
            f'binding="tns:BasicHttpBinding_{agent}"><soap:address location={address}/>'
            "</wsdl:port></wsdl:service>",
            "</wsdl:definitions>",
            "",
        ]
    )


def wsdl_path(agent: str) -> Path:
    return WSDL_DIR / f"{agent}.wsdl"


def write_all() -> list[Path]:
    paths = []
    for agent in spec.AGENTS:
        path = wsdl_path(agent)
        path.write_text(render_agent(agent), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    write_all()
