"""The simulator as a server: its WSDL, its state endpoints, and the tenant-WSDL client mode."""

from datetime import UTC, datetime, timedelta

import pytest
import requests
import zeep

from crm.client import ZEEP_SETTINGS
from crm.client.archive import decode_value
from crm.models import SuperOfficeConnection
from crm.services import client_for_account
from crm.simulator.handlers import HANDLERS, get_archive_list_by_columns
from crm.simulator.state import DUPLICATE_EMAIL, Tenant

pytestmark = pytest.mark.django_db


def test_wsdl_is_served_with_the_simulator_address(simulator):
    client = zeep.Client(f"{simulator.base_url}Person.svc?wsdl", settings=ZEEP_SETTINGS)
    [service] = client.wsdl.services.values()
    [port] = service.ports.values()
    assert port.binding_options["address"] == f"{simulator.base_url}Person.svc"


def test_client_can_load_the_tenant_wsdl_once(crm_account, simulator):
    SuperOfficeConnection.objects.filter(account=crm_account).update(use_tenant_wsdl=True)
    for person_id in (1, 2, 3):
        assert client_for_account(crm_account).get_person(person_id=person_id).id == person_id
    # Person and SoPrincipal, each loaded once however many clients were made.
    assert simulator.state("counters")["wsdl_loads"] <= 2


def test_unknown_operation_is_a_soap_fault(simulator):
    envelope = (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        '<DeletePersonEntity xmlns="http://www.superoffice.net/ws/crm/NetServer/Services88"/>'
        "</s:Body></s:Envelope>"
    )
    response = requests.post(f"{simulator.base_url}Person.svc", data=envelope, timeout=5)
    assert response.status_code == 500
    assert "<faultcode>" in response.text and "ExceptionInfo" in response.text


def test_seeded_data_is_deterministic_and_has_duplicates(simulator):
    first = simulator.state("persons/17")
    simulator.reset()
    assert simulator.state("persons/17") == first
    assert simulator.state("persons")["count"] == 300
    config = simulator.state("config")
    assert config["duplicate_email"] == "duplicate@example.com"


def _archive(tenant, provider, *restrictions, page_size=50, column="personId", entities=()):
    request = {
        "ProviderName": provider,
        "Columns": [column],
        "Entities": list(entities),
        "Restriction": [
            {"Name": name, "Operator": operator, "Values": [value]}
            for name, operator, value in restrictions
        ],
        "PageSize": page_size,
    }
    return [
        decode_value(item["ColumnData"][column]["DisplayValue"], "int")
        for item in get_archive_list_by_columns(tenant, 1, request)["Response"]
    ]


def test_simulator_indexes_follow_every_write():
    tenant = Tenant(
        username="u",
        password="p",
        app_token="a",
        persons=40,
        seed=5,
        system_user_token="s",
        context_identifier="c",
        ticket_ttl=60,
    )
    call = lambda operation, **params: HANDLERS[operation](tenant, 1, params)  # noqa: E731
    old_email = tenant.persons[10]["Emails"][0]
    since = datetime.now(UTC) - timedelta(seconds=1)

    call(
        ("Person", "SavePersonEntity"),
        PersonEntity={"PersonId": 10, "Emails": [{"Value": "New@X.example"}]},
    )
    created = call(
        ("Person", "SavePersonEntity"),
        PersonEntity={
            "Firstname": "Nea",
            "Contact": {"ContactId": 1},
            "Emails": [{"Value": DUPLICATE_EMAIL}],
        },
    )["Response"]["PersonId"]
    assert _archive(tenant, "Person", ("email/emailAddress", "is", old_email)) == []
    assert _archive(tenant, "Person", ("email/emailAddress", "is", " new@x.EXAMPLE ")) == [10]
    assert _archive(tenant, "Person", ("email/emailAddress", "is", DUPLICATE_EMAIL))[-1] == created

    call(("Person", "SetConsent"), PersonId=created, Purpose="STORE", LegalBase="61B", Source="API")
    call(("Person", "SetConsent"), PersonId=created, Purpose="EMARKETING", LegalBase="61A")
    call(("Person", "RemoveConsent"), PersonId=3, Purpose="STORE")
    infos = call(("Person", "GetConsentInfos"), PersonId=created)["Response"]
    assert [i["ConsentPurposeKey"] for i in infos] == ["EMARKETING", "STORE"]
    # consentPerson/updatedDate is a date: "after" yesterday is today's changes.
    yesterday = f"[D:{since - timedelta(days=1):%d.%m.%Y}]"
    changed = _archive(
        tenant,
        "ConsentPurpose",
        ("consentPerson/updatedDate", "after", yesterday),
        column="consentPerson/personId",
    )
    expected = [created, created] + ([3] if (3, "STORE") in tenant.consents else [])
    assert sorted(changed) == sorted(expected)

    member = tenant._add_project_member(1, 7)
    call(("Project", "DeleteProjectMemberByIds"), ProjectMemberIds=[member])
    assert (
        _archive(tenant, "ProjectMember", ("projectId", "equals", "1"), ("personId", "equals", "7"))
        == []
    )
    call(
        ("Selection", "AddContactSelectionMembers"),
        SelectionId=1,
        ContactPersonIds=[{"PersonId": 9}],
    )
    assert _archive(
        tenant,
        "ContactPersonStaticSelectionV2",
        ("selectionId", "equals", "1"),
        ("personId", "equals", "9"),
        entities=["staticPerson"],
    ) == [9]
    call(
        ("Selection", "RemoveContactSelectionMembers"),
        SelectionId=1,
        ContactPersonIds=[{"PersonId": 9}],
    )
    assert (
        _archive(
            tenant,
            "ContactPersonStaticSelectionV2",
            ("selectionId", "equals", "1"),
            ("personId", "equals", "9"),
            entities=["staticPerson"],
        )
        == []
    )
    members = _archive(
        tenant,
        "ContactPersonStaticSelectionV2",
        ("selectionId", "equals", "1"),
        page_size=1000,
        entities=["staticPerson"],
    )
    assert members == sorted(tenant.selections[1]["members"])

    call(("Sale", "SaveSaleEntity"), SaleEntity={"Heading": "h", "Person": {"PersonId": 4}})
    assert [
        s["PersonId"] for s in call(("Sale", "GetSalesFromPerson"), PersonId=4)["Response"]
    ] == [4]
    call(("Appointment", "SaveAppointmentEntity"), AppointmentEntity={"Person": {"PersonId": 4}})
    assert _archive(tenant, "Appointment", ("personId", "oneOf", "4"), column="personId") == [4]

    # Every index equals one rebuilt from the rows.
    by_email: dict[str, set[int]] = {}
    for pid, person in tenant.persons.items():
        for email in person["Emails"]:
            by_email.setdefault(email.lower(), set()).add(pid)
    assert tenant.persons_by_email == by_email
    assert tenant._consent_times == sorted(
        (row["updated"], pid, purpose) for (pid, purpose), row in tenant.consents.items()
    )
    assert {pid: dict(rows) for pid, rows in tenant.consents_by_person.items()} == {
        pid: {purpose: row for (p, purpose), row in tenant.consents.items() if p == pid}
        for pid, _ in tenant.consents
    }
    for project in tenant.projects.values():
        assert project["by_person"] == {pid: mid for mid, pid in project["members"].items()}
        assert project["order"].ordered() == sorted(project["members"])

    tenant.reset()
    assert _archive(tenant, "Person", ("email/emailAddress", "is", "new@x.example")) == []
    assert _archive(tenant, "Person", ("email/emailAddress", "is", old_email)) == [10]
