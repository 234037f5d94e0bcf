"""A person is read straight from GetPersonEntity's XML (crm.client.persons.person_from_reply)
as zeep reads it: the same Person, the same error and the same call log outcome for every
person the simulator has, and for replies of every odd shape a NetServer could send,
answered over HTTP by a loopback server to the real client."""

from __future__ import annotations

import functools
import re

import pytest
from lxml import etree

from crm.client import NetServerClient, bundled_wsdl
from crm.client.persons import person_from_reply
from crm.client.transport import zeep_client
from crm.errors import PermanentCrmError
from tests.crm.both_readings import (
    ENVELOPE_SHAPES,
    clients_both_ways,
    outcome,
    shapes_read_both_ways,
)

from .test_contract import SERVICES88, official_wsdl

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("wsdl", ["hub", "official"])
@pytest.mark.parametrize("newer", [False, True])
def test_every_person_read_directly_equals_zeeps_reading(crm_account, simulator, wsdl, newer):
    if wsdl == "official" and not SERVICES88.is_dir():
        pytest.skip("SuperOffice's official WSDL files are not available")
    locator = official_wsdl if wsdl == "official" else bundled_wsdl
    direct, through_zeep = clients_both_ways(
        crm_account, switch="read_persons_directly", wsdl_locator=locator
    )
    # Persons with every field the hub reads set: consents, interests, custom fields.
    direct.set_person_custom_field(person_id=7, field="x_score", value="[I:3]")
    direct.set_person_interests(person_id=7, add_ids=[1, 3])
    direct.set_no_mailing(person_id=8, no_mailing=True)
    simulator.control(newer_version=newer)
    try:
        for person_id in [*range(1, 301), 0, 999_999]:
            read = functools.partial(NetServerClient.get_person, person_id=person_id)
            assert outcome(read, direct) == outcome(read, through_zeep), person_id
    finally:
        simulator.control(newer_version=False)
    person = direct.get_person(person_id=7)
    assert person.custom_fields == {"x_score": "[I:3]"} and person.interests
    assert person.email and person.company_id and person.created_at and person.country_id


# --- replies of odd shapes, from a loopback server -----------------------------------------


def _sample_reply(crm_account) -> str:
    """A real GetPersonEntity reply of the simulator, as it came over the wire."""
    direct, _ = clients_both_ways(crm_account, switch="read_persons_directly")
    direct.set_person_custom_field(person_id=5, field="x_score", value="[I:4]")
    direct.get_person(person_id=5)
    reply = zeep_client(bundled_wsdl("Person"), 10).transport.capture.response
    return reply.decode()


def _nil(name: str):
    return lambda xml: re.sub(
        rf"<{name}>.*?</{name}>", f'<{name} i:nil="true"/>', xml, count=1, flags=re.S
    )


ODD_SHAPES = {
    "as sent": lambda xml: xml,
    "nil title": _nil("Title"),
    "nil contact": _nil("Contact"),
    "nil emails": _nil("Emails"),
    "nil interests": _nil("Interests"),
    "empty contact": lambda xml: re.sub(r"<Contact>.*?</Contact>", "<Contact/>", xml, flags=re.S),
    "nil response": _nil("Response"),
    "no response": lambda xml: re.sub(r"<Response>.*</Response>", "", xml, flags=re.S),
    "unknown elements": lambda xml: (
        xml.replace("<Contact>", "<Contact><Extra>1</Extra>")
        .replace("<PersonId>", "<Later>x</Later><PersonId>")
        .replace("</Response>", "<AddedLater><A>1</A></AddedLater></Response>")
        .replace("<Response>", "<Before/><Response>")
    ),
    "elements out of order": lambda xml: re.sub(
        r"(<PersonId>\d+</PersonId>)(.*)(</Response>)", r"\2\1\3", xml, flags=re.S
    ),
    "a name twice": lambda xml: xml.replace(
        "<Firstname>", "<Firstname>First</Firstname><Firstname>"
    ),
    "another prefix": lambda xml: xml.replace(
        "<GetPersonEntityResponse ", '<p:GetPersonEntityResponse xmlns:p="urn:other" '
    ).replace("</GetPersonEntityResponse>", "</p:GetPersonEntityResponse>"),
    "bad person id": lambda xml: re.sub(r"<PersonId>\d+", "<PersonId>five", xml),
    "bad country id": lambda xml: re.sub(r"<CountryId>\d+", "<CountryId>x", xml),
    "bad date": lambda xml: xml.replace("<CreatedDate>", "<CreatedDate>yesterday"),
    "spaced values": lambda xml: xml.replace("<NoMailing>false", "<NoMailing> true ").replace(
        "<CreatedDate>", "<CreatedDate>  "
    ),
    "xsi type": lambda xml: xml.replace("<Firstname>", '<Firstname i:type="xs:int">'),
    "xsi type elsewhere": lambda xml: xml.replace("<Mrmrs>", '<Mrmrs i:type="Other">', 1),
    "a comment": lambda xml: xml.replace("<PersonId>", "<!-- note --><PersonId>"),
    "an empty email item": lambda xml: xml.replace("<Emails>", "<Emails><EntityElement/>"),
    "a nil email item": lambda xml: xml.replace(
        "<Emails>", '<Emails><EntityElement i:nil="true"/>'
    ),
    **ENVELOPE_SHAPES,
}


def test_replies_of_odd_shapes_are_read_directly_as_zeep_reads_them(crm_account, simulator):
    sample = _sample_reply(crm_account)
    assert "<CustomFields><StringKeyValuePair>" in sample and "<Interests>" in sample
    read = shapes_read_both_ways(
        crm_account,
        switch="read_persons_directly",
        sample=sample,
        shapes=ODD_SHAPES,
        call=lambda client: client.get_person(person_id=5),
    )
    # The reply as sent is read directly, not left to zeep.
    body = etree.fromstring(sample.encode()).find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    assert person_from_reply(body[0]) == read["as sent"]
    # The shapes did reach the reading: a person, no person, and errors.
    assert read["as sent"].custom_fields == {"x_score": "[I:4]"}
    assert read["unknown elements"] == read["elements out of order"] == read["as sent"]
    assert read["nil contact"].company_id is None and read["nil emails"].emails == ()
    assert read["spaced values"].no_mailing is True
    assert read["bad person id"][0].__name__ == "NotFoundCrmError"
    assert read["bad country id"].country_id is None and read["bad date"].created_at is None
    assert read["a fault in a 200 reply"][0].__name__ == "PermanentCrmError"
    # zeep fails on an xsi:type it does not know, even on an element the hub does not read.
    assert read["xsi type elsewhere"][0] is PermanentCrmError
    assert read["an empty email item"][0] is AttributeError
