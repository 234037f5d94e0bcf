"""Contract: the hub's WSDL and the simulator agree with SuperOffice's official WSDL.

Where ``../shared/superoffice-wsdl`` exists next to the repository, zeep is built
from SuperOffice's own WSDL files (strict mode, no DTDs or entities), pointed at the
simulator, and every operation the hub uses is called through the hub's client: the
requests zeep builds from the official contract must be understood by the simulator,
and the simulator's replies must parse against it.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import zeep

from crm.client import LIST_SOURCES, PARTNER_AGENT, ZEEP_SETTINGS, NetServerClient, bundled_wsdl
from crm.client.queries import QUERIES
from crm.models import SuperOfficeConnection
from crm.services import connection_settings_of
from crm.types import ASSIGN_BY_CATEGORY, NewCompany
from crm.wsdl import spec

OFFICIAL = Path(__file__).resolve().parents[2].parent / "shared" / "superoffice-wsdl"
SERVICES88 = OFFICIAL / "Services88"
PARTNER_WSDL = OFFICIAL / "PartnerSystemUserService" / "WcfPartnerSystemUserService.wsdl"

pytestmark = pytest.mark.skipif(
    not SERVICES88.is_dir(),
    reason=f"SuperOffice's official WSDL files are not available at {OFFICIAL}",
)


def official_wsdl(agent: str) -> str:
    if agent == PARTNER_AGENT:
        return str(PARTNER_WSDL)
    return str(SERVICES88 / f"WSDL-Services88-{agent}.xml")


@pytest.fixture(scope="module")
def official_clients():
    return {
        agent: zeep.Client(official_wsdl(agent), settings=ZEEP_SETTINGS) for agent in spec.AGENTS
    }


def _official_fields(client: zeep.Client, type_name: str) -> list[str]:
    xsd_type = client.get_type(f"{{{spec.NS}}}{type_name}")
    return [name for name, _ in xsd_type.elements]


@pytest.mark.parametrize("agent", sorted(spec.AGENTS))
def test_hub_operations_exist_with_the_official_action_and_element_order(official_clients, agent):
    official = official_clients[agent]
    binding = official.wsdl.bindings[f"{{{spec.NS}}}BasicHttpBinding_{agent}"]
    for operation, (request, response) in spec.operations_of(agent).items():
        official_op = binding.get(operation)
        assert official_op.soapaction == spec.soap_action(agent, operation)
        body = official_op.input.body
        official_request = [name for name, _ in body.type.elements]
        assert [n for n, _ in request] == official_request, (agent, operation)
        official_response = [name for name, _ in official_op.output.body.type.elements]
        assert [n for n, _ in response] == official_response, (agent, operation)


def test_the_newer_only_operations_are_not_in_the_official_10_0_2_wsdl(official_clients):
    for agent, operation in spec.NEWER_OPERATIONS:
        binding = official_clients[agent].wsdl.bindings[f"{{{spec.NS}}}BasicHttpBinding_{agent}"]
        with pytest.raises(ValueError, match="No such operation"):
            binding.get(operation)


def _is_subsequence(short: list[str], long: list[str]) -> bool:
    remaining = iter(long)
    return all(name in remaining for name in short)


def test_every_hub_type_is_an_ordered_subset_of_the_official_type(official_clients):
    checked = set()
    for agent, client in official_clients.items():
        for type_name, fields in spec.TYPES.items():
            try:
                official = _official_fields(client, type_name)
            except (zeep.exceptions.LookupError, KeyError):
                continue
            assert _is_subsequence([n for n, _ in fields], official), (agent, type_name, official)
            checked.add(type_name)
    assert checked == set(spec.TYPES), set(spec.TYPES) - checked


def test_partner_service_matches_the_official_wsdl():
    ours = zeep.Client(bundled_wsdl(PARTNER_AGENT), settings=ZEEP_SETTINGS)
    official = zeep.Client(official_wsdl(PARTNER_AGENT), settings=ZEEP_SETTINGS)
    for client in (ours, official):
        op = client.wsdl.bindings[
            f"{{{spec.PARTNER_NS}}}BasicHttpBinding_IPartnerSystemUserService"
        ].get("Authenticate")
        assert [n for n, _ in op.input.body.type.elements] == [
            "SignedSystemToken",
            "ReturnTokenType",
        ]
        assert [n for n, _ in op.output.body.type.elements] == [
            "IsSuccessful",
            "Token",
            "ErrorMessage",
        ]
        assert op.soapaction.endswith("/IPartnerSystemUserService/Authenticate")


def _official_client(account, simulator, *, parse_archive_directly=False) -> NetServerClient:
    # Archive replies go through zeep's strict parsing against the official WSDL here;
    # the test below shows the client's direct reading of them gives the same rows.
    connection = SuperOfficeConnection.objects.get(account=account)
    return NetServerClient(
        connection=connection_settings_of(connection),
        timeout=10,
        wsdl_locator=official_wsdl,
        parse_archive_directly=parse_archive_directly,
    )


@pytest.mark.django_db
def test_archive_replies_read_directly_equal_zeeps_strict_reading(crm_account, simulator):
    strict = _official_client(crm_account, simulator)
    direct = _official_client(crm_account, simulator, parse_archive_directly=True)
    for crm in (strict, direct):
        crm.set_no_mailing(person_id=2, no_mailing=True)
    calls = [
        lambda c: c.selection_members(selection_id=1, page=1, page_size=7),
        lambda c: c.project_members(project_id=2, page_size=50),
        lambda c: c.find_persons_by_email(email="duplicate@example.com"),
        lambda c: c.selection_member_count(selection_id=2),
        lambda c: c.project_has_person(project_id=1, person_id=2),
    ]
    for call in calls:
        assert call(direct) == call(strict)
    members = direct.selection_members(selection_id=1, page_size=50).members
    assert any(m.has_emarketing_consent for m in members)
    assert all(m.registered_at is not None and m.company_name for m in members)


@pytest.mark.django_db
def test_every_operation_round_trips_through_the_official_wsdl_in_strict_mode(
    crm_account, simulator
):
    crm = _official_client(crm_account, simulator)
    assert crm.whoami().associate_id == 1
    assert crm.get_person(person_id=5).id == 5
    briefs = crm.get_persons(person_ids=[5, 8])
    assert briefs[8].company_id == crm.get_person(person_id=8).company_id
    assert crm.find_persons_by_email(email="duplicate@example.com")
    person = crm.create_person(
        first_name="Kim",
        last_name="Berg",
        email="kim@example.com",
        phone="1",
        mobile="2",
        title="CFO",
        company_id=2,
    )
    company_person = crm.create_person(
        first_name="Liv",
        last_name="Dahl",
        email="liv@example.com",
        new_company=NewCompany(name="Birch AS", country_id=46, category_id=1, business_id=2),
    )
    assert company_person.company_name == "Birch AS"
    sale_id = crm.create_sale(
        heading="H",
        text="t [emhub:run:c1]",
        person_id=person.id,
        owner_id=2,
        company_id=2,
        source_id=1,
        rating_id=1,
    )
    assert crm.find_sale_by_marker(person_id=person.id, marker="[emhub:run:c1]") == sale_id
    start = datetime.now(UTC)
    appointment_id = crm.create_appointment(
        person_id=person.id,
        owner_id=2,
        task_id=1,
        description="d [emhub:run:c2]",
        start=start,
        end=start + timedelta(hours=1),
        completed=True,
        project_id=1,
    )
    assert crm.find_appointment_by_marker(person_id=person.id, marker="[emhub:run:c2]") == (
        appointment_id
    )
    crm.selection_add_person(selection_id=3, person_id=person.id)
    assert crm.selection_has_person(selection_id=3, person_id=person.id)
    assert crm.selection_members(selection_id=3, page_size=5).members
    crm.selection_remove_person(selection_id=3, person_id=person.id)
    crm.project_add_person(project_id=2, person_id=person.id)
    assert crm.project_has_person(project_id=2, person_id=person.id)
    assert crm.project_members(project_id=2, page_size=5).members
    assert crm.project_remove_person(project_id=2, person_id=person.id)
    assert {
        i.id for i in crm.set_person_interests(person_id=person.id, add_ids=[2]) if i.selected
    } == {2}
    crm.set_consent(person_id=person.id, purpose_key="STORE", legal_base_key="61B")
    crm.withdraw_consent(person_id=person.id, purpose_key="STORE")
    assert crm.consents(person_id=person.id)[0].is_withdrawn
    assert person.id in crm.consents_changed_since(since=start - timedelta(minutes=1))
    crm.set_no_mailing(person_id=person.id, no_mailing=True)
    assert crm.get_no_mailing(person_id=person.id)
    crm.set_person_custom_field(person_id=person.id, field="x_a", value="b")
    assert crm.get_person(person_id=person.id).custom_fields == {"x_a": "b"}
    assert crm.create_ticket(title="T", category_id=1, owner_id=ASSIGN_BY_CATEGORY).owner_id == 2
    ticket = crm.create_ticket(title="Call back [emhub:run:c3]", person_id=person.id)
    assert crm.find_ticket_by_marker(person_id=person.id, marker="[emhub:run:c3]") == ticket.id
    assert crm.find_ticket_by_marker(person_id=person.id, marker="[emhub:run:none]") is None
    assert crm.execute_script(script_id=1, parameters={"k": "v"}) == "echo:k=v"
    assert crm.verify_panel_user(usec="usec-mia-0004").associate_id == 4
    for list_name in (
        "sources",
        "ratings",
        "activity_types",
        "interests",
        "selections",
        "projects",
        "associates",
        "user_groups",
        "countries",
        "categories",
        "businesses",
        "ticket_priorities",
        "ticket_categories",
        "legal_bases",
        "consent_purposes",
        "scripts",
        "person_fields",
    ):
        assert crm.list_items(list_name=list_name), list_name
    fields = {f.key: f.type for f in crm.list_items(list_name="person_fields")}
    assert fields["SuperOffice:2"] == "Integer"


@pytest.mark.django_db
def test_online_ticket_exchange_through_the_official_partner_wsdl(crm_online_account, simulator):
    crm = _official_client(crm_online_account, simulator)
    assert crm.get_person(person_id=4).id == 4


# --- every kind of entity, read and saved back by a strict client of the official WSDL ----

STRICT = zeep.Settings(
    strict=True, xml_huge_tree=False, forbid_dtd=True, forbid_entities=True, forbid_external=True
)


class _StrictOfficial:
    """zeep in strict mode from SuperOffice's own WSDL, pointed at the simulator."""

    def __init__(self, simulator):
        self.base = simulator.base_url
        self.clients: dict[str, zeep.Client] = {}
        signed_in = self.service("SoPrincipal").AuthenticateUsernamePassword(
            UserName=simulator.username,
            Password=simulator.password,
            _soapheaders={"ApplicationToken": simulator.app_token},
        )
        self.headers = {
            "ApplicationToken": simulator.app_token,
            "Credentials": {"Ticket": signed_in.body.Credentials.Ticket},
        }

    def service(self, agent: str):
        client = self.clients.get(agent)
        if client is None:
            client = self.clients[agent] = zeep.Client(official_wsdl(agent), settings=STRICT)
        return client.create_service(
            f"{{{spec.NS}}}BasicHttpBinding_{agent}", f"{self.base}{agent}.svc"
        )

    def call(self, agent: str, operation: str, **params):
        result = getattr(self.service(agent), operation)(**params, _soapheaders=self.headers)
        return result.body.Response


def _without(row: dict, *names: str) -> dict:
    return {k: v for k, v in row.items() if k not in names}


@pytest.mark.django_db
def test_a_strict_official_client_reads_every_kind_of_entity_and_saves_it_back_unchanged(
    crm_account, simulator
):
    official = _StrictOfficial(simulator)
    hub = _official_client(crm_account, simulator)
    start = datetime(2025, 5, 2, 9, tzinfo=UTC)
    made = {
        "sales": hub.create_sale(heading="H", text="t", person_id=6, owner_id=2, source_id=1),
        "appointments": hub.create_appointment(
            person_id=6,
            owner_id=2,
            task_id=1,
            description="d",
            start=start,
            end=start + timedelta(hours=1),
            project_id=1,
        ),
        "tickets": hub.create_ticket(title="T", person_id=6, category_id=1, priority_id=2).id,
    }
    for person_id in (2, 5, 14):  # plain, sharing an e-mail, with every detail a person has
        before = simulator.state(f"persons/{person_id}")
        entity = official.call("Person", "GetPersonEntity", PersonEntityId=person_id)
        assert entity.PersonId == person_id and entity.Address.Street.City == "Oslo"
        official.call("Person", "SavePersonEntity", PersonEntity=entity)
        assert _without(simulator.state(f"persons/{person_id}"), "Updated") == _without(
            before, "Updated"
        )
    for company_id in (1, 3):
        before = simulator.state(f"companies/{company_id}")
        entity = official.call("Contact", "GetContactEntity", ContactEntityId=company_id)
        official.call("Contact", "SaveContactEntity", ContactEntity=entity)
        assert simulator.state(f"companies/{company_id}") == before
    for what, agent, name in (
        ("sales", "Sale", "Sale"),
        ("appointments", "Appointment", "Appointment"),
        ("tickets", "Ticket", "Ticket"),
    ):
        [before] = simulator.state(what)
        entity = official.call(agent, f"Get{name}Entity", **{f"{name}EntityId": made[what]})
        official.call(agent, f"Save{name}Entity", **{f"{name}Entity": entity})
        assert simulator.state(what) == [before], what


@pytest.mark.django_db
def test_default_answers_carry_only_elements_of_the_official_wsdl(crm_account, simulator):
    official = _StrictOfficial(simulator)
    # Only the mode a test turns on answers as a newer NetServer, with elements the
    # official WSDL does not name; a strict client of the official WSDL refuses those.
    simulator.control(newer_version=True)
    try:
        with pytest.raises(zeep.exceptions.XMLParseError):
            official.call("Person", "GetPersonEntity", PersonEntityId=3)
    finally:
        simulator.control(newer_version=False)
    assert official.call("Person", "GetPersonEntity", PersonEntityId=3).PersonId == 3


@pytest.mark.django_db
def test_a_strict_official_client_parses_every_other_reply_the_hub_reads(crm_account, simulator):
    official = _StrictOfficial(simulator)
    hub = _official_client(crm_account, simulator)
    hub.create_sale(heading="H", text="t", person_id=5, owner_id=2)
    hub.set_consent(person_id=5, purpose_key="STORE", legal_base_key="61B")
    assert official.call("Person", "GetConsentInfos", PersonId=5).ConsentInfo
    persons = official.call("Person", "GetPersonList", PersonIds={"int": [5, 8]}).Person
    assert [(p.PersonId, bool(p.ContactId)) for p in persons] == [(5, True), (8, True)]
    assert official.call("Sale", "GetSalesFromPerson", PersonId=5, OnlyOpenSales=False).Sale
    assert official.call("List", "GetLegalBases").LegalBase
    assert official.call("List", "GetConsentPurposes").ConsentPurpose
    fields = official.call(
        "UserDefinedFieldInfo", "GetCustomFieldInfoList", TableName="person", IncludeStandard=False
    )
    assert fields.FieldInfoBase
    for agent, name in LIST_SOURCES.values():
        if agent == "MDO":
            items = official.call(
                "MDO",
                "GetList",
                Name=name,
                ForceFlatList=True,
                AdditionalInfo="",
                OnlyHistory=False,
            )
            assert items.MDOListItem, name
    assert official.call("CRMScript", "ExecuteScript", CRMScriptId=1, Parameters=None) == "echo:"
    for query in QUERIES:
        values = {
            "selectionId": "1",
            "projectId": "1",
            "personId": "5",
            "title": "x",
            "email/emailAddress": "duplicate@example.com",
            "fullName": "a",
            "personContact/name": "Nordic",
            "name": "Nordic",
            "contactId": "1",
            "consentPerson/updatedDate": "[D:01.01.2024]",
        }
        official.call(
            "Archive",
            "GetArchiveListByColumns",
            ProviderName=query.provider,
            Columns={"string": list(query.columns)},
            SortOrder={"ArchiveOrderByInfo": [{"Name": query.order_by, "Direction": "ASC"}]},
            Restriction={
                "ArchiveRestrictionInfo": [
                    {"Name": c, "Operator": o, "Values": {"string": [values[c]]}, "IsActive": True}
                    for c, o in query.restrictions
                ]
            },
            Entities={"string": list(query.entities)} if query.entities else None,
            Page=0,
            PageSize=5,
        )
    assert simulator.state("counters").get("archive_refusals", 0) == 0


@pytest.mark.django_db
def test_the_webhook_operations_round_trip_through_the_official_wsdl(crm_account, simulator):
    from .webhook_target import Target

    target = Target()
    try:
        crm = _official_client(crm_account, simulator)
        events = ["person.consented", "person.unconsented", "person.changed"]
        hook = crm.save_webhook(name="hub", events=events, target_url=target.url, secret="s")
        assert crm.find_webhooks(name="hub") == [hook]
        assert crm.get_webhook(webhook_id=hook.id).events == tuple(events)
        again = crm.save_webhook(
            webhook_id=hook.id, name="hub", events=events, target_url=target.url, secret="s"
        )
        assert again.id == hook.id and again.is_active
        assert crm.webhook_last_error(webhook_id=hook.id) == ""
        official = _StrictOfficial(simulator)
        assert official.call("Webhook", "GetWebhook", WebhookId=hook.id).State == "Active"
        assert official.call(
            "Webhook", "GetAllWebhooks", NameFilter="hub", EventFilter=None, StatusFilter="Unknown"
        ).Webhook
        crm.delete_webhook(webhook_id=hook.id)
        assert crm.get_webhook(webhook_id=hook.id) is None
    finally:
        target.server.shutdown()
        target.server.server_close()
