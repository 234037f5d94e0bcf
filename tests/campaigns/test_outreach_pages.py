"""The import, recipient list and sendout pages as a marketer uses them."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import imports, sendouts
from campaigns.models import (
    ContactImport,
    EmailSender,
    RecipientList,
    RecipientListMember,
    Sendout,
    SendoutMessage,
)
from consent.models import Origin, Purpose
from consent.services import consent_record
from crm.models import SuperOfficeConnection
from emhub.models import Membership
from tests.campaigns.factories import CampaignFactory, ContactFactory, EmailSenderFactory
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def crm_client(client, crm_account, signed_in):
    user = UserFactory(username="maja")
    MembershipFactory(user=user, account=crm_account, role=Membership.Role.MARKETER)
    return signed_in(client, user, crm_account)


def _checked_email_sendout(account, recipients, *, subject: str, body: str):
    """An email sendout of a new campaign to `recipients`, its checklist run."""
    sendout = sendouts.sendout_create(
        account=account,
        campaign=CampaignFactory(account=account),
        recipient_list=recipients,
        channel="email",
        subject=subject,
        body=body,
    )
    sendouts.sendout_checklist_run(sendout=sendout)
    return sendout


def test_the_new_import_page_lists_superoffice_selections_and_projects(crm_client):
    page = crm_client.get("/imports/new/").content.decode()

    assert "Newsletter Q1 (id 1)" in page and "Spring campaign (id 1)" in page
    assert 'value="selection:1"' in page and 'value="project:1"' in page


def test_searching_narrows_the_lists_in_place(crm_client):
    response = crm_client.get("/imports/new/", {"q": "summit"}, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert html.startswith('<div id="source-field">')
    assert "Partner summit" in html and "Newsletter Q1" not in html


def test_starting_an_import_queues_it_and_shows_its_progress(
    crm_client, crm_account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        response = crm_client.post(
            "/imports/new/", {"source": "project:2", "only_emarketing": "on"}
        )

    started = ContactImport.objects.get(account=crm_account)
    assert response.status_code == 302
    assert response["Location"] == f"/imports/{started.pk}/"
    assert (started.source_type, started.source_id, started.source_name) == (
        "project",
        2,
        "Partner summit",
    )
    assert started.only_emarketing and started.created_by is not None
    assert len(queued) == 1
    progress = crm_client.get(f"/imports/{started.pk}/progress/").content.decode()
    assert 'hx-trigger="every 1s"' in progress and "0%" in progress


def test_the_progress_stops_polling_and_shows_the_summary_when_done(crm_client, crm_account):
    started = imports.contact_import_create(
        account=crm_account, source_type="selection", source_id=2, enqueue=False
    )
    imports.contact_import_run(import_id=started.pk)

    progress = crm_client.get(f"/imports/{started.pk}/progress/").content.decode()

    assert "hx-trigger" not in progress
    assert 'data-testid="import-summary"' in progress and "100%" in progress


def test_a_source_that_is_not_in_the_lists_is_a_form_error(crm_client, crm_account):
    response = crm_client.post("/imports/new/", {"source": "selection:999"})

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not ContactImport.objects.exists()


def test_superoffice_down_shows_a_message_instead_of_an_error_page(crm_client, simulator):
    simulator.control(mode="down")

    response = crm_client.get("/imports/new/?refresh=1")

    assert response.status_code == 200
    assert "could not be read" in response.content.decode()


def test_a_finished_import_is_saved_as_a_list_from_its_page(crm_client, crm_account):
    started = imports.contact_import_create(
        account=crm_account, source_type="selection", source_id=2, enqueue=False
    )
    done = imports.contact_import_run(import_id=started.pk)

    response = crm_client.post(f"/imports/{done.pk}/save-list/", {"name": "Event invitees"})

    saved = RecipientList.objects.get(account=crm_account)
    assert response["Location"] == f"/lists/{saved.pk}/"
    assert saved.name == "Event invitees" and saved.members.count() == done.created
    assert "Event invitees" in crm_client.get("/lists/").content.decode()


def test_running_an_import_again_starts_a_new_one_with_the_same_source(crm_client, crm_account):
    first = imports.contact_import_create(
        account=crm_account,
        source_type="project",
        source_id=3,
        only_emarketing=True,
        enqueue=False,
    )

    response = crm_client.post(f"/imports/{first.pk}/again/")

    again = ContactImport.objects.exclude(pk=first.pk).get()
    assert response["Location"] == f"/imports/{again.pk}/"
    assert (again.source_type, again.source_id, again.only_emarketing) == ("project", 3, True)


@pytest.fixture
def recipients(account):
    EmailSenderFactory(account=account)
    rl = imports.recipient_list_create(account=account, name="Readers")
    contacts = [ContactFactory(account=account) for _ in range(3)]
    for contact in contacts[:2]:
        consent_record(
            account=account,
            contact=contact,
            purpose=Purpose.EMARKETING,
            legal_basis="61A",
            origin=Origin.API,
        )
    imports.recipient_list_add_contacts(recipient_list=rl, contact_ids=[c.pk for c in contacts])
    return rl


def test_a_marketer_writes_a_sendout_checks_it_and_sends_it_now(
    marketer_client, account, recipients, django_capture_on_commit_callbacks
):
    campaign = CampaignFactory(account=account)
    response = marketer_client.post(
        "/sendouts/new/",
        {
            "campaign": campaign.pk,
            "recipient_list": recipients.pk,
            "channel": "email",
            "subject": "News",
            "body": '<p><a href="https://www.example.com/a">A</a></p>',
        },
    )
    sendout = Sendout.objects.get()
    assert response["Location"] == f"/sendouts/{sendout.pk}/checklist/"

    checklist = marketer_client.get(response["Location"]).content.decode()
    assert 'data-testid="no-legal-basis">1<' in checklist
    assert 'data-testid="will-send">2<' in checklist

    with django_capture_on_commit_callbacks() as queued:
        done = marketer_client.post(response["Location"], {"when": "now"})
        again = marketer_client.post(response["Location"], {"when": "now"})
    sendout.refresh_from_db()
    assert done["Location"] == again["Location"] == f"/sendouts/{sendout.pk}/"
    assert sendout.status == Sendout.Status.SCHEDULED
    assert len(queued) == 1  # the second click sent nothing more


def test_a_send_time_in_the_past_is_a_form_error(marketer_client, account, recipients):
    sendout = _checked_email_sendout(account, recipients, subject="s", body="<p>b</p>")
    past = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")

    response = marketer_client.post(
        f"/sendouts/{sendout.pk}/checklist/", {"when": "later", "scheduled_at": past}
    )

    assert response.status_code == 200
    assert "Choose a time in the future." in response.content.decode()
    sendout.refresh_from_db()
    assert sendout.status == Sendout.Status.DRAFT


def test_a_sendout_without_subject_shows_the_message(marketer_client, account, recipients):
    campaign = CampaignFactory(account=account)

    response = marketer_client.post(
        "/sendouts/new/",
        {
            "campaign": campaign.pk,
            "recipient_list": recipients.pk,
            "channel": "email",
            "subject": "",
            "body": "<p>Hi</p>",
        },
    )

    assert response.status_code == 200
    assert "An email needs a subject." in response.content.decode()


def test_the_sendout_page_shows_each_message_and_filters_by_status(
    marketer_client, account, recipients
):
    sendout = _checked_email_sendout(account, recipients, subject="Hi", body="<p>Hello</p>")
    sendouts.sendout_confirm(sendout=sendout)
    sendouts.sendout_send(sendout_id=sendout.pk)

    page = marketer_client.get(f"/sendouts/{sendout.pk}/").content.decode()
    page = page.split('data-testid="messages"')[1]
    excluded = marketer_client.get(f"/sendouts/{sendout.pk}/?status=excluded").content.decode()

    assert page.count('<span class="badge ok">sent</span>') == 2
    assert excluded.count("<tr>") == 2  # the header and the one excluded recipient
    assert "No “Marketing sendouts” legal basis" in excluded
    assert SendoutMessage.objects.filter(sendout=sendout).count() == 3


def test_a_scheduled_sendout_can_be_cancelled_before_it_starts(
    marketer_client, account, recipients
):
    sendout = _checked_email_sendout(account, recipients, subject="Hi", body="<p>Hello</p>")
    sendouts.sendout_confirm(sendout=sendout, scheduled_at=timezone.now() + timedelta(days=1))

    marketer_client.post(f"/sendouts/{sendout.pk}/cancel/")

    sendout.refresh_from_db()
    assert sendout.status == Sendout.Status.CANCELLED
    assert sendouts.sendout_send(sendout_id=sendout.pk) is None


def test_the_checklist_runs_the_sync_when_it_is_on(crm_client, crm_account, simulator):
    from consent.models import ConsentSyncCycle

    SuperOfficeConnection.objects.filter(account=crm_account).update(legal_basis_sync_enabled=True)
    started = imports.contact_import_create(
        account=crm_account, source_type="project", source_id=4, enqueue=False
    )
    rl = imports.recipient_list_from_import(
        contact_import=imports.contact_import_run(import_id=started.pk)
    )
    campaign = CampaignFactory(account=crm_account)
    sendout = sendouts.sendout_create(
        account=crm_account,
        campaign=campaign,
        recipient_list=rl,
        channel="email",
        subject="Hi",
        body="<p>Hello</p>",
    )

    page = crm_client.get(f"/sendouts/{sendout.pk}/checklist/").content.decode()

    assert "Synced with SuperOffice" in page
    assert (
        ConsentSyncCycle.objects.filter(
            account=crm_account, kind=ConsentSyncCycle.Kind.ON_DEMAND
        ).count()
        == 1
    )


def test_the_lists_paginate(marketer_client, account):
    for n in range(30):
        RecipientList.objects.create(account=account, name=f"List {n:02d}")

    page = marketer_client.get("/lists/").content.decode()

    assert "Page 1 of 2" in page


# --- The checklist, the sender, the preview and the page that follows the send ------------


def test_the_checklist_leads_with_who_will_receive_it_and_counts_each_left_out_once(
    marketer_client, account
):
    def contact(*, basis: bool, mobile: str):
        made = ContactFactory(account=account, mobile=mobile)
        if basis:
            consent_record(
                account=account,
                contact=made,
                purpose=Purpose.EMARKETING,
                legal_basis="61A",
                origin=Origin.API,
            )
        return made

    people = [
        contact(basis=True, mobile="+4790000001"),
        contact(basis=True, mobile=""),  # no address
        contact(basis=False, mobile=""),  # neither: counted as no legal basis only
        contact(basis=False, mobile="+4790000002"),
    ]
    texted = imports.recipient_list_create(account=account, name="Texted")
    imports.recipient_list_add_contacts(recipient_list=texted, contact_ids=[p.pk for p in people])
    sendout = sendouts.sendout_create(
        account=account,
        campaign=CampaignFactory(account=account),
        recipient_list=texted,
        channel="sms",
        body="Hi {first_name}",
    )

    page = marketer_client.get(f"/sendouts/{sendout.pk}/checklist/").content.decode()

    headline = page.split('class="headline"')[1].split("</p>")[0]
    assert 'data-testid="will-send">1<' in headline and "will receive it" in headline
    assert 'data-testid="recipients">4<' in page and 'data-testid="excluded-total">3<' in page
    assert 'data-testid="no-legal-basis">2<' in page and 'data-testid="no-address">1<' in page
    assert re.search(r'data-testid="confirm"(?! disabled)>', page)
    # "Send at" shows only once "Send at a time" is chosen (static/js/app.js).
    assert '<div id="scheduled-at" data-shown-when="later" hidden>' in page
    assert 'data-controls="scheduled-at"' in page


def test_confirm_is_disabled_when_nobody_would_receive_it(marketer_client, account):
    EmailSenderFactory(account=account)
    nobody = imports.recipient_list_create(account=account, name="Nobody")
    imports.recipient_list_add_contacts(
        recipient_list=nobody, contact_ids=[ContactFactory(account=account).pk]
    )
    sendout = _checked_email_sendout(account, nobody, subject="s", body="<p>b</p>")

    page = marketer_client.get(f"/sendouts/{sendout.pk}/checklist/").content.decode()
    refused = marketer_client.post(f"/sendouts/{sendout.pk}/checklist/", {"when": "now"})

    assert 'data-testid="confirm" disabled>' in page
    assert "Nobody would receive it" in page
    assert refused.status_code == 200 and "Nobody on the list" in refused.content.decode()
    sendout.refresh_from_db()
    assert sendout.status == Sendout.Status.DRAFT


def test_without_a_sender_the_checklist_says_so_and_the_sender_page_sets_it(
    marketer_client, account, recipients
):
    EmailSender.objects.filter(account=account).delete()
    sendout = _checked_email_sendout(account, recipients, subject="s", body="<p>b</p>")
    checklist = f"/sendouts/{sendout.pk}/checklist/"

    page = marketer_client.get(checklist).content.decode()
    saved = marketer_client.post(
        f"/sendouts/sender/?next={checklist}",
        {"from_name": "Acme Events", "from_email": "Events@Acme.example", "reply_to": ""},
    )
    sender_shown = marketer_client.get(checklist).content.decode()
    bad = marketer_client.post("/sendouts/sender/", {"from_name": "", "from_email": "nope"})
    evil = marketer_client.post(
        "/sendouts/sender/?next=https://evil.example/",
        {"from_name": "A", "from_email": "a@acme.example"},
    )

    assert "no sender" in page and 'data-testid="confirm" disabled>' in page
    assert saved["Location"] == checklist
    assert "Acme Events &lt;events@acme.example&gt;" in sender_shown
    assert str(EmailSender.objects.get(account=account)) == "A <a@acme.example>"
    assert bad.status_code == 200 and "Enter a valid email address." in bad.content.decode()
    assert evil["Location"] == "/sendouts/sender/"


def test_the_preview_shows_the_message_as_the_chosen_recipient_gets_it(
    marketer_client, account, recipients, other_account
):
    reader = RecipientListMember.objects.filter(recipient_list=recipients).first().contact
    type(reader).objects.filter(pk=reader.pk).update(first_name="Vera")
    sendout = _checked_email_sendout(
        account, recipients, subject="Hi {first_name}", body="<p>Dear {first_name|reader}</p>"
    )
    url = f"/sendouts/{sendout.pk}/preview/"

    page = marketer_client.get(url, {"contact": reader.pk}).content.decode()
    body = marketer_client.get(f"{url}body/", {"contact": reader.pk})
    stranger = ContactFactory(account=other_account)

    assert 'data-testid="preview-subject">Hi Vera<' in page
    assert f"{url}body/?contact={reader.pk}" in page and "sandbox" in page
    assert "Dear Vera" in body.content.decode() and "/o/" not in body.content.decode()
    # Its own policy: the e-mail's inline styles, pictures from anywhere, no script.
    policy = body["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "'unsafe-inline'" in policy.split("style-src")[1]
    assert "script-src" not in policy and "frame-ancestors 'self'" in policy
    assert body["X-Frame-Options"] == "SAMEORIGIN"
    assert marketer_client.get(url, {"contact": stranger.pk}).status_code == 404


def test_a_test_message_goes_to_the_marketers_own_address(
    marketer_client, marketer, account, recipients
):
    from django.core import mail

    marketer.email = "mia@acme.example"
    marketer.save()
    reader = RecipientListMember.objects.filter(recipient_list=recipients).first().contact
    sendout = _checked_email_sendout(
        account, recipients, subject="Hi {first_name}", body="<p>x</p>"
    )

    response = marketer_client.post(f"/sendouts/{sendout.pk}/test/", {"contact": reader.pk})

    assert response["Location"] == f"/sendouts/{sendout.pk}/preview/?contact={reader.pk}"
    (test,) = mail.outbox
    assert test.to == ["mia@acme.example"] and test.subject == f"[Test] Hi {reader.first_name}"


def test_the_sendout_page_follows_the_send_until_it_is_done(marketer_client, account, recipients):
    sendout = _checked_email_sendout(account, recipients, subject="Hi", body="<p>Hello</p>")
    sendouts.sendout_confirm(sendout=sendout)

    while_due = marketer_client.get(f"/sendouts/{sendout.pk}/").content.decode()
    sendouts.sendout_send(sendout_id=sendout.pk)
    after = marketer_client.get(f"/sendouts/{sendout.pk}/live/").content.decode()

    assert f'hx-get="/sendouts/{sendout.pk}/live/" hx-trigger="every 2s"' in while_due
    assert after.startswith('<div id="sendout-live" data-status="sent">')
    assert 'data-testid="sendout-figures"' in after


def test_a_draft_can_be_changed_and_its_checklist_runs_again(marketer_client, account, recipients):
    sendout = _checked_email_sendout(account, recipients, subject="Hi", body="<p>Hello</p>")

    response = marketer_client.post(
        f"/sendouts/{sendout.pk}/edit/",
        {
            "campaign": sendout.campaign_id,
            "recipient_list": recipients.pk,
            "channel": "email",
            "subject": "Hi {first_name}",
            "body": "<p>Hello again</p>",
        },
    )

    sendout.refresh_from_db()
    assert response["Location"] == f"/sendouts/{sendout.pk}/checklist/"
    assert (sendout.subject, sendout.checklist_at) == ("Hi {first_name}", None)


def test_a_new_sendout_without_recipient_lists_says_to_import_a_selection_first(
    marketer_client, account
):
    from django.urls import reverse

    from campaigns.models import RecipientList

    html = marketer_client.get(reverse("campaigns:sendout_create")).content.decode()
    assert "Import a selection first" in html
    assert f'href="{reverse("campaigns:import_create")}"' in html

    RecipientList.objects.create(account=account, name="Webinar guests")
    html = marketer_client.get(reverse("campaigns:sendout_create")).content.decode()
    assert "Import a selection first" not in html
