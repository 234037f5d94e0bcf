"""Sendouts: the checklist, a scheduled send with the legal-basis sync at its time, the
email's tracked links and open pixel, retries, and a click that runs an automation in
SuperOffice (the real client over HTTP to the NetServer simulator)."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.utils import timezone

from automations import services as automation_services
from automations.models import AutomationType, Run, RunStatus
from campaigns import imports, selectors, sendouts
from campaigns.models import (
    Channel,
    Contact,
    Event,
    EventType,
    RecipientList,
    Sendout,
    SendoutMessage,
    StoredSms,
    TrackedLink,
)
from campaigns.tasks import drain_clicks
from consent.models import ConsentSyncCycle, Origin, Purpose
from consent.services import consent_record
from crm.models import SuperOfficeConnection
from crm.services import client_for_account
from tests.campaigns.factories import CampaignFactory, ContactFactory, EmailSenderFactory
from tests.campaigns.mail_backends import FlakyEmailBackend

OFFER = "https://www.example.com/offer?utm=mail"
BODY = f'<html><body><p>Hello!</p><p><a href="{OFFER}">See the offer</a></p></body></html>'


@pytest.fixture
def synced_account(crm_account):
    SuperOfficeConnection.objects.filter(account=crm_account).update(legal_basis_sync_enabled=True)
    EmailSenderFactory(account=crm_account)
    return crm_account


@pytest.fixture
def imported_list(synced_account, simulator) -> RecipientList:
    """Project 1's persons with the e-marketing switch on, imported and saved as a list."""
    started = imports.contact_import_create(
        account=synced_account,
        source_type="project",
        source_id=1,
        only_emarketing=True,
        enqueue=False,
    )
    done = imports.contact_import_run(import_id=started.pk)
    assert done.created >= 3, "the seeded project needs persons with the switch on"
    return imports.recipient_list_from_import(contact_import=done, name="Spring invitees")


def _html(message) -> str:
    return next(body for body, kind in message.alternatives if kind == "text/html")


def _tracking_path(message, link: TrackedLink) -> str:
    url = next(u for u in re.findall(r'href="([^"]+)"', _html(message)) if link.token in u)
    parts = urlsplit(url.replace("&amp;", "&"))
    return f"{parts.path}?{parts.query}"


def test_a_scheduled_sendout_checks_legal_basis_at_send_time_and_a_click_makes_a_sale(
    synced_account, simulator, imported_list, client
):
    account = synced_account
    campaign = CampaignFactory(account=account, name="Spring summit")
    sendout = sendouts.sendout_create(
        account=account,
        campaign=campaign,
        recipient_list=imported_list,
        channel=Channel.EMAIL,
        subject="Join us in spring",
        body=BODY,
    )
    link = TrackedLink.objects.get(campaign=campaign)
    assert link.url == OFFER
    automation_services.automation_create(
        account=account,
        campaign=campaign,
        name="Sale on offer click",
        type=AutomationType.CREATE_SALE,
        trigger_event_type=EventType.LINK_CLICKED,
        trigger_link=link,
        settings={
            "source_id": 3,
            "rating_id": 1,
            "owner_id": 2,
            "description": "Clicked {campaign}",
        },
    )
    recipients = list(selectors.recipient_list_contacts(recipient_list=imported_list))

    figures = sendouts.sendout_checklist_run(sendout=sendout)
    # The checklist synced the recipients: every one holds SuperOffice's consent now.
    assert figures["synced"] is True
    assert figures["recipients"] == figures["will_send"] == len(recipients)
    assert sendouts.sendout_confirm(
        sendout=sendout, scheduled_at=timezone.now() + timedelta(hours=1)
    )
    assert sendout.id not in selectors.sendouts_due()

    # A minute before the send time, one recipient withdraws the consent in SuperOffice.
    withdrawn = recipients[0]
    client_for_account(account).withdraw_consent(
        person_id=withdrawn.superoffice_person_id, purpose_key="EMARKETING"
    )
    Sendout.objects.filter(pk=sendout.pk).update(scheduled_at=timezone.now())
    cycles_before = ConsentSyncCycle.objects.filter(account=account).count()
    assert sendout.id in selectors.sendouts_due()

    sent = sendouts.sendout_send(sendout_id=sendout.id)

    assert sent.status == Sendout.Status.SENT
    assert ConsentSyncCycle.objects.filter(account=account).count() == cycles_before + 1
    excluded = SendoutMessage.objects.get(sendout=sendout, contact=withdrawn)
    assert excluded.status == SendoutMessage.Status.EXCLUDED
    assert excluded.excluded_reason == SendoutMessage.Exclusion.NO_LEGAL_BASIS
    assert withdrawn.email not in {to for m in mail.outbox for to in m.to}
    assert len(mail.outbox) == len(recipients) - 1
    assert Event.objects.filter(campaign=campaign, type=EventType.EMAIL_SENT).count() == (
        len(recipients) - 1
    )

    # A recipient clicks the offer in the email they got.
    message = mail.outbox[0]
    reader = Contact.objects.get(account=account, email=message.to[0])
    assert message.subject == "Join us in spring"
    assert "/o/" in _html(message)  # the open pixel
    assert f"See the offer ({OFFER.split('?')[0]}" not in message.body  # text part is tracked
    # The reader takes a minute: a click seconds after delivery is a mail scanner's.
    Event.objects.filter(contact=reader, type=EventType.EMAIL_SENT).update(
        occurred_at=timezone.now() - timedelta(minutes=1)
    )
    response = client.get(_tracking_path(message, link))
    assert response.status_code == 302 and response["Location"] == OFFER
    drain_clicks()  # what a worker does next: the click becomes its event and runs

    run = Run.objects.get(contact=reader)
    outcome = automation_services.run_execute(run_id=run.id)

    run.refresh_from_db()
    assert outcome.status == RunStatus.DONE, run.last_error
    sales = [s for s in simulator.state("sales") if s["SaleId"] == run.crm_object_id]
    assert sales and sales[0]["PersonId"] == reader.superoffice_person_id


def test_the_checklist_counts_recipients_without_legal_basis_or_address(account):
    campaign = CampaignFactory(account=account)
    consenting = ContactFactory(account=account, mobile="+4790000001")
    no_phone = ContactFactory(account=account)
    ContactFactory(account=account, mobile="+4790000002")  # no legal basis
    for contact in (consenting, no_phone):
        consent_record(
            account=account,
            contact=contact,
            purpose=Purpose.EMARKETING,
            legal_basis="61A",
            origin=Origin.API,
        )
    recipients = imports.recipient_list_create(account=account, name="All")
    imports.recipient_list_add_contacts(
        recipient_list=recipients, contact_ids=Contact.objects.values_list("pk", flat=True)
    )
    sendout = sendouts.sendout_create(
        account=account,
        campaign=campaign,
        recipient_list=recipients,
        channel=Channel.SMS,
        body="Hi! https://www.example.com/sms-offer",
    )

    figures = sendouts.sendout_checklist_run(sendout=sendout)

    assert (figures["recipients"], figures["no_legal_basis"], figures["no_address"]) == (3, 1, 1)
    assert figures["will_send"] == 1
    assert figures["synced"] is False  # this account has no sync


def test_an_sms_sendout_stores_each_message_with_its_tracked_link_and_event(account, settings):
    settings.SMS_BACKEND = "campaigns.sms.StoredSmsBackend"
    campaign = CampaignFactory(account=account)
    reader = ContactFactory(account=account, mobile="+4791234567")
    consent_record(
        account=account,
        contact=reader,
        purpose=Purpose.EMARKETING,
        legal_basis="61A",
        origin=Origin.API,
    )
    recipients = imports.recipient_list_create(account=account, name="SMS")
    imports.recipient_list_add_contacts(recipient_list=recipients, contact_ids=[reader.pk])
    sendout = sendouts.sendout_create(
        account=account,
        campaign=campaign,
        recipient_list=recipients,
        channel=Channel.SMS,
        body="Our sale starts now: https://www.example.com/sale.",
    )
    sendouts.sendout_checklist_run(sendout=sendout)
    sendouts.sendout_confirm(sendout=sendout)

    sendouts.sendout_send(sendout_id=sendout.id)

    sms = StoredSms.objects.get()
    link = TrackedLink.objects.get(campaign=campaign, url="https://www.example.com/sale")
    assert sms.to == "+4791234567"
    assert f"/t/{link.token}/?c=" in sms.body and sms.body.endswith(".")
    assert Event.objects.get(contact=reader).type == EventType.SMS_SENT


@pytest.fixture
def one_recipient_sendout(account):
    EmailSenderFactory(account=account)
    campaign = CampaignFactory(account=account)
    reader = ContactFactory(account=account, email="reader@example.com")
    consent_record(
        account=account,
        contact=reader,
        purpose=Purpose.EMARKETING,
        legal_basis="61A",
        origin=Origin.API,
    )
    recipients = imports.recipient_list_create(account=account, name="One")
    imports.recipient_list_add_contacts(recipient_list=recipients, contact_ids=[reader.pk])
    sendout = sendouts.sendout_create(
        account=account,
        campaign=campaign,
        recipient_list=recipients,
        channel=Channel.EMAIL,
        subject="Hello",
        body=BODY,
    )
    sendouts.sendout_checklist_run(sendout=sendout)
    return sendout


def test_a_double_click_and_a_retried_task_send_one_message(one_recipient_sendout):
    sendout = one_recipient_sendout

    assert sendouts.sendout_confirm(sendout=sendout) is True
    assert sendouts.sendout_confirm(sendout=sendout) is False
    sendouts.sendout_send(sendout_id=sendout.id)
    assert sendouts.sendout_send(sendout_id=sendout.id) is None  # sent: nothing to take
    Sendout.objects.filter(pk=sendout.pk).update(status=Sendout.Status.SENDING)
    sendouts.sendout_send(sendout_id=sendout.id)

    assert len(mail.outbox) == 1
    assert Event.objects.filter(type=EventType.EMAIL_SENT).count() == 1
    assert SendoutMessage.objects.get().status == SendoutMessage.Status.SENT


def test_a_failed_delivery_is_kept_and_tried_again_until_it_goes_out(
    one_recipient_sendout, settings
):
    settings.EMAIL_BACKEND = "tests.campaigns.mail_backends.FlakyEmailBackend"
    settings.CAMPAIGNS_SEND_RETRY_BASE_SECONDS = 0
    FlakyEmailBackend.fail_next = 1
    sendout = one_recipient_sendout
    sendouts.sendout_confirm(sendout=sendout)

    first = sendouts.sendout_send(sendout_id=sendout.id)

    message = SendoutMessage.objects.get()
    assert first.status == Sendout.Status.SENDING
    assert (message.status, message.attempts) == (SendoutMessage.Status.QUEUED, 1)
    assert "Connection unexpectedly closed" in message.last_error
    assert selectors.sendouts_due() == [sendout.id]

    again = sendouts.sendout_send(sendout_id=sendout.id)

    message.refresh_from_db()
    assert again.status == Sendout.Status.SENT
    assert (message.status, message.attempts, message.last_error) == (
        SendoutMessage.Status.SENT,
        2,
        "",
    )
    assert len(mail.outbox) == 1


def test_a_delivery_that_keeps_failing_ends_as_failed_with_its_error(
    one_recipient_sendout, settings
):
    settings.EMAIL_BACKEND = "tests.campaigns.mail_backends.FlakyEmailBackend"
    settings.CAMPAIGNS_SEND_RETRY_BASE_SECONDS = 0
    settings.CAMPAIGNS_SEND_MAX_ATTEMPTS = 3
    FlakyEmailBackend.fail_next = 10
    sendout = one_recipient_sendout
    sendouts.sendout_confirm(sendout=sendout)

    for _ in range(3):
        sendouts.sendout_send(sendout_id=sendout.id)

    message = SendoutMessage.objects.get()
    sendout.refresh_from_db()
    assert (message.status, message.attempts) == (SendoutMessage.Status.FAILED, 3)
    assert message.last_error
    assert sendout.status == Sendout.Status.SENT
    assert selectors.sendouts_due() == []
    FlakyEmailBackend.fail_next = 0


def test_a_retry_waits_for_its_backoff(one_recipient_sendout, settings):
    settings.EMAIL_BACKEND = "tests.campaigns.mail_backends.FlakyEmailBackend"
    settings.CAMPAIGNS_SEND_RETRY_BASE_SECONDS = 60
    FlakyEmailBackend.fail_next = 1
    sendouts.sendout_confirm(sendout=one_recipient_sendout)

    sendouts.sendout_send(sendout_id=one_recipient_sendout.id)
    sendouts.sendout_send(sendout_id=one_recipient_sendout.id)

    message = SendoutMessage.objects.get()
    assert message.attempts == 1
    assert message.next_attempt_at > timezone.now() + timedelta(seconds=50)
    assert selectors.sendouts_due() == []


def test_links_already_tracked_are_reused_and_new_ones_created(account):
    campaign = CampaignFactory(account=account)
    known = TrackedLink.objects.create(account=account, campaign=campaign, name="Offer", url=OFFER)
    body = (
        f'<a href="{OFFER}">a</a> <a href="https://www.example.com/new">b</a>'
        ' <a href="mailto:x@y">c</a>'
    )

    links = sendouts.sendout_links_prepare(campaign=campaign, body=body, channel=Channel.EMAIL)

    assert links[0] == known
    assert [link.url for link in links] == [OFFER, "https://www.example.com/new"]
    assert TrackedLink.objects.filter(campaign=campaign).count() == 2


def test_a_draft_without_subject_or_body_is_refused(account):
    from django.core.exceptions import ValidationError

    campaign = CampaignFactory(account=account)
    recipients = imports.recipient_list_create(account=account, name="x")
    with pytest.raises(ValidationError) as caught:
        sendouts.sendout_create(
            account=account,
            campaign=campaign,
            recipient_list=recipients,
            channel=Channel.EMAIL,
            subject=" ",
            body="",
        )
    assert set(caught.value.message_dict) == {"subject", "body"}


def test_the_checklist_reads_the_emarketing_consent_not_the_no_mailing_flag(
    synced_account, simulator, imported_list
):
    account = synced_account
    campaign = CampaignFactory(account=account, name="Autumn")
    sendout = sendouts.sendout_create(
        account=account,
        campaign=campaign,
        recipient_list=imported_list,
        channel=Channel.EMAIL,
        subject="Autumn news",
        body=BODY,
    )
    recipients = list(selectors.recipient_list_contacts(recipient_list=imported_list))
    client = client_for_account(account)
    # "No Mailings" is the direct-mail flag ("Do not send DM's"): not the e-marketing switch.
    client.set_no_mailing(person_id=recipients[0].superoffice_person_id, no_mailing=True)
    # The EMARKETING consent is: withdrawn in SuperOffice, this recipient is left out.
    client.withdraw_consent(
        person_id=recipients[1].superoffice_person_id, purpose_key=Purpose.EMARKETING
    )

    figures = sendouts.sendout_checklist_run(sendout=sendout)

    assert figures["synced"] is True
    assert figures["no_legal_basis"] == 1
    assert figures["will_send"] == len(recipients) - 1
    assert simulator.state(f"persons/{recipients[0].superoffice_person_id}")["NoMailing"] is True
