"""The approve form's company picker: a rep finds a SuperOffice company by part of its name
(the hub asks SuperOffice, here the simulator over HTTP), picks it by name, and the form
sends its id; an id SuperOffice does not have is a form error, never a person created."""

import re

import pytest
from django.urls import reverse

from campaigns.models import EventType

from .factories import ContactFactory, EventFactory, PanelSettingsFactory, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def panel(crm_account, simulator):
    return PanelSettingsFactory(account=crm_account, context_identifier="Cust12345")


@pytest.fixture
def lead(panel):
    contact = ContactFactory(account=panel.account, email="solo@example.net", last_name="Solo")
    EventFactory(account=panel.account, contact=contact, type=EventType.LINK_CLICKED)
    return contact


def _get(client, panel, name, params=None, **kwargs):
    url = reverse(name, kwargs={"panel_key": panel.panel_key, **kwargs})
    return client.get(url, params or {}, HTTP_X_PANEL_TOKEN=token_for(panel))


def _approve(client, panel, lead, data):
    url = reverse(
        "leads:lead_approve", kwargs={"panel_key": panel.panel_key, "contact_id": lead.id}
    )
    # As htmx sends it from the card (without JavaScript the form posts and is redirected).
    return client.post(url, data, HTTP_X_PANEL_TOKEN=token_for(panel), HTTP_HX_REQUEST="true")


def _offered(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-company="(\d+)"', html)]


def _company(simulator, company_id: int) -> dict:
    return simulator.state(f"companies/{company_id}")


def test_typing_part_of_a_name_offers_the_superoffice_companies_that_hold_it(
    client, panel, simulator
):
    name = _company(simulator, 2)["Name"]  # e.g. "Nordic Software 2"
    word = name.split()[1]

    html = _get(client, panel, "leads:company_search", {"company_search": word.lower()}).content
    html = html.decode()

    offered = _offered(html)
    assert 2 in offered
    names = [_company(simulator, i)["Name"] for i in offered]
    assert all(word.lower() in n.lower() for n in names)
    assert names == sorted(names)  # by name, as SuperOffice sorts them
    assert name in html
    # The hub asked SuperOffice's company archive, restricted by name.
    [asked] = [q for q in simulator.state("archive_log") if q["provider"] == "Contact"]
    assert asked["restrictions"] == [["name", "contains"]]


def test_one_letter_asks_nothing_and_says_to_type_more(client, panel, simulator):
    html = _get(client, panel, "leads:company_search", {"company_search": "n"}).content.decode()

    assert "at least two letters" in html and _offered(html) == []
    assert not [q for q in simulator.state("archive_log") if q["provider"] == "Contact"]


def test_a_name_no_company_holds_says_so(client, panel):
    html = _get(client, panel, "leads:company_search", {"company_search": "zzqx"}).content
    assert "SuperOffice has no company whose name holds “zzqx”" in html.decode()


def test_picking_a_company_shows_its_name_and_puts_its_id_in_the_form(client, panel, simulator):
    html = _get(client, panel, "leads:company_pick", {"company_id": "3"}).content.decode()

    assert re.search(
        r'data-testid="chosen-company">[^<]*' + re.escape(_company(simulator, 3)["Name"]), html
    )
    assert '<input type="hidden" name="company_id" value="3">' in html


def test_picking_an_id_superoffice_does_not_have_says_so(client, panel):
    html = _get(client, panel, "leads:company_pick", {"company_id": "987654"}).content.decode()

    assert "SuperOffice has no company 987654" in html
    assert '<input type="hidden" name="company_id" value="">' in html


def test_approving_with_a_chosen_company_creates_the_person_under_it(
    client, panel, lead, simulator
):
    data = {"last_name": "Solo", "email": "solo@example.net", "company_id": "3"}

    response = _approve(client, panel, lead, data)

    assert "Approved — SuperOffice person #".encode() in response.content
    lead.refresh_from_db()
    assert simulator.state(f"persons/{lead.superoffice_person_id}")["ContactId"] == 3


@pytest.mark.parametrize(
    ("company_id", "message"),
    [
        ("987654", "SuperOffice has no company 987654. Choose one by name."),
        ("abc", "Choose the company by name."),
        ("", "Choose an existing company by name"),
    ],
)
def test_an_unknown_or_bad_company_id_is_a_form_error_and_creates_nobody(
    client, panel, lead, simulator, company_id, message
):
    persons_before = simulator.state("persons")["count"]
    data = {"last_name": "Solo", "email": "solo@example.net", "company_id": company_id}

    response = _approve(client, panel, lead, data)

    assert response.status_code == 200
    html = response.content.decode()
    assert f'<p class="field-error">{message}' in html
    assert "Approved — SuperOffice person" not in html
    lead.refresh_from_db()
    assert lead.superoffice_person_id is None
    assert simulator.state("persons")["count"] == persons_before


def test_the_approve_form_asks_for_the_company_by_name_not_by_id(client, panel, lead):
    html = _get(client, panel, "leads:lead_approve", contact_id=lead.id).content.decode()

    assert 'data-testid="company-picker"' in html
    assert "Existing company: type part of its name" in html
    assert "company id" not in html.lower()
    assert '<input type="hidden" name="company_id" value="">' in html


def test_the_picker_needs_the_panel_sign_in(client, panel):
    url = reverse("leads:company_search", kwargs={"panel_key": panel.panel_key})

    response = client.get(url, {"company_search": "Nordic"})

    assert response.status_code == 401
    assert b"data-company" not in response.content
