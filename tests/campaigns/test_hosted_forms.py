"""The page the hub serves for a form: the contact fields the marketer chose, a consent
box per purpose with its text, a thank-you message or a redirect. A ticked box records
the visitor's consent (origin form, the text shown) and the sync takes it to SuperOffice."""

import pytest
from django.test import Client

from campaigns.models import Contact, Event, Form
from consent.models import ConsentChange, ConsentPush, CurrentConsent, Origin, Purpose
from consent.push import consent_pushes_drain
from crm.models import SuperOfficeConnection
from tests.campaigns.factories import CampaignFactory, ContactFactory, FormFactory

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

NEWS = "Yes, send me news by e-mail. I can unsubscribe at any time."


@pytest.fixture
def visitor():
    return Client(enforce_csrf_checks=True, HTTP_USER_AGENT="Mozilla/5.0")


@pytest.fixture
def form(account):
    return FormFactory(
        campaign=CampaignFactory(account=account),
        name="Join the newsletter",
        intro="News from the fair, once a month.",
        field_names=["email", "first_name", "company_name"],
        consent_boxes={"EMARKETING": {"text": NEWS, "legal_basis": "61A"}},
        button_label="Join",
        thanks_message="Welcome aboard!",
    )


def _url(form):
    return f"/f/{form.token}/"


def test_the_page_asks_for_the_chosen_fields_and_shows_the_consent_box(visitor, form):
    response = visitor.get(_url(form))

    page = response.content.decode()
    assert response.status_code == 200
    assert "Join the newsletter" in page and "News from the fair" in page
    assert 'name="email"' in page and 'name="first_name"' in page
    assert 'name="company_name"' in page and 'name="last_name"' not in page
    assert 'name="consent_emarketing"' in page and NEWS in page
    assert '<div class="trap" aria-hidden="true">' in page and 'name="emhub_website"' in page
    assert ">Join</button>" in page
    assert " style=" not in page.split("<main")[1]  # the CSP allows no style attribute


def test_an_unpublished_form_has_no_page(visitor, form):
    Form.objects.filter(pk=form.pk).update(published=False)

    assert visitor.get(_url(form)).status_code == 404


def test_a_ticked_box_records_the_consent_with_the_text_shown(account, visitor, form):
    response = visitor.post(
        _url(form),
        {
            "hosted": "1",
            "email": "Nina@Example.com",
            "first_name": "Nina",
            "consent_emarketing": "yes",
            "emhub_website": "",
        },
    )

    assert response.status_code == 200 and "Welcome aboard!" in response.content.decode()
    nina = Contact.objects.get(account=account, email="nina@example.com")
    change = ConsentChange.objects.get(contact=nina)
    assert (change.purpose, change.legal_basis) == (Purpose.EMARKETING, "61A")
    assert (change.origin, change.source) == (Origin.FORM, "WEBFORM")
    assert NEWS in change.reason and "Join the newsletter" in change.reason
    event = Event.objects.get(contact=nina)
    assert event.data["fields"]["consent_emarketing"] == "yes"
    assert CurrentConsent.objects.get(contact=nina).legal_basis == "61A"


def test_an_unticked_box_records_no_consent(account, visitor, form):
    visitor.post(_url(form), {"hosted": "1", "email": "ola@example.com"})

    assert Event.objects.filter(contact__email="ola@example.com").exists()
    assert not ConsentChange.objects.exists()


def test_a_bots_submission_records_neither_event_nor_consent(visitor, form):
    response = visitor.post(
        _url(form),
        {
            "hosted": "1",
            "email": "bot@example.com",
            "consent_emarketing": "yes",
            "emhub_website": "http://spam.example",
        },
    )

    assert response.status_code == 200
    assert not Event.objects.exists() and not ConsentChange.objects.exists()


def test_an_existing_contact_keeps_its_details_and_gets_the_consent(account, visitor, form):
    known = ContactFactory(account=account, email="kari@example.com", first_name="Kari")

    visitor.post(
        _url(form),
        {
            "hosted": "1",
            "email": "kari@example.com",
            "first_name": "Mallory",
            "consent_emarketing": "yes",
        },
    )

    known.refresh_from_db()
    assert known.first_name == "Kari"
    assert ConsentChange.objects.get(contact=known).origin == Origin.FORM


def test_a_bad_address_shows_the_page_again_with_the_message(visitor, form):
    response = visitor.post(
        _url(form),
        {
            "hosted": "1",
            "email": "not-an-address",
            "first_name": "Nina",
            "consent_emarketing": "yes",
        },
    )

    page = response.content.decode()
    assert response.status_code == 400
    assert "Enter a valid email address." in page and 'value="Nina"' in page
    assert 'name="consent_emarketing" id="f-consent_emarketing" value="yes" checked' in page
    assert not ConsentChange.objects.exists()


def test_a_form_with_its_own_thank_you_page_redirects(visitor, form):
    Form.objects.filter(pk=form.pk).update(success_url="https://www.example.com/thanks")

    response = visitor.post(_url(form), {"hosted": "1", "email": "a@example.com"})

    assert response.status_code == 303 and response["Location"] == "https://www.example.com/thanks"


def test_the_marketer_chooses_the_fields_and_the_consent_box(marketer_client, form):
    url = f"/campaigns/{form.campaign_id}/forms/{form.pk}/"

    missing_text = marketer_client.post(url, {"part": "page", "consent_store": "on"})
    saved = marketer_client.post(
        url,
        {
            "part": "page",
            "intro": "Hello",
            "field_names": ["last_name", "phone"],
            "consent_store": "on",
            "consent_store_text": "Keep my details",
            "button_label": "",
            "thanks_message": "Thanks!",
        },
    )

    assert "Write what the visitor agrees to." in missing_text.content.decode()
    assert saved.status_code == 302
    form.refresh_from_db()
    assert form.field_names == ["email", "last_name", "phone"]
    assert form.consent_boxes == {"STORE": {"text": "Keep my details", "legal_basis": "61A"}}
    assert (form.intro, form.thanks_message) == ("Hello", "Thanks!")
    detail = marketer_client.get(url).content.decode()
    assert f"/f/{form.token}/" in detail and "consent_store" in detail


def test_a_form_consent_goes_to_superoffice_through_the_consent_outbox(
    crm_account, simulator, visitor
):
    SuperOfficeConnection.objects.filter(account=crm_account).update(legal_basis_sync_enabled=True)
    person = simulator.state("persons/3")
    email = person["Emails"][0]
    contact = ContactFactory(
        account=crm_account, email=email.lower(), superoffice_person_id=person["PersonId"]
    )
    form = FormFactory(
        campaign=CampaignFactory(account=crm_account),
        consent_boxes={"STORE": {"text": "Keep my details", "legal_basis": "61A"}},
    )

    visitor.post(_url(form), {"hosted": "1", "email": email, "consent_store": "yes"})
    (queued,) = ConsentPush.objects.filter(contact=contact)
    consent_pushes_drain(account_id=crm_account.pk)

    assert queued.change.origin == Origin.FORM
    store = simulator.state(f"consents/{person['PersonId']}")["STORE"]
    assert (store["legal_base"], store["source"]) == ("61A", "WEBFORM")
