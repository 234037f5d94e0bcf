"""Each client operation, through zeep over HTTP against the NetServer simulator."""

from datetime import UTC, datetime, timedelta

import pytest

from crm.errors import NotFoundCrmError, PermanentCrmError, TransientCrmError
from crm.services import client_for_account
from crm.types import ASSIGN_BY_CATEGORY, UNASSIGNED, NewCompany

pytestmark = pytest.mark.django_db


@pytest.fixture
def crm(crm_account):
    return client_for_account(crm_account, correlation="test")


def test_whoami_names_the_signed_in_user(crm):
    principal = crm.whoami()
    assert principal.associate_id == 1
    assert principal.full_name == "Ada Admin"
    assert principal.group_ids == (4, 1, 2)


def test_get_person_returns_plain_data(crm, simulator):
    person = crm.get_person(person_id=5)
    seeded = simulator.state("persons/5")
    assert person.id == 5
    assert person.first_name == seeded["Firstname"]
    assert person.email == seeded["Emails"][0]
    assert person.company_id == seeded["ContactId"]
    assert person.created_at is not None


def test_get_person_of_unknown_id_is_not_found(crm):
    with pytest.raises(NotFoundCrmError):
        crm.get_person(person_id=999_999)


def test_persons_are_read_many_in_one_call_with_their_companies(crm, simulator):
    briefs = crm.get_persons(person_ids=[8, 5, 5, 999_999, 2])
    assert simulator.state("counters")["operations"]["Person.GetPersonList"] == 1
    assert sorted(briefs) == [2, 5, 8]  # the unknown id is not answered
    for person_id, brief in briefs.items():
        seeded = simulator.state(f"persons/{person_id}")
        full = crm.get_person(person_id=person_id)
        assert brief.id == person_id
        assert brief.company_id == seeded["ContactId"] == full.company_id
        assert (brief.first_name, brief.last_name) == (full.first_name, full.last_name)
        assert brief.email == full.email and brief.company_name == full.company_name
    assert crm.get_persons(person_ids=[]) == {}
    assert crm.get_persons(person_ids=[999_999]) == {}


def test_persons_by_email_come_oldest_first_including_duplicates(crm):
    matches = crm.find_persons_by_email(email="DUPLICATE@example.com")
    assert len(matches) >= 2
    registered = [m.registered_at for m in matches]
    assert registered == sorted(registered)
    assert all(m.email == "duplicate@example.com" for m in matches)
    assert crm.find_persons_by_email(email="nobody@example.com") == []


def test_create_person_under_an_existing_company(crm, simulator):
    person = crm.create_person(
        first_name="Nora",
        last_name="Lind",
        email="nora@example.com",
        phone="+47 1",
        mobile="+47 2",
        title="CTO",
        company_id=3,
    )
    stored = simulator.state(f"persons/{person.id}")
    assert stored["ContactId"] == 3
    assert stored["Emails"] == ["nora@example.com"]
    assert (person.title, person.phone, person.mobile) == ("CTO", "+47 1", "+47 2")


def test_create_person_under_a_new_company(crm, simulator):
    person = crm.create_person(
        first_name="Ola",
        last_name="Nordmann",
        email="ola@example.com",
        new_company=NewCompany(name="Fjord AS", country_id=47, category_id=2, business_id=1),
    )
    company = simulator.state(f"companies/{person.company_id}")
    assert company["Name"] == "Fjord AS"
    assert (company["CountryId"], company["CategoryId"], company["BusinessId"]) == (47, 2, 1)


def test_create_person_needs_exactly_one_company_choice(crm):
    with pytest.raises(PermanentCrmError):
        crm.create_person(first_name="A", last_name="B", email="a@b.c")


def test_create_sale_and_find_it_by_its_marker(crm, simulator):
    marker = "[emhub:run:8f3a]"
    sale_id = crm.create_sale(
        heading="Webinar lead",
        text=f"Clicked the offer {marker}",
        person_id=5,
        owner_id=2,
        source_id=1,
        rating_id=2,
    )
    [sale] = simulator.state("sales")
    assert sale["SaleId"] == sale_id
    assert (sale["PersonId"], sale["AssociateId"], sale["SourceId"], sale["RatingId"]) == (
        5,
        2,
        1,
        2,
    )
    assert crm.find_sale_by_marker(person_id=5, marker=marker) == sale_id
    assert crm.find_sale_by_marker(person_id=5, marker="[emhub:run:other]") is None
    assert crm.find_sale_by_marker(person_id=6, marker=marker) is None


def test_create_appointment_and_find_it_by_its_marker(crm, simulator):
    start = datetime(2025, 3, 1, 10, tzinfo=UTC)
    appointment_id = crm.create_appointment(
        person_id=5,
        owner_id=3,
        task_id=1,
        description="Call back [emhub:run:77]",
        start=start,
        end=start + timedelta(minutes=30),
        completed=True,
        project_id=2,
    )
    [stored] = simulator.state("appointments")
    assert stored["AppointmentId"] == appointment_id
    assert (stored["Completed"], stored["ProjectId"], stored["TaskId"]) == ("Completed", 2, 1)
    assert crm.find_appointment_by_marker(person_id=5, marker="[emhub:run:77]") == appointment_id
    assert crm.find_appointment_by_marker(person_id=5, marker="[emhub:run:78]") is None


def test_appointment_not_started_without_project(crm, simulator):
    start = datetime(2025, 3, 1, 10, tzinfo=UTC)
    crm.create_appointment(
        person_id=5,
        owner_id=3,
        task_id=2,
        description="Meet",
        start=start,
        end=start + timedelta(hours=1),
    )
    [stored] = simulator.state("appointments")
    assert (stored["Completed"], stored["ProjectId"]) == ("NotStarted", 0)


def test_selection_membership_add_check_remove(crm, simulator):
    members_before = simulator.state("selections/2")["members"]
    person_id = next(p for p in range(1, 300) if p not in members_before)
    assert not crm.selection_has_person(selection_id=2, person_id=person_id)
    crm.selection_add_person(selection_id=2, person_id=person_id)
    assert crm.selection_has_person(selection_id=2, person_id=person_id)
    assert person_id in simulator.state("selections/2")["members"]
    crm.selection_remove_person(selection_id=2, person_id=person_id)
    assert not crm.selection_has_person(selection_id=2, person_id=person_id)


def test_selection_members_are_paged(crm, simulator):
    expected = simulator.state("selections/1")["members"]
    seen, page = [], 0
    while True:
        result = crm.selection_members(selection_id=1, page=page, page_size=7)
        seen += [m.person_id for m in result.members]
        if not result.has_more:
            break
        page += 1
    assert seen == expected
    assert all(m.email for m in crm.selection_members(selection_id=1, page_size=3).members)


def test_selection_of_unknown_id_is_not_found(crm):
    with pytest.raises(NotFoundCrmError):
        crm.selection_add_person(selection_id=999, person_id=1)


def test_project_membership_add_check_list_remove(crm, simulator):
    before = simulator.state("projects/3")["members"]
    person_id = next(p for p in range(1, 300) if p not in before)
    crm.project_add_person(project_id=3, person_id=person_id)
    assert crm.project_has_person(project_id=3, person_id=person_id)
    seen, page = [], 0
    while True:
        result = crm.project_members(project_id=3, page=page, page_size=5)
        seen += [m.person_id for m in result.members]
        assert all(m.member_id for m in result.members)
        if not result.has_more:
            break
        page += 1
    assert sorted(seen) == sorted([*before, person_id])
    assert crm.project_remove_person(project_id=3, person_id=person_id) is True
    assert not crm.project_has_person(project_id=3, person_id=person_id)
    assert crm.project_remove_person(project_id=3, person_id=person_id) is False


def test_interests_set_unset_and_read(crm, simulator):
    interests = crm.set_person_interests(person_id=9, add_ids=[1, 2], remove_ids=[3, 4])
    assert {i.id for i in interests if i.selected} == {1, 2}
    assert simulator.state("persons/9")["Interests"] == [1, 2]
    crm.set_person_interests(person_id=9, remove_ids=[1])
    assert {i.id for i in crm.person_interests(person_id=9) if i.selected} == {2}


def test_unknown_interest_is_not_found(crm):
    with pytest.raises(NotFoundCrmError):
        crm.set_person_interests(person_id=9, add_ids=[99])


def test_consents_set_read_withdraw_with_updated_times(crm):
    crm.set_consent(
        person_id=11,
        purpose_key="EMARKETING",
        legal_base_key="61A",
        source_key="WEBFORM",
        comment="form 7",
    )
    [consent] = [c for c in crm.consents(person_id=11) if c.purpose_key == "EMARKETING"]
    assert (consent.legal_base_key, consent.source_key, consent.comment) == (
        "61A",
        "WEBFORM",
        "form 7",
    )
    assert consent.updated_at is not None and consent.registered_at is not None
    first_update = consent.updated_at
    crm.withdraw_consent(person_id=11, purpose_key="EMARKETING")
    [withdrawn] = [c for c in crm.consents(person_id=11) if c.purpose_key == "EMARKETING"]
    assert withdrawn.is_withdrawn
    assert withdrawn.updated_at >= first_update


def test_consent_with_unknown_legal_base_is_refused(crm):
    with pytest.raises(PermanentCrmError):
        crm.set_consent(person_id=11, purpose_key="EMARKETING", legal_base_key="NOPE")


def test_no_mailing_flag_read_and_set(crm):
    assert crm.get_no_mailing(person_id=12) is False
    crm.set_no_mailing(person_id=12, no_mailing=True)
    assert crm.get_no_mailing(person_id=12) is True
    crm.set_no_mailing(person_id=12, no_mailing=False)
    assert crm.get_no_mailing(person_id=12) is False


def test_custom_field_is_set_and_others_kept(crm):
    crm.set_person_custom_field(person_id=13, field="x_score", value="[I:3]")
    crm.set_person_custom_field(person_id=13, field="SuperOffice:2", value="hello")
    crm.set_person_custom_field(person_id=13, field="x_score", value="[I:4]")
    assert crm.get_person(person_id=13).custom_fields == {
        "x_score": "[I:4]",
        "SuperOffice:2": "hello",
    }


def test_create_ticket_unassigned_owned_or_by_category(crm, simulator):
    unassigned = crm.create_ticket(title="Question", priority_id=2, category_id=3, person_id=5)
    assert unassigned.owner_id == UNASSIGNED
    owned = crm.create_ticket(title="Call me", owner_id=4)
    assert owned.owner_id == 4
    by_rule = crm.create_ticket(title="Support", category_id=2, owner_id=ASSIGN_BY_CATEGORY)
    assert by_rule.owner_id == 5  # the Support category's default owner
    tickets = simulator.state("tickets")
    assert [t["OwnerId"] for t in tickets] == [0, 4, 5]
    assert tickets[0]["PriorityId"] == 2


def test_execute_script_returns_its_output(crm):
    assert crm.execute_script(script_id=1, parameters={"b": "2", "a": "x y"}) == "echo:a=x y;b=2"


def test_execute_unknown_script_is_not_found(crm):
    with pytest.raises(NotFoundCrmError):
        crm.execute_script(script_id=77, parameters={})


def test_verify_panel_user_from_usec(crm):
    user = crm.verify_panel_user(usec="usec-sam-0002")
    assert (user.associate_id, user.full_name, user.group_ids) == (2, "Sam Seller", (1,))
    assert crm.verify_panel_user(usec="forged") is None
    assert crm.verify_panel_user(usec="") is None


@pytest.mark.parametrize(
    ("list_name", "expected"),
    [
        ("sources", "Web form"),
        ("ratings", "Hot"),
        ("activity_types", "Phone call"),
        ("interests", "Newsletter"),
        ("selections", "Newsletter Q1"),
        ("projects", "Spring campaign"),
        ("associates", "Ada Admin"),
        ("user_groups", "Sales"),
        ("countries", "Norway"),
        ("categories", "Customer"),
        ("businesses", "IT"),
        ("ticket_priorities", "High"),
        ("ticket_categories", "Support"),
        ("legal_bases", "Consent"),
        ("consent_purposes", "E-marketing"),
    ],
)
def test_pick_lists(crm, list_name, expected):
    items = crm.list_items(list_name=list_name)
    assert expected in [i.name for i in items]
    assert all(isinstance(i.id, int) for i in items)


def test_legal_bases_and_purposes_carry_keys(crm):
    assert {i.key for i in crm.list_items(list_name="consent_purposes")} == {"STORE", "EMARKETING"}
    assert "WITHDRAWN" in {i.key for i in crm.list_items(list_name="legal_bases")}


def test_whoami_is_remembered_unless_asked_fresh(crm, simulator):
    crm.whoami(fresh=True)
    before = simulator.state("counters")["authentications"]
    assert crm.whoami().associate_id == 1
    assert simulator.state("counters")["authentications"] == before
    crm.whoami(fresh=True)
    assert simulator.state("counters")["authentications"] == before + 1


def test_person_carries_its_company_owner(crm, simulator):
    person = crm.get_person(person_id=5)
    company = simulator.state(f"companies/{person.company_id}")
    assert person.company_owner_id == company["AssociateId"]


def test_consents_changed_since_lists_only_recent_changes(crm):
    since = datetime.now(UTC) - timedelta(seconds=1)
    assert crm.consents_changed_since(since=since) == []
    crm.set_consent(person_id=21, purpose_key="STORE", legal_base_key="61B")
    crm.withdraw_consent(person_id=33, purpose_key="EMARKETING")
    changed = crm.consents_changed_since(since=since)
    assert 21 in changed
    seeded_all = crm.consents_changed_since(since=datetime(2000, 1, 1, tzinfo=UTC))
    assert len(seeded_all) > 100  # pages of 500 are walked through


# --- saving a person sends back all of it --------------------------------------------------


def _kept(person: dict) -> dict:
    """What a save by the hub must leave as it was: all but the fields it set and the
    time of the change."""
    return {
        k: v
        for k, v in person.items()
        if k not in {"NoMailing", "CustomFields", "Interests", "Updated"}
    }


def test_saving_a_person_sends_back_every_element_it_read(crm, simulator):
    before = simulator.state("persons/14")
    # Elements the hub never looks at: a save that left them out would blank them.
    assert before["More"]["Position"] and before["More"]["Address"]
    # The default data holds only what the official WSDL names.
    assert "AddedInALaterVersion" not in before["More"]

    crm.set_no_mailing(person_id=14, no_mailing=True)
    crm.set_person_custom_field(person_id=14, field="x_score", value="[I:3]")
    crm.set_person_interests(person_id=14, add_ids=[2])

    after = simulator.state("persons/14")
    assert (after["NoMailing"], after["CustomFields"], after["Interests"]) == (
        True,
        {"x_score": "[I:3]"},
        [2],
    )
    assert _kept(after) == _kept(before)


def test_a_newer_netserver_keeps_its_unnamed_element_through_a_save(crm, simulator):
    simulator.control(newer_version=True)
    try:
        crm.set_person_custom_field(person_id=15, field="x_score", value="[I:5]")
        after = simulator.state("persons/15")
    finally:
        simulator.control(newer_version=False)
    # The element the hub's WSDL does not name came with the person and went back with it.
    assert after["More"]["AddedInALaterVersion"] == "kept-15"
    assert after["CustomFields"] == {"x_score": "[I:5]"}


def test_a_newer_netserver_answering_with_unnamed_elements_is_understood(crm, simulator):
    simulator.control(newer_version=True)
    try:
        person = crm.get_person(person_id=5)
        sale_id = crm.create_sale(
            heading="Upgrade",
            text="from a newer tenant",
            person_id=5,
            owner_id=1,
            company_id=person.company_id,
        )
        ticket = crm.create_ticket(title="Question", person_id=5)
    finally:
        simulator.control(newer_version=False)

    assert person.first_name == simulator.state("persons/5")["Firstname"]
    assert sale_id in {s["SaleId"] for s in simulator.state("sales")}
    assert ticket.id in {t["TicketId"] for t in simulator.state("tickets")}


def test_a_reply_cut_short_is_a_transient_error_not_half_read(crm, simulator):
    simulator.control(mode="truncated")
    try:
        with pytest.raises(TransientCrmError):
            crm.get_person(person_id=5)
    finally:
        simulator.control(mode="normal")


def _operation_count(simulator, name: str) -> int:
    return simulator.state("counters")["operations"].get(name, 0)


def test_interests_are_set_with_a_whole_person_save_where_the_wsdl_has_no_update_interests(
    crm, simulator
):
    crm.set_person_interests(person_id=16, add_ids=[3])
    assert _operation_count(simulator, "Person.SavePersonEntity") == 1
    assert _operation_count(simulator, "Person.UpdateInterests") == 0
    assert 3 in simulator.state("persons/16")["Interests"]


def test_interests_go_through_update_interests_where_the_tenants_wsdl_offers_it(
    crm_account, simulator
):
    from crm.client import clear_caches
    from crm.models import SuperOfficeConnection

    SuperOfficeConnection.objects.filter(account=crm_account).update(use_tenant_wsdl=True)
    # The tenant's WSDL read while it was an older NetServer: forgotten with the caches.
    assert not client_for_account(crm_account)._offers("Person", "UpdateInterests")
    simulator.control(newer_version=True)  # a NetServer 11.13 or later
    clear_caches()
    try:
        before = set(simulator.state("persons/17")["Interests"])
        add = next(i for i in (1, 2, 3, 4) if i not in before)
        remove = next(iter(before)) if before else None
        interests = client_for_account(crm_account).set_person_interests(
            person_id=17, add_ids=[add], remove_ids=[remove] if remove else []
        )
        after = set(simulator.state("persons/17")["Interests"])
    finally:
        simulator.control(newer_version=False)
        clear_caches()
    assert _operation_count(simulator, "Person.UpdateInterests") == 1
    assert _operation_count(simulator, "Person.SavePersonEntity") == 0
    assert after == (before | {add}) - {remove}
    assert {i.id for i in interests if i.selected} == after


def test_update_interests_is_unknown_to_a_netserver_older_than_11_13(crm, simulator):
    import requests

    envelope = (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        '<UpdateInterests xmlns="http://www.superoffice.net/ws/crm/NetServer/Services88">'
        "<PersonId>5</PersonId></UpdateInterests></s:Body></s:Envelope>"
    )
    response = requests.post(f"{simulator.base_url}Person.svc", data=envelope, timeout=5)
    assert response.status_code == 500 and "ActionNotSupported" in response.text
    wsdl = requests.get(f"{simulator.base_url}Person.svc?wsdl", timeout=5).text
    assert "UpdateInterests" not in wsdl.split("<wsdl:portType")[1]


def test_search_companies_finds_companies_by_part_of_their_name_sorted_by_name(crm, simulator):
    name = simulator.state("companies/2")["Name"]
    word = name.split()[1]

    found = crm.search_companies(text=word.lower(), limit=100)

    assert 2 in [c.id for c in found]
    assert all(word.lower() in c.name.lower() for c in found)
    assert [c.name for c in found] == sorted(c.name for c in found)
    assert len(crm.search_companies(text=word, limit=1)) == 1


def test_get_company_reads_it_by_id_and_an_unknown_one_is_not_found(crm, simulator):
    company = crm.get_company(company_id=3)

    assert (company.id, company.name) == (3, simulator.state("companies/3")["Name"])
    with pytest.raises(NotFoundCrmError, match="no company 999999"):
        crm.get_company(company_id=999_999)
