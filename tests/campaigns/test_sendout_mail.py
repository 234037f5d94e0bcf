"""A sendout's e-mail as each recipient gets it: fields filled in, the sender, the
unsubscribe link and the List-Unsubscribe headers (RFC 8058), the open pixel naming the
sendout; a test message and a preview that record nothing."""

import re
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from campaigns import imports, sendouts
from campaigns.models import Channel, EmailSender, Event, EventType, Sendout
from campaigns.sendout_mail import Mode, links_by_url, mail_parts
from campaigns.tasks import drain_clicks
from consent.models import ConsentChange, Origin, Purpose
from consent.services import consent_record
from tests.campaigns.factories import CampaignFactory, ContactFactory, EmailSenderFactory

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

BODY = (
    "<html><body><p>Hi {first_name|there},</p><p>News for {company|your team}.</p>"
    '<p><a href="https://www.example.com/offer">See the offer</a></p></body></html>'
)


def _consenting(account, **fields):
    contact = ContactFactory(account=account, **fields)
    consent_record(
        account=account,
        contact=contact,
        purpose=Purpose.EMARKETING,
        legal_basis="61A",
        origin=Origin.API,
    )
    return contact


@pytest.fixture
def readers(account):
    EmailSenderFactory(
        account=account,
        from_name="Acme Events",
        from_email="events@acme.example",
        reply_to="team@acme.example",
    )
    ola = _consenting(account, email="ola@example.com", first_name="Ola", company_name="Berg & Søn")
    anon = _consenting(account, email="anon@example.com", first_name="", company_name="")
    recipients = imports.recipient_list_create(account=account, name="Readers")
    imports.recipient_list_add_contacts(recipient_list=recipients, contact_ids=[ola.pk, anon.pk])
    return recipients, ola, anon


def _sendout(account, recipients, *, subject="News for {first_name|you}", body=BODY):
    sendout = sendouts.sendout_create(
        account=account,
        campaign=CampaignFactory(account=account),
        recipient_list=recipients,
        channel=Channel.EMAIL,
        subject=subject,
        body=body,
    )
    sendouts.sendout_checklist_run(sendout=sendout)
    return sendout


def _html(message) -> str:
    return next(body for body, kind in message.alternatives if kind == "text/html")


def _sent_to(address):
    return next(m for m in mail.outbox if m.to == [address])


def test_each_recipient_gets_their_fields_the_sender_and_a_one_click_unsubscribe(account, readers):
    recipients, ola, anon = readers
    sendout = _sendout(account, recipients)
    sendouts.sendout_confirm(sendout=sendout)

    sendouts.sendout_send(sendout_id=sendout.pk)

    to_ola, to_anon = _sent_to(ola.email), _sent_to(anon.email)
    assert to_ola.subject == "News for Ola" and to_anon.subject == "News for you"
    assert "Hi Ola," in _html(to_ola) and "News for Berg &amp; Søn." in _html(to_ola)
    assert "Hi there," in _html(to_anon) and "News for your team." in _html(to_anon)
    assert "Hi Ola," in to_ola.body  # the text part too
    assert to_ola.from_email == "Acme Events <events@acme.example>"
    assert to_ola.reply_to == ["team@acme.example"]
    unsubscribe = re.fullmatch(
        r"<(https?://[^>]+/u/[^>]+/)>", to_ola.extra_headers["List-Unsubscribe"]
    )
    assert unsubscribe, to_ola.extra_headers
    assert to_ola.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # No {unsubscribe} in the body: the hub adds a line with the same link.
    assert f'href="{unsubscribe.group(1)}"' in _html(to_ola)
    assert "from Acme Events" in _html(to_ola)
    # Each recipient has their own link; the sender's is the sendout's from now on.
    assert to_anon.extra_headers["List-Unsubscribe"] != to_ola.extra_headers["List-Unsubscribe"]
    sendout.refresh_from_db()
    assert (sendout.from_name, sendout.from_email) == ("Acme Events", "events@acme.example")


def test_an_unsubscribe_field_in_the_body_is_the_link_and_no_line_is_added(account, readers):
    recipients, ola, _ = readers
    sendout = _sendout(
        account,
        recipients,
        body='<p>Hi {first_name}</p><p><a href="{unsubscribe}">Leave the list</a></p>',
    )
    sendouts.sendout_confirm(sendout=sendout)

    sendouts.sendout_send(sendout_id=sendout.pk)

    html = _html(_sent_to(ola.email))
    header = _sent_to(ola.email).extra_headers["List-Unsubscribe"].strip("<>")
    assert f'<a href="{header}">Leave the list</a>' in html
    assert "You receive this e-mail" not in html


def test_the_open_pixel_names_the_sendout(account, readers, client):
    recipients, ola, _ = readers
    sendout = _sendout(account, recipients)
    sendouts.sendout_confirm(sendout=sendout)
    sendouts.sendout_send(sendout_id=sendout.pk)
    pixel = re.search(r'<img src="([^"]+/o/[^"]+\.gif)"', _html(_sent_to(ola.email))).group(1)

    assert client.get(urlsplit(pixel).path).status_code == 200
    drain_clicks()  # what a worker does next: the open becomes its event

    opened = Event.objects.get(type=EventType.EMAIL_OPENED)
    assert (opened.contact, opened.data["sendout"]) == (ola, sendout.pk)


def test_without_a_sender_nothing_can_be_confirmed(account, readers):
    recipients, _, _ = readers
    sendout = _sendout(account, recipients)
    EmailSender.objects.filter(account=account).delete()

    with pytest.raises(ValidationError) as refused:
        sendouts.sendout_confirm(sendout=sendout)

    assert "no sender" in refused.value.messages[0]
    sendout.refresh_from_db()
    assert sendout.status == Sendout.Status.DRAFT


def test_a_sendout_nobody_would_receive_cannot_be_confirmed(account, readers):
    recipients, ola, anon = readers
    sendout = _sendout(account, recipients)
    for contact in (ola, anon):
        consent_record(
            account=account,
            contact=contact,
            purpose=Purpose.EMARKETING,
            legal_basis="WITHDRAWN",
            origin=Origin.API,
        )
    sendouts.sendout_checklist_run(sendout=sendout)

    with pytest.raises(ValidationError) as refused:
        sendouts.sendout_confirm(sendout=sendout)

    assert "Nobody" in refused.value.messages[0]


def test_at_the_send_time_a_sendout_with_an_unknown_field_is_not_sent(account, readers):
    recipients, _, _ = readers
    sendout = _sendout(account, recipients)
    sendouts.sendout_confirm(sendout=sendout)
    # Changed behind the pages' back (the admin site, an older version of the hub).
    Sendout.objects.filter(pk=sendout.pk).update(body="<p>Hi {frist_name}</p>")

    done = sendouts.sendout_send(sendout_id=sendout.pk)

    assert done.status == Sendout.Status.CANCELLED
    assert "did you mean {first_name}?" in done.not_sent_reason
    assert mail.outbox == [] and not done.messages.exists()


def test_a_test_message_goes_to_the_marketer_as_the_recipient_would_get_it_and_records_nothing(
    account, readers, client
):
    recipients, ola, _ = readers
    sendout = _sendout(account, recipients)

    sendouts.sendout_test_send(sendout=sendout, contact=ola, to="Mia@Acme.example")

    (test,) = mail.outbox
    assert test.to == ["mia@acme.example"] and test.subject == "[Test] News for Ola"
    assert "Hi Ola," in _html(test) and "/o/" not in _html(test)
    offer = re.search(r'href="([^"]+/t/[^"]+)"', _html(test)).group(1)
    assert "?c=" not in offer  # followed, not recorded as Ola's click
    unsubscribe = urlsplit(test.extra_headers["List-Unsubscribe"].strip("<>")).path
    assert "test message" in client.post(unsubscribe).content.decode()
    assert not ConsentChange.objects.filter(origin=Origin.UNSUBSCRIBE).exists()
    assert not Event.objects.exists()
    sendout.refresh_from_db()
    assert sendout.status == Sendout.Status.DRAFT


def test_a_preview_is_the_recipients_message_without_the_pixel(account, readers):
    recipients, _, anon = readers
    sendout = _sendout(account, recipients)

    parts = mail_parts(
        sendout=sendout, contact=anon, links=links_by_url(sendout=sendout), mode=Mode.PREVIEW
    )

    assert parts.subject == "News for you" and "Hi there," in parts.html
    assert "/o/" not in parts.html and parts.to == anon.email
    assert parts.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
