"""Unsubscribing: the link shows a page and changes nothing on GET (mail scanners follow
every link); the button or the mail program's one-click POST (RFC 8058) withdraws the
EMARKETING consent at once, for the next send, and the sync takes it to SuperOffice."""

import pytest
from django.core import signing
from django.test import Client

from campaigns import imports, sendouts
from campaigns.models import Channel, SendoutMessage
from campaigns.selectors import sendout_recipient_figures
from campaigns.unsubscribe import unsubscribe_token_make
from consent.models import ConsentChange, ConsentPush, CurrentConsent, Origin, Purpose
from consent.push import consent_pushes_drain
from consent.rules import WITHDRAWN
from consent.services import consent_record, consent_sync_for_contacts
from crm.models import SuperOfficeConnection
from tests.campaigns.factories import CampaignFactory, ContactFactory, EmailSenderFactory

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]


def _granted(account, contact):
    consent_record(
        account=account,
        contact=contact,
        purpose=Purpose.EMARKETING,
        legal_basis="61A",
        origin=Origin.API,
    )


def _sent_sendout(account, contacts, subject="Spring news"):
    EmailSenderFactory(account=account, from_name="Acme Events")
    recipients = imports.recipient_list_create(account=account, name=subject)
    imports.recipient_list_add_contacts(
        recipient_list=recipients, contact_ids=[c.pk for c in contacts]
    )
    sendout = sendouts.sendout_create(
        account=account,
        campaign=CampaignFactory(account=account),
        recipient_list=recipients,
        channel=Channel.EMAIL,
        subject=subject,
        body="<p>Hi {first_name}</p>",
    )
    sendouts.sendout_checklist_run(sendout=sendout)
    sendouts.sendout_confirm(sendout=sendout)
    sendouts.sendout_send(sendout_id=sendout.pk)
    return sendout


@pytest.fixture
def reader(account):
    contact = ContactFactory(account=account, email="reader@example.com", first_name="Rut")
    _granted(account, contact)
    return contact


@pytest.fixture
def sendout(account, reader):
    return _sent_sendout(account, [reader])


def _url(sendout, contact):
    return f"/u/{unsubscribe_token_make(sendout=sendout, contact=contact)}/"


def _emarketing(contact):
    return CurrentConsent.objects.get(contact=contact, purpose=Purpose.EMARKETING)


def test_opening_the_link_asks_and_changes_nothing(sendout, reader):
    response = Client().get(_url(sendout, reader))

    page = response.content.decode()
    assert response.status_code == 200
    assert "Unsubscribe?" in page and "Acme Events" in page and reader.email in page
    assert 'data-testid="unsubscribe-button"' in page
    assert response["Cache-Control"].startswith("no-cache")
    assert _emarketing(reader).legal_basis == "61A"


def test_the_button_withdraws_the_consent_with_its_source_and_the_next_send_excludes(
    account, sendout, reader
):
    browser = Client(enforce_csrf_checks=True)  # a recipient's browser holds no hub session

    response = browser.post(_url(sendout, reader))

    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    current = _emarketing(reader)
    assert (current.legal_basis, current.origin) == (WITHDRAWN, Origin.UNSUBSCRIBE)
    change = ConsentChange.objects.get(contact=reader, origin=Origin.UNSUBSCRIBE)
    assert "unsubscribe link" in change.reason and f"sendout {sendout.pk}" in change.reason
    message = SendoutMessage.objects.get(sendout=sendout, contact=reader)
    assert message.unsubscribed_at is not None
    # The next sendout to the same list leaves the reader out at once.
    next_one = sendouts.sendout_create(
        account=account,
        campaign=sendout.campaign,
        recipient_list=sendout.recipient_list,
        channel=Channel.EMAIL,
        subject="Summer news",
        body="<p>Hi</p>",
    )
    figures = sendout_recipient_figures(sendout=next_one)
    assert (figures["will_send"], figures["no_legal_basis"]) == (0, 1)


def test_a_mail_programs_one_click_post_unsubscribes_without_a_page(sendout, reader):
    response = Client(enforce_csrf_checks=True).post(
        _url(sendout, reader), {"List-Unsubscribe": "One-Click"}
    )

    assert response.status_code == 200
    change = ConsentChange.objects.get(contact=reader, origin=Origin.UNSUBSCRIBE)
    assert "mail program's unsubscribe button" in change.reason


def test_a_second_unsubscribe_records_nothing_new(sendout, reader):
    Client().post(_url(sendout, reader))

    again = Client().post(_url(sendout, reader))

    assert "was already unsubscribed" in again.content.decode()
    assert ConsentChange.objects.filter(contact=reader, legal_basis=WITHDRAWN).count() == 1


def test_a_forged_or_changed_token_unsubscribes_nobody(account, sendout, reader):
    other = ContactFactory(account=account)
    _granted(account, other)
    token = unsubscribe_token_make(sendout=sendout, contact=reader)
    value, signature = token.rsplit(":", 1)
    forged = f"{sendout.pk}.{other.pk}:{signature}"
    made_up = signing.Signer(salt="another-salt").sign(f"{sendout.pk}.{other.pk}")

    for bad in (forged, made_up, "12.34", token[:-3]):
        response = Client().post(f"/u/{bad}/")
        assert response.status_code == 400, bad
    assert _emarketing(other).legal_basis == "61A"
    assert _emarketing(reader).legal_basis == "61A"


def test_messages_still_waiting_in_another_sendout_are_not_sent(account, sendout, reader):
    later = _sent_sendout(account, [reader], subject="Later")
    SendoutMessage.objects.filter(sendout=later).update(status=SendoutMessage.Status.QUEUED)

    Client().post(_url(sendout, reader))

    waiting = SendoutMessage.objects.get(sendout=later, contact=reader)
    assert waiting.status == SendoutMessage.Status.EXCLUDED


@pytest.fixture
def linked_reader(crm_account, simulator):
    SuperOfficeConnection.objects.filter(account=crm_account).update(legal_basis_sync_enabled=True)
    person = simulator.state("persons/1")
    reader = ContactFactory(
        account=crm_account, email=person["Emails"][0], superoffice_person_id=person["PersonId"]
    )
    _granted(crm_account, reader)
    return reader


def test_the_withdrawal_goes_to_superoffice_through_the_consent_outbox(
    crm_account, simulator, linked_reader
):
    sendout = _sent_sendout(crm_account, [linked_reader])
    ConsentPush.objects.all().delete()  # the grant's own push, not this test's concern

    Client().post(_url(sendout, linked_reader))
    (queued,) = ConsentPush.objects.filter(contact=linked_reader)
    consent_pushes_drain(account_id=crm_account.pk)

    assert queued.change.origin == Origin.UNSUBSCRIBE
    emarketing = simulator.state(f"consents/{linked_reader.superoffice_person_id}")["EMARKETING"]
    assert emarketing["legal_base"] == WITHDRAWN
    # The "E-mail" consent source has no documented key: it goes as "Other integration".
    assert emarketing["source"] == "API"


def test_the_cycle_takes_the_withdrawal_to_superoffice_where_a_push_was_lost(
    crm_account, simulator, linked_reader
):
    sendout = _sent_sendout(crm_account, [linked_reader])

    Client().post(_url(sendout, linked_reader))
    ConsentPush.objects.all().delete()  # lost
    consent_sync_for_contacts(account=crm_account, contact_ids=[linked_reader.pk])

    emarketing = simulator.state(f"consents/{linked_reader.superoffice_person_id}")["EMARKETING"]
    assert emarketing["legal_base"] == WITHDRAWN
