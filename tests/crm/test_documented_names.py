"""The names the hub sends are the ones SuperOffice documents, and the simulator holds
NetServer's line: every archive query and pick list the hub can make goes through the
strict simulator unrefused, and an undocumented name is refused with a fault naming it."""

from datetime import timedelta
from pathlib import Path

import pytest
import zeep
from django.utils import timezone

from campaigns import imports
from consent.models import ConsentSyncCycle, Purpose
from consent.services import consent_record, consent_sync_cycle
from crm.catalogue import catalogue
from crm.client import LIST_SOURCES, ZEEP_SETTINGS
from crm.client.queries import QUERIES
from crm.models import SuperOfficeConnection
from crm.services import (
    client_for_account,
    crm_companies_search,
    crm_company_get,
    crm_list_items,
)
from crm.wsdl import spec
from leads.services import candidates_for
from tests.campaigns.factories import ContactFactory

pytestmark = pytest.mark.django_db

OFFICIAL = Path(__file__).resolve().parents[2].parent / "shared" / "superoffice-wsdl" / "Services88"


def _signature(query) -> tuple:
    return (
        query.provider,
        tuple(query.columns),
        tuple(tuple(r) for r in query.restrictions),
        (query.order_by,),
        tuple(query.entities),
    )


def _logged(entry: dict) -> tuple:
    return (
        entry["provider"],
        tuple(entry["columns"]),
        tuple(tuple(r) for r in entry["restrictions"]),
        tuple(entry["order_by"]),
        tuple(entry["entities"]),
    )


def test_every_archive_query_and_list_the_hub_makes_is_answered_by_the_strict_simulator(
    crm_account, simulator
):
    account = crm_account
    SuperOfficeConnection.objects.filter(account=account).update(legal_basis_sync_enabled=True)
    client = client_for_account(account, correlation="documented-names")
    # Imports: a selection and a project, counted and paged (imports' own code path).
    for source_type, source_id in (("selection", 1), ("project", 2)):
        started = imports.contact_import_create(
            account=account, source_type=source_type, source_id=source_id, enqueue=False
        )
        assert imports.contact_import_run(import_id=started.pk).status == "done"
    # Consent: an incremental cycle after an earlier one reads ConsentPurpose's changes.
    contact = ContactFactory(account=account, email="p9@example.com", superoffice_person_id=9)
    ConsentSyncCycle.objects.create(
        account=account,
        kind=ConsentSyncCycle.Kind.FULL,
        status=ConsentSyncCycle.Status.SUCCEEDED,
        watermark=timezone.now() - timedelta(minutes=30),
    )
    consent_record(account=account, contact=contact, purpose=Purpose.STORE, legal_basis="61F")
    assert consent_sync_cycle(account=account).status == ConsentSyncCycle.Status.SUCCEEDED
    # Matching in the queue panel: by e-mail, by the e-mail's domain, by name and company.
    matched = ContactFactory(account=account, email="kim@fjord.example", last_name="Berg")
    candidates_for(account=account, contact=matched, search="Nordic")
    # The approve form's company picker: companies by name, the chosen one by id.
    crm_companies_search(account=account, text="Nordic")
    crm_company_get(account=account, company_id=1)
    # Marker look-ups of retried runs, and the membership checks of link actions.
    client.find_ticket_by_marker(person_id=5, marker="[emhub:run:x]")
    client.find_appointment_by_marker(person_id=5, marker="[emhub:run:x]")
    client.selection_has_person(selection_id=2, person_id=5)
    client.project_has_person(project_id=2, person_id=5)
    client.project_remove_person(project_id=2, person_id=5)
    # Every pick list, through the cache the pages use.
    for list_name in LIST_SOURCES:
        assert crm_list_items(account=account, list_name=list_name, refresh=True) is not None

    counters = simulator.state("counters")
    assert counters.get("archive_refusals", 0) == 0
    assert counters.get("list_refusals", 0) == 0
    asked = {_logged(entry) for entry in simulator.state("archive_log")}
    assert {_signature(q) for q in QUERIES} <= asked, {
        q.name for q in QUERIES if _signature(q) not in asked
    }
    mdo_names = {name for agent, name in LIST_SOURCES.values() if agent == "MDO"}
    assert set(simulator.state("list_log")) == mdo_names
    assert mdo_names <= catalogue().mdo_lists


def test_every_name_the_client_declares_is_documented():
    cat = catalogue()
    for query in QUERIES:
        provider = cat.providers[query.provider]
        assert set(query.entities) <= set(provider.entities), query.name
        for column in query.names:
            assert column in provider.columns, (query.name, column)
        assert provider.columns[query.order_by].order_by, query.name
        for column, operator in query.restrictions:
            assert operator in cat.operators_for(provider.columns[column].restriction), (
                query.name,
                column,
                operator,
            )


# --- what is not documented is refused, as NetServer refuses it ---------------------------


@pytest.fixture
def official(simulator):
    """zeep from SuperOffice's own WSDL (no code of the hub), signed in to the simulator."""
    if not OFFICIAL.is_dir():
        pytest.skip(f"SuperOffice's official WSDL files are not available at {OFFICIAL}")

    def service(agent):
        client = zeep.Client(str(OFFICIAL / f"WSDL-Services88-{agent}.xml"), settings=ZEEP_SETTINGS)
        return client.create_service(
            f"{{{spec.NS}}}BasicHttpBinding_{agent}", f"{simulator.base_url}{agent}.svc"
        )

    ticket = (
        service("SoPrincipal")
        .AuthenticateUsernamePassword(
            UserName=simulator.username,
            Password=simulator.password,
            _soapheaders={"ApplicationToken": simulator.app_token},
        )
        .body.Credentials.Ticket
    )
    headers = {"ApplicationToken": simulator.app_token, "Credentials": {"Ticket": ticket}}

    def call(agent, operation, **params):
        return getattr(service(agent), operation)(**params, _soapheaders=headers)

    return call


def _archive(
    official,
    provider="Person",
    columns=("personId",),
    order="personId",
    restrictions=(("email/emailAddress", "is", "x@example.com"),),
    entities=None,
):
    return official(
        "Archive",
        "GetArchiveListByColumns",
        ProviderName=provider,
        Columns={"string": list(columns)},
        SortOrder={"ArchiveOrderByInfo": [{"Name": order, "Direction": "ASC"}]},
        Restriction={
            "ArchiveRestrictionInfo": [
                {"Name": n, "Operator": o, "Values": {"string": [v]}, "IsActive": True}
                for n, o, v in restrictions
            ]
        },
        Entities={"string": list(entities)} if entities else None,
        Page=0,
        PageSize=10,
    )


@pytest.mark.parametrize(
    ("request_", "named"),
    [
        # Person has personRegisteredDate; "registered" is not a Person column.
        ({"columns": ("personId", "registered")}, "'registered'"),
        ({"order": "fullNameWithContact"}, "fullNameWithContact"),
        # A date column takes "after", "before"...; "afterTime" is for datetime columns.
        (
            {
                "provider": "ConsentPurpose",
                "columns": ("consentPerson/personId",),
                "order": "consentPerson/personId",
                "restrictions": (("consentPerson/updatedDate", "afterTime", "[D:01.12.2025]"),),
            },
            "'afterTime'",
        ),
        ({"restrictions": (("email/emailAddress", "equals", "x@example.com"),)}, "'equals'"),
        (
            {
                "provider": "ContactPersonStaticSelectionV2",
                "restrictions": (("selectionId", "equals", "1"),),
                "entities": ("person",),
            },
            "entity 'person'",
        ),
        (
            {
                "provider": "ContactPersonStaticSelectionV2",
                "restrictions": (("personEmail/emailAddress", "is", "x@example.com"),),
            },
            "takes no restriction",
        ),
        ({"provider": "PersonWithEverything"}, "'PersonWithEverything'"),
    ],
)
def test_an_undocumented_name_is_refused_with_a_fault_that_names_it(
    official, simulator, request_, named
):
    with pytest.raises(zeep.exceptions.Fault) as fault:
        _archive(official, **request_)
    assert named in fault.value.message
    assert simulator.state("counters")["archive_refusals"] == 1


def test_an_undocumented_mdo_list_is_refused_and_a_documented_one_answered(official):
    with pytest.raises(zeep.exceptions.Fault, match="Unknown MDO list 'ejscript'"):
        official(
            "MDO",
            "GetList",
            Name="ejscript",
            ForceFlatList=True,
            AdditionalInfo="",
            OnlyHistory=False,
        )
    scripts = official(
        "MDO", "GetList", Name="crmscript", ForceFlatList=True, AdditionalInfo="", OnlyHistory=False
    ).body.Response
    assert [item.Name for item in scripts.MDOListItem] == ["echo", "lead-router"]


def test_get_person_appointments_is_refused_for_a_contact_person(official):
    params = {
        "IncludeProjectAppointments": True,
        "Count": 10,
        "StartTime": timezone.now() - timedelta(days=1),
        "EndTime": timezone.now() + timedelta(days=1),
    }
    with pytest.raises(zeep.exceptions.Fault, match="not a SuperOffice user"):
        official("Appointment", "GetPersonAppointments", PersonId=5, **params)
    # A user's own diary (the user's person id) is answered.
    diary = official("Appointment", "GetPersonAppointments", PersonId=1_000_002, **params)
    assert diary.body.Response is None or diary.body.Response.Appointment == []


def test_archive_values_come_in_the_documented_encodings(official):
    reply = _archive(
        official,
        provider="ContactPersonStaticSelectionV2",
        columns=("personId", "personRegisteredDate", "personNoMail", "firstName"),
        restrictions=(("selectionId", "equals", "1"),),
        entities=("staticPerson",),
    ).body.Response.ArchiveListItem[0]
    values = {pair.Key: pair.Value.DisplayValue for pair in reply.ColumnData.ColumnDataKeyValuePair}
    assert values["personId"].startswith("[I:")
    # A date column: [D:dd.MM.yyyy], as the page's example [D:09.11.2017].
    assert values["personRegisteredDate"][:3] == "[D:" and values["personRegisteredDate"][5] == "."
    # No boolean marker is documented ([B:] is binary): a bool is sent as [I:0]/[I:1].
    assert values["personNoMail"] in {"[I:0]", "[I:1]"}
    assert not values["firstName"].startswith("[")
