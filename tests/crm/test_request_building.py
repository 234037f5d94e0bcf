"""The requests of the engine's hot calls (Person.GetPersonEntity,
Appointment.SaveAppointmentEntity, Sale.SaveSaleEntity) are written straight as the XML zeep
would send (crm.client.envelopes): for a table of each call's values, the same envelope and
HTTP headers as zeep's serialization of the same call, offline and as both clients send it
over HTTP to the simulator; what the direct writing does not write exactly is left to zeep;
and the call log records the request so written with its secrets masked."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from zeep.wsdl.utils import etree_to_string

from crm.client import (
    ConnectionSettings,
    MemoryTicketStore,
    NetServerClient,
    bundled_wsdl,
    envelopes,
)
from crm.client.transport import STATS, zeep_client
from crm.models import CrmCall, SuperOfficeConnection
from crm.services import client_for_account, connection_settings_of
from tests.crm.both_readings import clients_both_ways, outcome

from .test_contract import SERVICES88, official_wsdl

pytestmark = pytest.mark.django_db

NS = "http://www.superoffice.net/ws/crm/NetServer/Services88"
START = datetime(2025, 3, 1, 10, tzinfo=UTC)
TEXT = "a & b <c> d > \"q\" 's' ]]> é ø 北京 😀 \u2028\x85 tab\t line\r\nnext\n"
HEADERS = {"ApplicationToken": "app-token", "Credentials": {"Ticket": "7T:ticket;1"}}


def _structure(xml: bytes):
    """The document as names, attributes, text and children, whatever its prefixes."""

    def of(element):
        return (
            element.tag,
            sorted(element.attrib.items()),
            element.text,
            element.tail,
            [of(item) for item in element],
        )

    return of(etree.fromstring(xml))


def _zeeps(client, agent: str, operation: str, params: dict, headers: dict):
    """What zeep posts for the call: the envelope's bytes and the HTTP headers."""
    zclient, zservice = client._service_of(agent)
    binding = zservice._binding
    envelope, http_headers = binding._create(
        operation,
        (),
        {**params, "_soapheaders": headers},
        client=zclient,
        options=zservice._binding_options,
    )
    return etree_to_string(envelope), http_headers


def _written(client, agent: str, operation: str, params: dict, headers: dict):
    zclient, zservice = client._service_of(agent)
    return envelopes.envelope(zclient, zservice, operation, params, headers)


def _appointment(**fields):
    """An AppointmentEntity as create_appointment makes it, with ``fields`` changed."""
    entity = {
        "Associate": {"AssociateId": 3},
        "Contact": {"ContactId": 2},
        "AppointmentId": 0,
        "Description": "Call back [emhub:run:2]",
        "StartDate": START,
        "EndDate": START + timedelta(minutes=30),
        "Person": {"PersonId": 5},
        "Project": None,
        "Type": "inDiary",
        "Completed": "NotStarted",
        "Task": {"TaskListItemId": 1},
    }
    return {"AppointmentEntity": {**entity, **fields}}


def _sale(**fields):
    """A SaleEntity as create_sale makes it, with ``fields`` changed."""
    entity = {
        "Associate": {"AssociateId": 2},
        "Contact": None,
        "SaleText": "Clicked [emhub:run:1]",
        "Person": {"PersonId": 5},
        "Rating": None,
        "Source": None,
        "Status": "Open",
        "Saledate": START,
        "SaleId": 0,
        "Heading": "Webinar lead",
    }
    return {"SaleEntity": {**entity, **fields}}


OSLO = ZoneInfo("Europe/Oslo")

# operation: {case: (params, headers)}, each written directly exactly as zeep writes it.
WRITTEN = {
    "GetPersonEntity": {
        "a person": ({"PersonEntityId": 5}, HEADERS),
        "person 0": ({"PersonEntityId": 0}, HEADERS),
        "a negative id": ({"PersonEntityId": -1}, HEADERS),
        "beyond xs:int": ({"PersonEntityId": 2**40}, HEADERS),
        "no id": ({"PersonEntityId": None}, HEADERS),
        "no arguments": ({}, HEADERS),
        "secrets to escape": (
            {"PersonEntityId": 5},
            {"ApplicationToken": "to<k>&\"en'", "Credentials": {"Ticket": "7T:&<>;1"}},
        ),
        "empty secrets": ({"PersonEntityId": 5}, {"ApplicationToken": "", "Credentials": {}}),
        "no ticket": ({"PersonEntityId": 5}, {"ApplicationToken": "t", "Credentials": None}),
        "a ticket of None": ({"PersonEntityId": 5}, {"Credentials": {"Ticket": None}}),
        "a time zone": (
            {"PersonEntityId": 5},
            {**HEADERS, "TimeZone": {"SoTimeZoneId": 7, "SoTimeZoneLocationCode": "NO"}},
        ),
        "no headers": ({"PersonEntityId": 5}, {}),
        "headers of None": ({"PersonEntityId": 5}, {"ApplicationToken": None}),
    },
    "SaveAppointmentEntity": {
        "as the engine calls": (_appointment(), HEADERS),
        "text to escape": (_appointment(Description=TEXT), HEADERS),
        "empty text": (_appointment(Description=""), HEADERS),
        "no text": (_appointment(Description=None), HEADERS),
        "no company": (_appointment(Contact=None), HEADERS),
        "a company of no fields": (_appointment(Contact={}), HEADERS),
        "a company field of None": (_appointment(Contact={"ContactId": None}), HEADERS),
        "a project, completed, in the checklist": (
            _appointment(Project={"ProjectId": 4}, Completed="Completed", Type="inChecklist"),
            HEADERS,
        ),
        "microseconds": (
            _appointment(
                StartDate=datetime(2025, 3, 1, 10, 0, 0, 123456, tzinfo=UTC),
                EndDate=datetime(2025, 3, 1, 10, 30, 0, 1, tzinfo=UTC),
            ),
            HEADERS,
        ),
        "naive times": (
            _appointment(
                StartDate=datetime(2025, 3, 1, 10), EndDate=datetime(2025, 3, 1, 10, 30, 0, 5)
            ),
            HEADERS,
        ),
        "other time zones": (
            _appointment(
                StartDate=datetime(2025, 7, 1, 10, tzinfo=OSLO),
                EndDate=datetime(2025, 7, 1, 10, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
            ),
            HEADERS,
        ),
        "an insertion order of its own": (
            {"AppointmentEntity": dict(reversed(_appointment()["AppointmentEntity"].items()))},
            HEADERS,
        ),
        "names of the schema the hub leaves out": (
            _appointment(
                Associate={"AssociateId": 3, "Name": "Ann & Co", "FullName": ""},
                Task={"TaskListItemId": 1, "Value": "<Call>"},
            ),
            HEADERS,
        ),
        "no entity": ({"AppointmentEntity": None}, HEADERS),
        "an empty entity": ({"AppointmentEntity": {}}, HEADERS),
    },
    "SaveSaleEntity": {
        "as the engine calls": (_sale(), HEADERS),
        "text and heading to escape": (_sale(SaleText=TEXT, Heading="<b>Lead</b> & more"), HEADERS),
        "empty text and heading": (_sale(SaleText="", Heading=""), HEADERS),
        "a company, source and rating": (
            _sale(Contact={"ContactId": 2}, Source={"Id": 3}, Rating={"Id": 4}),
            HEADERS,
        ),
        "now": (_sale(Saledate=datetime.now(UTC)), HEADERS),
        "naive, with microseconds": (
            _sale(Saledate=datetime(2025, 3, 1, 10, 0, 0, 999999)),
            HEADERS,
        ),
        "Oslo": (_sale(Saledate=datetime(2025, 1, 1, 0, 0, tzinfo=OSLO)), HEADERS),
        "a closed sale": (_sale(Status="Lost", SaleId=12), HEADERS),
    },
}

AGENTS = {
    "GetPersonEntity": "Person",
    "SaveAppointmentEntity": "Appointment",
    "SaveSaleEntity": "Sale",
}


@pytest.fixture(scope="module")
def offline_client():
    """A client on the hub's WSDL, for writing requests without sending them."""
    connection = ConnectionSettings(base_url="https://netserver.invalid/", auth_mode="onsite")
    return NetServerClient(connection=connection)


@pytest.mark.parametrize(
    ("operation", "case"), [(op, case) for op, cases in WRITTEN.items() for case in cases]
)
def test_a_request_written_directly_is_the_one_zeep_writes(offline_client, operation, case):
    params, headers = WRITTEN[operation][case]
    agent = AGENTS[operation]
    zeeps, zeeps_headers = _zeeps(offline_client, agent, operation, params, headers)
    written, written_headers = _written(offline_client, agent, operation, params, headers)
    assert _structure(written) == _structure(zeeps)
    assert written_headers == zeeps_headers
    # Byte for byte, prefixes and all: the call log records the same request either way.
    assert written == zeeps
    assert etree.tostring(etree.fromstring(written), method="c14n") == etree.tostring(
        etree.fromstring(zeeps), method="c14n"
    )


def test_the_written_values_are_those_zeep_writes(offline_client):
    written, headers = _written(
        offline_client,
        "Appointment",
        "SaveAppointmentEntity",
        *WRITTEN["SaveAppointmentEntity"]["microseconds"],
    )
    text = written.decode()
    assert headers == {
        "SOAPAction": f'"{NS}/Appointment/SaveAppointmentEntity"',
        "Content-Type": "text/xml; charset=utf-8",
    }
    assert "<ns0:StartDate>2025-03-01T10:00:00.123456Z</ns0:StartDate>" in text
    assert "<ns0:Contact><ns0:ContactId>2</ns0:ContactId></ns0:Contact>" in text
    assert "Project" not in text  # None: left out
    escaped = _written(
        offline_client,
        "Sale",
        "SaveSaleEntity",
        *WRITTEN["SaveSaleEntity"]["text and heading to escape"],
    )[0]
    assert "<ns0:Heading>&lt;b&gt;Lead&lt;/b&gt; &amp; more</ns0:Heading>" in escaped.decode()
    assert "line&#13;\nnext" in escaped.decode() and "北京 😀".encode() in escaped


# operation: {case: (params, headers)}, left to zeep, which writes them or refuses them.
LEFT_TO_ZEEP = {
    "GetPersonEntity": {
        "a number as text": ({"PersonEntityId": "5"}, HEADERS),
        "a boolean for a number": ({"PersonEntityId": True}, HEADERS),
        "a float for a number": ({"PersonEntityId": 5.0}, HEADERS),
        "an unknown argument": ({"PersonEntityId": 5, "Other": 1}, HEADERS),
        "an unknown header": ({"PersonEntityId": 5}, {**HEADERS, "Other": "x"}),
        "a header of text for a complex": ({"PersonEntityId": 5}, {"Credentials": "ticket"}),
        "a ticket of bytes": ({"PersonEntityId": 5}, {"Credentials": {"Ticket": b"ticket"}}),
    },
    "SaveAppointmentEntity": {
        "a control character": (_appointment(Description="bell\x07"), HEADERS),
        "a vertical tab": (_appointment(Description="\x0b"), HEADERS),
        "not a character": (_appointment(Description="\ufffe"), HEADERS),
        "a date for a time": (_appointment(StartDate=date(2025, 3, 1)), HEADERS),
        "a time as text": (_appointment(StartDate="2025-03-01T10:00:00Z"), HEADERS),
        "an unknown field": (_appointment(Colour="blue"), HEADERS),
        "a list for a complex": (_appointment(Contact=[{"ContactId": 2}]), HEADERS),
        "a mapping other than a dict": (
            {"AppointmentEntity": OrderedDict(_appointment()["AppointmentEntity"])},
            HEADERS,
        ),
        "an int for a complex": (_appointment(Person=5), HEADERS),
    },
    "SaveSaleEntity": {
        "a number for text": (_sale(Heading=7), HEADERS),
        "a str subclass": (_sale(Heading=type("Safe", (str,), {})("Lead")), HEADERS),
        "a null character": (_sale(SaleText="a\x00b"), HEADERS),
    },
}


@pytest.mark.parametrize(
    ("operation", "case"), [(op, case) for op, cases in LEFT_TO_ZEEP.items() for case in cases]
)
def test_a_request_not_written_exactly_is_left_to_zeep(offline_client, operation, case):
    params, headers = LEFT_TO_ZEEP[operation][case]
    with pytest.raises(envelopes.LeftToZeep):
        _written(offline_client, AGENTS[operation], operation, params, headers)


def test_other_operations_and_other_schemas_are_left_to_zeep(offline_client):
    with pytest.raises(envelopes.LeftToZeep):
        _written(offline_client, "Person", "SavePersonEntity", {"PersonEntity": None}, HEADERS)
    if SERVICES88.is_dir():
        # SuperOffice's own WSDL asks for WS-Addressing headers (a MessageID of each call's
        # own), which zeep adds: those requests are zeep's.
        official = NetServerClient(
            connection=ConnectionSettings(
                base_url="https://netserver.invalid/", auth_mode="onsite"
            ),
            wsdl_locator=official_wsdl,
        )
        for operation, cases in WRITTEN.items():
            params, headers = next(iter(cases.values()))
            with pytest.raises(envelopes.LeftToZeep):
                _written(official, AGENTS[operation], operation, params, headers)


# The calls as the engine makes them through the client (name: the call), each sent by a
# client writing its requests directly and by one leaving them to zeep, over HTTP.
CALLS = {
    "get_person": lambda c: c.get_person(person_id=5),
    "get_person of none": lambda c: c.get_person(person_id=999_999),
    "get_person of an id as text": lambda c: c.get_person(person_id="7"),
    "create_appointment": lambda c: c.create_appointment(
        person_id=5,
        owner_id=3,
        task_id=1,
        description="Call back [emhub:run:2]",
        start=START,
        end=START + timedelta(minutes=30),
        company_id=2,
    ),
    "create_appointment to escape, completed, no company": lambda c: c.create_appointment(
        person_id=6,
        owner_id=3,
        task_id=1,
        description=TEXT,
        start=datetime(2025, 3, 1, 10, 0, 0, 250000, tzinfo=UTC),
        end=datetime(2025, 3, 1, 12, 30, tzinfo=OSLO),
        completed=True,
        company_id=None,
    ),
    "create_appointment in the checklist of a project": lambda c: c.create_appointment(
        person_id=7,
        owner_id=3,
        task_id=1,
        description="",
        start=datetime(2025, 3, 1, 10),
        end=datetime(2025, 3, 1, 10),
        company_id=0,
        project_id=1,
        appointment_type="inChecklist",
    ),
    "create_appointment refused": lambda c: c.create_appointment(
        person_id=5, owner_id=3, task_id=1, description="x", start=START, end=START - timedelta(1)
    ),
    "create_appointment of a control character": lambda c: c.create_appointment(
        person_id=5, owner_id=3, task_id=1, description="\x0b", start=START, end=START
    ),
    "create_sale": lambda c: c.create_sale(
        heading="Webinar lead",
        text="Clicked [emhub:run:1]",
        person_id=5,
        owner_id=2,
        sale_date=START,
    ),
    "create_sale to escape, with company, source and rating": lambda c: c.create_sale(
        heading="<b>Lead</b> & ‘more’",
        text=TEXT,
        person_id=5,
        owner_id=2,
        company_id=2,
        source_id=1,
        rating_id=1,
        sale_date=datetime(2025, 3, 1, 10, 0, 0, 5),
    ),
    "create_sale with no heading": lambda c: c.create_sale(
        heading="", text="", person_id=5, owner_id=2, sale_date=START
    ),
}

# The calls the direct writing leaves to zeep.
LEFT = {"get_person of an id as text", "create_appointment of a control character"}


def test_the_client_sends_what_zeep_would_send(crm_account, simulator):
    tickets = MemoryTicketStore()
    records: list = []
    direct, through_zeep = clients_both_ways(
        crm_account,
        switch="build_requests_directly",
        ticket_store=tickets,
        recorder=records.append,
    )
    direct.get_person(person_id=1)  # signs in: both clients send the one ticket
    for name, call in CALLS.items():
        sent = []
        for client in (direct, through_zeep):
            for agent in AGENTS.values():
                zeep_client(bundled_wsdl(agent), 10).transport.capture.request = b""
            written_before = STATS["requests_written"]
            result = outcome(call, client)
            if type(result) is int:
                result = "a new id"  # each client saves its own
            agent = records[-1].agent
            request = zeep_client(bundled_wsdl(agent), 10).transport.capture.request
            written = STATS["requests_written"] - written_before
            sent.append((result, records[-1].outcome, records[-1].http_status, request, written))
        (result, logged, status, request, written), by_zeep = sent
        assert (result, logged, status, request) == by_zeep[:4], name
        assert by_zeep[4] == 0
        assert written == (0 if name in LEFT else 1), name
        assert request.startswith(b"<?xml") != (name == "create_appointment of a control character")
    # Each save reached the simulator twice, with its text as sent.
    descriptions = [a["Description"] for a in simulator.state("appointments")]
    assert descriptions.count(TEXT) == 2
    sales = simulator.state("sales")
    assert [s["Heading"] for s in sales].count("<b>Lead</b> & ‘more’") == 2


def test_the_call_log_records_a_request_written_directly_without_its_secrets(
    crm_account, simulator
):
    crm = client_for_account(crm_account)
    written_before = STATS["requests_written"]
    person = crm.get_person(person_id=3)
    crm.create_appointment(
        person_id=3,
        owner_id=person.company_owner_id or 1,
        task_id=1,
        description="Call back & <soon>",
        start=START,
        end=START + timedelta(minutes=30),
    )
    crm.create_sale(heading="Lead", text="Clicked", person_id=3, owner_id=1)
    assert STATS["requests_written"] - written_before == 3
    calls = list(CrmCall.objects.filter(account=crm_account).order_by("id"))
    assert [(c.operation, c.outcome, c.http_status) for c in calls] == [
        ("AuthenticateUsernamePassword", "ok", 200),
        ("GetPersonEntity", "ok", 200),
        ("SaveAppointmentEntity", "ok", 200),
        ("SaveSaleEntity", "ok", 200),
    ]
    ticket = SuperOfficeConnection.objects.get(account=crm_account).ticket
    for call in calls[1:]:
        request = call.request_excerpt
        assert (
            f'<ns0:ApplicationToken xmlns:ns0="{NS}">[redacted]</ns0:ApplicationToken>' in request
        )
        assert "<ns1:Ticket>[redacted]</ns1:Ticket>" in request
        assert simulator.app_token not in request and ticket and ticket not in request
        assert "7T:" not in request
    assert "<ns0:PersonEntityId>3</ns0:PersonEntityId>" in calls[1].request_excerpt
    assert "<ns0:Description>Call back &amp; &lt;soon&gt;</ns0:Description>" in (
        calls[2].request_excerpt
    )
    assert [a["Description"] for a in simulator.state("appointments")] == ["Call back & <soon>"]
    assert [s["Heading"] for s in simulator.state("sales")] == ["Lead"]


def test_a_request_written_directly_is_answered_to_zeeps_reading_too(crm_account, simulator):
    connection = connection_settings_of(SuperOfficeConnection.objects.get(account=crm_account))
    crm = NetServerClient(
        connection=connection, timeout=10, read_persons_directly=False, read_replies_directly=False
    )
    crm.get_person(person_id=1)  # signs in
    written_before = STATS["requests_written"]
    assert crm.get_person(person_id=5).id == 5
    appointment_id = CALLS["create_appointment"](crm)
    sale_id = CALLS["create_sale"](crm)
    assert STATS["requests_written"] - written_before == 3
    assert [a["AppointmentId"] for a in simulator.state("appointments")] == [appointment_id]
    assert [s["SaleId"] for s in simulator.state("sales")] == [sale_id]
