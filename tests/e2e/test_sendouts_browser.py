"""A marketer sends a personalised e-mail from the browser: sets the sender, writes the
sendout with merge fields, reads the checklist, previews it as one recipient, sends a
test to herself and sends it; the sendout page follows the send to "sent" by itself. A
recipient reads the mail (Django's locmem backend), opens it, clicks, and unsubscribes
with its link; another with the mail program's one-click POST; the withdrawals reach
SuperOffice within seconds, through the consent outbox. A visitor signs up on a form's
own page with its consent box ticked, and that consent reaches SuperOffice too.

A real Celery worker, the real client over HTTP to the simulator. With E2E_SCREENSHOTS
set to a folder, the checklist, the preview, the statistics and the recipients' pages
are saved there as PNG files.
"""

import html
import os
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail
from playwright.sync_api import expect

from automations.models import AutomationType, Run, RunStatus
from campaigns import imports
from campaigns.models import Contact, EventType, Sendout, TrackedLink
from campaigns.selectors import recipient_list_contacts
from consent.models import ConsentChange, CurrentConsent, Origin, Purpose
from consent.rules import WITHDRAWN
from crm.models import SuperOfficeConnection
from crm.services import client_for_account
from emhub.celery import app
from emhub.models import Membership
from tests.automations.factories import AutomationFactory
from tests.campaigns.factories import CampaignFactory
from tests.factories import DEFAULT_PASSWORD, MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# A person's browser: headless Chromium's own user agent is a mail scanner's to the hub.
PERSON_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
OFFER = "https://www.example.com/summit/programme"
BODY = (
    "<html><body><p>Hi {first_name|there},</p><p>{company|Your team} is invited to the "
    f'summit.</p><p><a href="{OFFER}">See the programme</a></p></body></html>'
)


def _screenshot(page, name: str) -> None:
    folder = os.environ.get("E2E_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


@pytest.fixture
def purged_queue():
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")


@pytest.fixture
def worker():
    """worker.start() runs a Celery worker (threads) until the test ends."""
    stack = ExitStack()

    class Worker:
        @staticmethod
        def start():
            stack.enter_context(
                start_worker(
                    app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING"
                )
            )

    yield Worker
    stack.close()


def _wait(predicate, *, message: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message
        time.sleep(0.5)


@pytest.fixture
def synced_account(crm_account):
    SuperOfficeConnection.objects.filter(account=crm_account).update(legal_basis_sync_enabled=True)
    return crm_account


@pytest.fixture
def invitees(synced_account, simulator):
    """Project 1's persons with the e-marketing switch on, imported and saved as a list."""
    started = imports.contact_import_create(
        account=synced_account,
        source_type="project",
        source_id=1,
        only_emarketing=True,
        enqueue=False,
    )
    done = imports.contact_import_run(import_id=started.pk)
    assert done.created >= 3
    return imports.recipient_list_from_import(contact_import=done, name="Summit invitees")


def _sign_in(page, live_server, account):
    user = UserFactory(username="mia", email="mia@crm-acme.example")
    MembershipFactory(user=user, account=account, role=Membership.Role.MARKETER)
    page.goto(f"{live_server.url}/sign-in/")
    page.fill("input[name=username]", "mia")
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("nav.mainnav")


def _html(message) -> str:
    return next(body for body, kind in message.alternatives if kind == "text/html")


def test_a_personalised_sendout_is_previewed_tested_sent_and_unsubscribed_from(
    page,
    browser,
    live_server,
    settings,
    synced_account,
    simulator,
    invitees,
    purged_queue,
    worker,
):
    settings.EMHUB_PUBLIC_URL = live_server.url
    settings.LINK_SCANNER_SECONDS = 1
    campaign = CampaignFactory(account=synced_account, name="Spring summit")
    link = TrackedLink.objects.create(
        account=synced_account, campaign=campaign, name="Programme", url=OFFER
    )
    # A click puts the reader into SuperOffice's selection 1.
    AutomationFactory(
        account=synced_account,
        campaign=campaign,
        name="Follow up the summit",
        type=AutomationType.ADD_TO_SELECTION,
        trigger_event_type=EventType.LINK_CLICKED,
        trigger_link=link,
        settings={"selection_id": 1},
    )
    recipients = list(recipient_list_contacts(recipient_list=invitees).order_by("email"))
    # One invitee withdraws in SuperOffice; the checklist's sync brings that in.
    withdrawn = recipients.pop()
    client_for_account(synced_account).withdraw_consent(
        person_id=withdrawn.superoffice_person_id, purpose_key="EMARKETING"
    )
    _sign_in(page, live_server, synced_account)

    # The sender, on the Sender tab.
    page.goto(f"{live_server.url}/sendouts/sender/")
    page.fill("input[name=from_name]", "Acme Events")
    page.fill("input[name=from_email]", "events@crm-acme.example")
    page.click("button:has-text('Save sender')")
    expect(page.locator("[data-testid=current-sender]")).to_have_text(
        "Acme Events <events@crm-acme.example>"
    )

    # The sendout, with merge fields.
    page.goto(f"{live_server.url}/sendouts/new/")
    page.select_option("#id_campaign", label="Spring summit")
    page.select_option("#id_recipient_list", label="Summit invitees")
    page.fill("#id_subject", "Spring news for {first_name|you}")
    page.fill("#id_body", BODY)
    page.click("button:has-text('Continue to the checklist')")

    # The checklist leads with who will receive it; "Send at" only for a scheduled send.
    expect(page.locator("main h1")).to_contain_text("Checklist")
    expect(page.locator(".headline")).to_have_text(f"{len(recipients)} will receive it")
    expect(page.locator("[data-testid=no-legal-basis]")).to_have_text("1")
    expect(page.locator("[data-testid=excluded-no_legal_basis]")).to_contain_text(withdrawn.email)
    expect(page.locator("[data-testid=sender]")).to_contain_text("Acme Events")
    expect(page.locator("[data-testid=confirm]")).to_be_enabled()
    expect(page.locator("#id_scheduled_at")).to_be_hidden()
    page.check("input[name=when][value=later]")
    expect(page.locator("#id_scheduled_at")).to_be_visible()
    page.check("input[name=when][value=now]")
    expect(page.locator("#id_scheduled_at")).to_be_hidden()
    _screenshot(page, "sendout-checklist.png")

    # The preview, as the second recipient of the list.
    reader = recipients[1]
    page.click("[data-testid=preview-link]")
    page.click(f"[data-testid=preview-recipients] a[href*='contact={reader.pk}']")
    expect(page.locator("[data-testid=preview-subject]")).to_have_text(
        f"Spring news for {reader.first_name or 'you'}"
    )
    frame = page.frame_locator("[data-testid=preview-frame]")
    expect(frame.locator("body")).to_contain_text(f"Hi {reader.first_name or 'there'},")
    expect(frame.locator("body")).to_contain_text("Unsubscribe")
    _screenshot(page, "sendout-preview.png")

    # A test to the marketer's own address, as that recipient would get it.
    page.click("[data-testid=test-send]")
    expect(page.locator(".messages")).to_contain_text("Test sent to mia@crm-acme.example")
    (test,) = mail.outbox
    assert test.to == ["mia@crm-acme.example"]
    assert test.subject == f"[Test] Spring news for {reader.first_name or 'you'}"

    # Confirm; the page follows the send by itself once a worker takes it.
    page.click("text=Back to the checklist")
    page.click("[data-testid=confirm]")
    sendout = Sendout.objects.get(account=synced_account)
    expect(page.locator("[data-testid=sendout-status]")).to_have_text("scheduled")
    page.evaluate("() => { window.stayedOnThePage = true; }")
    worker.start()
    expect(page.locator("[data-testid=sendout-status]")).to_have_text("sent", timeout=60_000)
    assert page.evaluate("() => window.stayedOnThePage === true"), "the page was reloaded"
    expect(page.locator("[data-figure=delivered] .stat")).to_have_text(str(len(recipients)))

    # Each recipient's mail has their own fields and a way out.
    sent = {m.to[0]: m for m in mail.outbox[1:]}
    assert set(sent) == {r.email for r in recipients}
    message = sent[reader.email]
    assert message.subject == f"Spring news for {reader.first_name or 'you'}"
    assert f"Hi {html.escape(reader.first_name or 'there')}," in _html(message)
    assert message.from_email == "Acme Events <events@crm-acme.example>"
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = message.extra_headers["List-Unsubscribe"].strip("<>")
    assert f'href="{unsubscribe}"' in _html(message)

    # Three readers' mail programs show it (the open pixel loads) and, after the scanner
    # window, two of them click the programme.
    time.sleep(1.2)
    for number, contact in enumerate(recipients[1:4]):
        reading = browser.new_page(user_agent=PERSON_AGENT)
        with reading.expect_response(lambda r: "/o/" in r.url) as opened:
            reading.set_content(_html(sent[contact.email]))
        assert opened.value.status == 200
        if number < 2:
            with reading.expect_response(lambda r: "/t/" in r.url) as clicked:
                try:
                    reading.click("text=See the programme")
                except Exception as exc:  # noqa: BLE001 - the destination is on the internet
                    assert "ERR_" in str(exc), exc
            assert clicked.value.status == 302
            assert clicked.value.headers["location"] == OFFER
        reading.close()
    recipient_page = browser.new_page(user_agent=PERSON_AGENT)

    # …and unsubscribes with the link: the page asks first, the button withdraws.
    recipient_page.goto(unsubscribe)
    expect(recipient_page.locator("h1")).to_have_text("Unsubscribe?")
    _screenshot(recipient_page, "unsubscribe.png")
    assert CurrentConsent.objects.get(contact=reader, purpose=Purpose.EMARKETING).legal_basis != (
        WITHDRAWN
    )
    recipient_page.click("[data-testid=unsubscribe-button]")
    expect(recipient_page.locator("h1")).to_have_text("You are unsubscribed")
    recipient_page.close()
    current = CurrentConsent.objects.get(contact=reader, purpose=Purpose.EMARKETING)
    assert (current.legal_basis, current.origin) == (WITHDRAWN, Origin.UNSUBSCRIBE)

    # Another recipient's mail program unsubscribes in one click: a POST, no page.
    other = recipients[0]
    one_click = sent[other.email].extra_headers["List-Unsubscribe"].strip("<>")
    answer = page.context.request.post(one_click, multipart={"List-Unsubscribe": "One-Click"})
    assert answer.status == 200
    assert CurrentConsent.objects.get(contact=other, purpose=Purpose.EMARKETING).legal_basis == (
        WITHDRAWN
    )

    # Both withdrawals reach SuperOffice within seconds, through the consent outbox.
    def withdrawn_in_superoffice(contact) -> bool:
        consent = simulator.state(f"consents/{contact.superoffice_person_id}")["EMARKETING"]
        return consent["legal_base"] == WITHDRAWN

    _wait(
        lambda: all(withdrawn_in_superoffice(c) for c in (reader, other)),
        message="the withdrawals did not reach SuperOffice",
    )
    # The clicks' runs are done by the same worker.
    done = Run.objects.filter(automation__name="Follow up the summit", status=RunStatus.DONE)
    _wait(lambda: done.count() == 2, message="the clicks' runs were not done")

    # The statistics: the opens, the people's clicks and their run, the two unsubscribes.
    page.goto(f"{live_server.url}/sendouts/{sendout.pk}/")
    expect(page.locator("[data-figure=opens] .stat")).to_have_text("3")
    expect(page.locator("[data-figure=clicks] .stat")).to_have_text("2")
    expect(page.locator("[data-figure=unsubscribed] .stat")).to_have_text("2")
    link_row = page.locator("[data-testid=link-figures] tr[data-link] td")
    expect(link_row.nth(1)).to_have_text("2")
    expect(link_row.nth(4)).to_have_text("2")  # the automation's runs, one per click
    expect(page.locator("[data-testid=sendout-runs]")).to_contain_text("Done: 2")
    page.wait_for_function("() => document.querySelector('#sendout-timeline').dataset.drawn")
    _screenshot(page, "sendout-statistics.png")


def test_a_visitor_signs_up_on_a_forms_own_page_with_its_consent_box(
    page, browser, live_server, settings, synced_account, simulator, purged_queue, worker
):
    settings.EMHUB_PUBLIC_URL = live_server.url
    campaign = CampaignFactory(account=synced_account, name="Spring summit")
    person = simulator.state("persons/4")
    known = Contact.objects.create(
        account=synced_account,
        email=person["Emails"][0].lower(),
        superoffice_person_id=person["PersonId"],
    )
    before = simulator.state(f"consents/{person['PersonId']}").get("EMARKETING") or {}
    assert before.get("source") != "WEBFORM"
    _sign_in(page, live_server, synced_account)

    # The marketer makes the form and chooses what its page asks.
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/forms/")
    page.fill("input[name=name]", "Summit sign-up")
    page.check("input[name=published]")
    page.click("button:has-text('Create form')")
    # A new form asks for the names; this one wants the company instead of the last name.
    expect(page.locator("input[name=field_names][value=first_name]")).to_be_checked()
    page.uncheck("input[name=field_names][value=last_name]")
    page.check("input[name=field_names][value=company_name]")
    page.check("input[name=consent_emarketing]")
    page.fill("textarea[name=consent_emarketing_text]", "Yes, send me news about the summit.")
    page.fill("textarea[name=thanks_message]", "See you at the summit!")
    page.click("button:has-text('Save the page')")
    expect(page.locator(".messages")).to_contain_text("is saved")
    address = page.get_attribute("[data-testid=hosted-url]", "href")

    # A visitor signs up on it and ticks the box.
    visitor = browser.new_page(user_agent=PERSON_AGENT)
    visitor.goto(address)
    expect(visitor.locator("h1")).to_have_text("Summit sign-up")
    expect(visitor.locator("input[name=last_name]")).to_have_count(0)
    visitor.fill("input[name=email]", known.email)
    visitor.fill("input[name=first_name]", "Someone else")
    visitor.check("input[name=consent_emarketing]")
    _screenshot(visitor, "hosted-form.png")
    visitor.click("button:has-text('Send')")
    expect(visitor.locator("[data-testid=thanks-message]")).to_have_text("See you at the summit!")
    visitor.close()

    change = ConsentChange.objects.get(contact=known, origin=Origin.FORM)
    assert (change.purpose, change.legal_basis) == (Purpose.EMARKETING, "61A")
    assert "Yes, send me news about the summit." in change.reason
    known.refresh_from_db()
    assert known.first_name == ""  # a public form never rewrites a contact's details

    worker.start()

    def in_superoffice():
        return simulator.state(f"consents/{person['PersonId']}").get("EMARKETING", {})

    _wait(
        lambda: in_superoffice().get("legal_base") == "61A",
        message="the form's consent did not reach SuperOffice",
    )
    assert in_superoffice()["source"] == "WEBFORM"
