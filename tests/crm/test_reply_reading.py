"""The replies of the engine's saves and of consent sync are read straight from their XML
(crm.client.direct) as zeep reads them: the same value, the same error and the same call
log outcome, for what the simulator answers with the hub's WSDL and the official one, in
both its modes, and for replies of every odd shape a NetServer could send, answered over
HTTP by a loopback server to the real client."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from crm.client import NetServerClient, bundled_wsdl
from crm.client.activities import _APPOINTMENT_ID, _SALE_ID
from crm.client.consents import _SET_CONSENT_READ, _consents_of_infos, _consents_read
from crm.client.direct import LeftToZeep
from crm.client.persons import _briefs_of_carriers, _briefs_read
from crm.client.transport import zeep_body, zeep_client
from crm.errors import PermanentCrmError
from tests.crm.both_readings import (
    ENVELOPE_SHAPES,
    clients_both_ways,
    outcome,
    shapes_read_both_ways,
)

from .test_contract import SERVICES88, official_wsdl

pytestmark = pytest.mark.django_db

ENVELOPE_NS = "http://schemas.xmlsoap.org/soap/envelope/"
START = datetime(2025, 3, 1, 10, tzinfo=UTC)

# agent, operation, the direct reader, and what the client reads of zeep's body.
READINGS = {
    "SaveSaleEntity": ("Sale", _SALE_ID, lambda body: body.Response.SaleId),
    "SaveAppointmentEntity": (
        "Appointment",
        _APPOINTMENT_ID,
        lambda body: body.Response.AppointmentId,
    ),
    "GetConsentInfos": ("Person", _consents_read, _consents_of_infos),
    "SetConsent": ("Person", _SET_CONSENT_READ, lambda body: None),
    "GetPersonList": ("Person", _briefs_read, _briefs_of_carriers),
}

# The calls, by operation, as the engine and consent sync make them.
CALLS = {
    "SaveSaleEntity": lambda c: c.create_sale(
        heading="Webinar lead", text="Clicked [emhub:run:1]", person_id=5, owner_id=2
    ),
    "SaveAppointmentEntity": lambda c: c.create_appointment(
        person_id=5,
        owner_id=3,
        task_id=1,
        description="Call back [emhub:run:2]",
        start=START,
        end=START + timedelta(minutes=30),
        company_id=2,
    ),
    "GetConsentInfos": lambda c: c.consents(person_id=5),
    "SetConsent": lambda c: c.set_consent(
        person_id=5, purpose_key="EMARKETING", legal_base_key="61A", comment="form"
    ),
    "GetPersonList": lambda c: c.get_persons(person_ids=[5, 8]),
}


def _both_readings(client: NetServerClient, locator, operation: str, reply: bytes):
    """The reply read by the direct reader and by zeep, offline, as the client reads them."""
    agent, directly, through_zeep = READINGS[operation]
    element = etree.fromstring(reply).find(f"{{{ENVELOPE_NS}}}Body")[0]
    _, zservice = client._service_of(agent)
    return directly(element), through_zeep(zeep_body(zservice, operation, element))


@pytest.mark.parametrize("wsdl", ["hub", "official"])
@pytest.mark.parametrize("newer", [False, True])
def test_saves_and_consents_read_directly_equal_zeeps_reading(crm_account, simulator, wsdl, newer):
    if wsdl == "official" and not SERVICES88.is_dir():
        pytest.skip("SuperOffice's official WSDL files are not available")
    locator = official_wsdl if wsdl == "official" else bundled_wsdl
    direct, through_zeep = clients_both_ways(
        crm_account, switch="read_replies_directly", wsdl_locator=locator
    )
    simulator.control(newer_version=newer)
    try:
        # Each save as the simulator answered it, read both ways: the same id, read directly.
        for operation in ("SaveSaleEntity", "SaveAppointmentEntity", "SetConsent"):
            returned = CALLS[operation](direct)
            agent = READINGS[operation][0]
            reply = zeep_client(locator(agent), 10).transport.capture.response
            read_directly, read_by_zeep = _both_readings(direct, locator, operation, reply)
            assert read_directly == read_by_zeep == returned, operation
            CALLS[operation](through_zeep)
        sales = simulator.state("sales")
        assert [s["SaleId"] for s in sales] == [1, 2]  # one per client: nothing lost
        appointments = simulator.state("appointments")
        assert [a["AppointmentId"] for a in appointments] == [1, 2]
        # Consents of every kind: set through either client, withdrawn, and none at all.
        direct.set_consent(person_id=7, purpose_key="STORE", legal_base_key="61B")
        through_zeep.set_consent(person_id=8, purpose_key="EMARKETING", legal_base_key="61A")
        direct.withdraw_consent(person_id=8, purpose_key="EMARKETING")
        for person_id in [*range(1, 301), 0, 999_999]:
            call = lambda c, p=person_id: c.consents(person_id=p)  # noqa: E731
            assert outcome(call, direct) == outcome(call, through_zeep), person_id
        for person_id in (5, 8):
            returned = direct.consents(person_id=person_id)
            reply = zeep_client(locator("Person"), 10).transport.capture.response
            read = _both_readings(direct, locator, "GetConsentInfos", reply)
            assert read == (returned, returned), person_id
        # A refused consent: the same error either way.
        refused = lambda c: c.set_consent(  # noqa: E731
            person_id=11, purpose_key="EMARKETING", legal_base_key="NOPE"
        )
        assert outcome(refused, direct) == outcome(refused, through_zeep)
        assert isinstance(outcome(refused, direct), tuple)
    finally:
        simulator.control(newer_version=False)
    consents = {c.purpose_key: c for c in direct.consents(person_id=5)}
    assert consents["EMARKETING"].legal_base_key == "61A" and consents["EMARKETING"].updated_at
    assert consents["EMARKETING"].comment == "form"
    withdrawn = {c.purpose_key: c for c in direct.consents(person_id=8)}["EMARKETING"]
    assert withdrawn.legal_base_key == "WITHDRAWN"


# --- replies of odd shapes, from a loopback server -----------------------------------------


def _samples(crm_account) -> dict[str, str]:
    """A real reply of the simulator to each call, as it came over the wire."""
    direct, _ = clients_both_ways(crm_account, switch="read_replies_directly")
    direct.set_consent(person_id=5, purpose_key="STORE", legal_base_key="61B", comment="c")
    samples = {}
    for operation, call in CALLS.items():
        call(direct)
        agent = READINGS[operation][0]
        samples[operation] = zeep_client(bundled_wsdl(agent), 10).transport.capture.response
    return {operation: reply.decode() for operation, reply in samples.items()}


def _nil(name: str):
    return lambda xml: re.sub(
        rf"<{name}>.*?</{name}>", f'<{name} i:nil="true"/>', xml, count=1, flags=re.S
    )


def _first(name: str):
    """The first element of a saved entity or consent: where odd things are put."""
    return {
        "SaveSaleEntity": "SaleId",
        "SaveAppointmentEntity": "AppointmentId",
        "GetConsentInfos": "LegalBaseKey",
        "GetPersonList": "ContactId",
    }.get(name)


def _shapes(operation: str) -> dict:
    key = _first(operation) or "Nothing"
    response = f"{operation}Response"
    shapes = {
        "as sent": lambda xml: xml,
        "nil response": _nil("Response"),
        "empty response": lambda xml: re.sub(
            r"<Response>.*</Response>", "<Response/>", xml, flags=re.S
        ),
        "no response": lambda xml: re.sub(r"<Response>.*</Response>", "", xml, flags=re.S),
        "unknown elements": lambda xml: (
            xml.replace(f"<{key}>", f"<Later>x</Later><{key}>")
            .replace("</Response>", "<AddedLater><A>1</A></AddedLater></Response>")
            .replace("<Response>", "<Before/><Response>")
            .replace(f"</{response}>", f"<Extra>1</Extra></{response}>")
        ),
        "a name twice": lambda xml: re.sub(
            rf"(<{key}>[^<]*</{key}>)", r"\1<" + key + ">7</" + key + ">", xml
        ),
        "another prefix": lambda xml: xml.replace(
            f"<{response} ", f'<p:{response} xmlns:p="urn:other" '
        ).replace(f"</{response}>", f"</p:{response}>"),
        "another response": lambda xml: xml.replace(response, "GetPersonEntityResponse"),
        "bad value": lambda xml: re.sub(rf"<{key}>[^<]*", f"<{key}>five", xml),
        "empty value": lambda xml: re.sub(rf"<{key}>[^<]*</{key}>", f"<{key}/>", xml),
        "nil value": lambda xml: re.sub(rf"<{key}>[^<]*</{key}>", f'<{key} i:nil="true"/>', xml),
        "spaced value": lambda xml: re.sub(rf"<{key}>([^<]*)", rf"<{key}> \1 ", xml),
        "xsi type": lambda xml: xml.replace(f"<{key}>", f'<{key} i:type="xs:string">'),
        "xsi type elsewhere": lambda xml: re.sub(
            r"<(Person|Task|ConsentSourceName)>", r'<\1 i:type="Other">', xml, count=1
        ),
        "a comment": lambda xml: xml.replace("<Response>", "<Response><!-- note -->"),
        "a comment in the body": lambda xml: xml.replace(
            f"</{response}>", f"<!-- note --></{response}>"
        ),
        **ENVELOPE_SHAPES,
    }
    if operation == "GetConsentInfos":
        shapes |= {
            "an empty item": lambda xml: xml.replace("<Response>", "<Response><ConsentInfo/>"),
            "a nil item": lambda xml: xml.replace(
                "<Response>", '<Response><ConsentInfo i:nil="true"/>'
            ),
            "an unknown item": lambda xml: xml.replace(
                "<Response>", "<Response><Other><LegalBaseKey>X</LegalBaseKey></Other>"
            ),
            "bad date": lambda xml: xml.replace("<Registered>", "<Registered>yesterday", 1),
            "no items": lambda xml: re.sub(
                r"<Response>.*</Response>", "<Response></Response>", xml, flags=re.S
            ),
        }
    if operation == "SetConsent":
        shapes |= {
            "a value": lambda xml: xml.replace(
                f"></{response}>", f"><Response>true</Response></{response}>"
            ),
            "xsi type": lambda xml: xml.replace(
                f"></{response}>", f'><Response i:type="Other">true</Response></{response}>'
            ),
        }
    return shapes


@pytest.mark.parametrize("operation", list(CALLS))
def test_replies_of_odd_shapes_are_read_directly_as_zeep_reads_them(
    crm_account, simulator, operation
):
    sample = _samples(crm_account)[operation]
    shapes = _shapes(operation)
    read = shapes_read_both_ways(
        crm_account,
        switch="read_replies_directly",
        sample=sample,
        shapes=shapes,
        call=CALLS[operation],
    )
    # The reply as sent (and with unknown elements) is read directly, not left to zeep.
    directly = READINGS[operation][1]
    for name in ("as sent", "unknown elements", "another prefix"):
        body = etree.fromstring(shapes[name](sample).encode()).find(f"{{{ENVELOPE_NS}}}Body")
        assert directly(body[0]) == read["as sent"], name
    # And the odd ones reached the reading: values, None, errors.
    body = etree.fromstring(shapes["xsi type"](sample).encode()).find(f"{{{ENVELOPE_NS}}}Body")
    with pytest.raises(LeftToZeep):
        directly(body[0])
    assert read["a fault in a 200 reply"][0] is PermanentCrmError
    # zeep fails on an xsi:type it does not know, even on an element the hub does not read.
    if operation != "SetConsent":  # whose reply has no element to type in the WSDL
        assert read["xsi type elsewhere"][0] is PermanentCrmError
    assert read["a failure header"][0].__name__ == "NotFoundCrmError"
    if operation in ("SaveSaleEntity", "SaveAppointmentEntity"):
        assert isinstance(read["as sent"], int)
        assert read["a name twice"] == read["as sent"] and read["spaced value"] == read["as sent"]
        assert read["nil response"] is None and read["bad value"] is None
        assert read["empty response"][0] is read["no response"][0] is AttributeError
    if operation == "GetPersonList":
        assert sorted(read["as sent"]) == [5, 8] and read["as sent"][5].company_id
        assert read["nil response"] == read["no response"] == read["empty response"] == {}
        assert read["a name twice"] == read["spaced value"] == read["as sent"]
        assert read["bad value"][5].company_id is None  # zeep reads an unreadable int as None
    if operation == "GetConsentInfos":
        assert {c.purpose_key for c in read["as sent"]} == {"EMARKETING", "STORE"}
        assert read["no items"] == read["nil response"] == []
        assert read["an empty item"][0] is AttributeError
        assert read["a nil item"][1:] == read["as sent"] and not read["a nil item"][0].purpose_key
        assert read["an unknown item"] == read["as sent"]
        assert [c.registered_at for c in read["bad date"]][0] is None
