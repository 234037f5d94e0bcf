"""The web panels as SuperOffice shows them: inside an iframe of a page from another site,
signed in through the simulator's identity provider in a pop-up, then used.

The "SuperOffice" page is served from http://127.0.0.1:<port>; the hub runs on
http://localhost:<port>, so the panel is a cross-site frame, as in SuperOffice Online.
"""

from __future__ import annotations

import html
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from automations.models import AutomationType, Run, RunStatus
from campaigns.models import EventType
from crm.models import SuperOfficeConnection
from crm.simulator import idp
from tests.leads.factories import (
    AutomationFactory,
    CampaignFactory,
    ContactFactory,
    EventFactory,
    FormFactory,
    PanelSettingsFactory,
    TrackedLinkFactory,
    waiting_runs,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPO_ROOT = Path(__file__).resolve().parents[2]

SAM = 2  # "Sam Seller" in the simulated tenant


class _FramingPage(BaseHTTPRequestHandler):
    """GET /?src=<url>: a page that frames <url>, as SuperOffice frames a web panel."""

    def do_GET(self):  # noqa: N802
        src = parse_qs(urlsplit(self.path).query).get("src", [""])[0]
        body = (
            "<!doctype html><html><head><title>SuperOffice CRM</title></head><body>"
            "<h1>SuperOffice CRM (stand-in)</h1>"
            f'<iframe id="panel" src="{html.escape(src)}" width="1100" height="800"></iframe>'
            "</body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002
        return


@pytest.fixture
def superoffice_host():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FramingPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def panel(crm_account, simulator, superoffice_host):
    return PanelSettingsFactory(
        account=crm_account,
        context_identifier=simulator.context_identifier,
        frame_ancestors=superoffice_host,
        oidc_issuer=simulator.root_url,
        oidc_client_id=idp.CLIENT_ID,
        oidc_client_secret=simulator.app_token,
    )


@pytest.fixture
def worker(transactional_db, settings):
    """A real Celery worker on the test broker, in this process, so resumed runs execute."""
    from celery.contrib.testing.worker import start_worker

    from emhub.celery import app

    settings.AUTOMATIONS_RETRY_BASE_SECONDS = 0.2
    settings.AUTOMATIONS_RETRY_CAP_SECONDS = 1.0
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")
    with start_worker(
        app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        shutdown_timeout=30,
        loglevel="WARNING",
    ) as started:
        yield started


def _wait_until(predicate, timeout=20.0, message=""):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out: {message}")
        time.sleep(0.2)


def _open_in_superoffice(page, host, live_server, panel, name, **params):
    url = live_server.url + reverse(name, kwargs={"panel_key": panel.panel_key})
    url += "?" + urlencode({**params, "usid": SAM})
    page.goto(f"{host}/?{urlencode({'src': url})}")
    return page.frame_locator("#panel")


def _screenshot(target, name: str) -> None:
    """Save a page, or one element of a framed panel (the frame clips the page's own
    screenshot), when E2E_SCREENSHOTS names a folder."""
    folder = os.environ.get("E2E_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        path = str(Path(folder) / name)
        if hasattr(target, "goto"):
            target.screenshot(path=path, full_page=True)
        else:
            target.screenshot(path=path)


def _sign_in(page, frame, who="Sam Seller"):
    with page.expect_popup() as popup_info:
        frame.get_by_role("button", name="Sign in with SuperOffice").click()
    popup = popup_info.value
    # Listen before clicking: the pop-up may close before a later wait would start.
    with popup.expect_event("close"):
        popup.get_by_role("button", name=re.compile(who)).click()
    expect(frame.locator(f'[data-associate="{SAM}"]')).to_be_visible()


def test_a_rep_signs_in_and_matches_a_queued_contact_whose_run_then_makes_a_sale(
    page, live_server, superoffice_host, panel, simulator, worker
):
    account = panel.account
    person = simulator.state("persons/5")
    contact = ContactFactory(
        account=account,
        email=person["Emails"][0],
        first_name=person["Firstname"],
        last_name=person["Lastname"],
    )
    automation = AutomationFactory(
        account=account,
        campaign=CampaignFactory(account=account, name="Autumn webinar"),
        name="Sale on demo request",
        type=AutomationType.CREATE_SALE,
        trigger_event_type=EventType.FORM_SUBMITTED,
        settings={"description": "Demo requested", "source_id": 1},
    )
    [run] = waiting_runs(account, contact, automation=automation)

    frame = _open_in_superoffice(page, superoffice_host, live_server, panel, "leads:queue")
    expect(frame.get_by_text("Sign in with SuperOffice to see this panel.")).to_be_visible()
    expect(frame.get_by_text(contact.email)).to_have_count(0)
    _sign_in(page, frame)

    entry = frame.locator(f'[data-contact="{contact.id}"]')
    expect(entry).to_contain_text("Sale on demo request")
    expect(entry).to_contain_text("Autumn webinar")
    _screenshot(page, "queue.png")
    entry.get_by_role("button", name="Find in SuperOffice").click()
    candidate = entry.locator('tr[data-person="5"]')
    expect(candidate).to_contain_text("Same email")
    candidate.get_by_role("button", name="Match…").click()
    # Before the match: the person as SuperOffice has it, and the run that resumes.
    preview = entry.locator(".match-preview")
    expect(preview).to_contain_text(f"{person['Firstname']} {person['Lastname']}")
    expect(preview).to_contain_text("Sale on demo request")
    _screenshot(preview, "queue-match-preview.png")
    preview.get_by_role("button", name=re.compile("^Match to")).click()
    expect(entry).to_contain_text("1 waiting run(s) resumed")
    # The run is held for the undo window; the rep lets it go at once.
    entry.get_by_role("button", name="Go now").click()
    expect(entry).to_contain_text("1 run(s) going on now")

    _wait_until(lambda: Run.objects.get(id=run.id).status == RunStatus.DONE, message="run executed")
    run.refresh_from_db()
    sales = [s for s in simulator.state("sales") if run.marker in str(s)]
    assert [s["SaleId"] for s in sales] == [run.crm_object_id]
    contact.refresh_from_db()
    assert contact.superoffice_person_id == 5

    # The sale card's Event details panel tells where the sale came from.
    frame = _open_in_superoffice(
        page, superoffice_host, live_server, panel, "leads:event_details", said=run.crm_object_id
    )
    # Plain http and a cross-site frame: the browser keeps no cookie or storage for the
    # panel, so a new panel load signs in again (over https a partitioned cookie keeps it).
    _sign_in(page, frame)
    details = frame.locator(f'[data-run="{run.id}"]')
    expect(details).to_contain_text("Sale on demo request")
    expect(details).to_contain_text("Autumn webinar")
    expect(details).to_contain_text("Form submitted")
    expect(details).to_contain_text(contact.email)


def test_a_match_by_a_number_superoffice_does_not_have_is_refused_in_plain_words(
    page, live_server, superoffice_host, panel
):
    contact = ContactFactory(account=panel.account, email="kari@example.com")
    waiting_runs(panel.account, contact)
    frame = _open_in_superoffice(page, superoffice_host, live_server, panel, "leads:queue")
    _sign_in(page, frame)

    entry = frame.locator(f'[data-contact="{contact.id}"]')
    entry.get_by_role("button", name="Find in SuperOffice").click()
    entry.get_by_label("SuperOffice person number").fill("9999")
    entry.get_by_role("button", name="Look up by number").click()

    expect(entry.locator(".match-preview")).to_have_text("SuperOffice has no person 9999.")
    expect(entry.get_by_role("button", name=re.compile("^Match to"))).to_have_count(0)
    contact.refresh_from_db()
    assert contact.superoffice_person_id is None


def test_a_match_to_a_person_with_another_name_needs_a_confirmation(
    page, live_server, superoffice_host, panel, simulator
):
    person = simulator.state("persons/5")
    contact = ContactFactory(
        account=panel.account, email="kari@example.com", first_name="Kari", last_name="Nordmann"
    )
    waiting_runs(panel.account, contact)
    frame = _open_in_superoffice(page, superoffice_host, live_server, panel, "leads:queue")
    _sign_in(page, frame)

    entry = frame.locator(f'[data-contact="{contact.id}"]')
    entry.get_by_role("button", name="Find in SuperOffice").click()
    entry.get_by_label("SuperOffice person number").fill("5")
    entry.get_by_role("button", name="Look up by number").click()
    preview = entry.locator(".match-preview")
    expect(preview).to_contain_text("The name differs")
    expect(preview).to_contain_text("The e-mail differs")
    match = preview.get_by_role("button", name=re.compile("^Match to"))
    match.click()
    # The browser holds the form back until the box is ticked.
    expect(preview).to_be_visible()
    contact.refresh_from_db()
    assert contact.superoffice_person_id is None
    preview.get_by_label("This is the same person").check()
    match.click()
    expect(entry).to_contain_text("1 waiting run(s) resumed")
    contact.refresh_from_db()
    assert contact.superoffice_person_id == 5
    assert person["Lastname"] != "Nordmann"


def test_a_rep_undoes_a_match_and_the_contact_waits_in_the_queue_again(
    page, live_server, superoffice_host, panel, simulator
):
    person = simulator.state("persons/5")
    contact = ContactFactory(
        account=panel.account,
        email=person["Emails"][0],
        first_name=person["Firstname"],
        last_name=person["Lastname"],
    )
    [run] = waiting_runs(panel.account, contact)
    frame = _open_in_superoffice(page, superoffice_host, live_server, panel, "leads:queue")
    _sign_in(page, frame)

    entry = frame.locator(f'[data-contact="{contact.id}"]')
    entry.get_by_role("button", name="Find in SuperOffice").click()
    entry.locator('tr[data-person="5"]').get_by_role("button", name="Match…").click()
    entry.get_by_role("button", name=re.compile("^Match to")).click()
    expect(entry).to_contain_text("1 waiting run(s) resumed")
    entry.get_by_role("button", name="Undo match").click()

    expect(entry).to_contain_text("Match undone; 1 run(s) wait for a match again")
    contact.refresh_from_db()
    assert contact.superoffice_person_id is None
    assert Run.objects.get(id=run.id).status == RunStatus.WAITING_FOR_MATCH


def test_a_rep_approves_a_lead_and_the_person_and_company_appear_in_superoffice(
    page, live_server, superoffice_host, panel, simulator, worker
):
    account = panel.account
    SuperOfficeConnection.objects.filter(account=account).update(allow_company_creation=True)
    campaign = CampaignFactory(account=account, name="Spring launch")
    form = FormFactory(account=account, campaign=campaign, name="Contact us")
    lead = ContactFactory(
        account=account,
        email="ingrid.ny@fjordtech.example",
        first_name="Ingrid",
        last_name="Ny",
        title="CEO",
        company_name="Fjordtech AS",
    )
    EventFactory(
        account=account,
        campaign=campaign,
        contact=lead,
        form=form,
        type=EventType.FORM_SUBMITTED,
    )
    automation = AutomationFactory(
        account=account,
        campaign=campaign,
        name="Add to newsletter selection",
        type=AutomationType.ADD_TO_SELECTION,
        trigger_event_type=EventType.FORM_SUBMITTED,
        settings={"selection_id": 2},
    )
    [run] = waiting_runs(account, lead, automation=automation)

    frame = _open_in_superoffice(page, superoffice_host, live_server, panel, "leads:lead_report")
    _sign_in(page, frame)

    entry = frame.locator(f'[data-contact="{lead.id}"]')
    expect(entry).to_contain_text("Contact us")
    _screenshot(page, "lead-report.png")
    entry.get_by_role("button", name="Approve…").click()
    entry.get_by_label("Mobile").fill("+47 911 22 333")
    entry.get_by_label("Country").select_option(label="Norway")
    entry.get_by_role("button", name="Create in SuperOffice").click()
    expect(entry).to_contain_text("Approved — SuperOffice person #")

    lead.refresh_from_db()
    person = simulator.state(f"persons/{lead.superoffice_person_id}")
    assert person["Emails"] == ["ingrid.ny@fjordtech.example"]
    assert person["MobilePhones"] == ["+47 911 22 333"]
    company = simulator.state(f"companies/{person['ContactId']}")
    assert (company["Name"], company["CountryId"]) == ("Fjordtech AS", 47)
    _wait_until(lambda: Run.objects.get(id=run.id).status == RunStatus.DONE, message="run executed")
    assert lead.superoffice_person_id in simulator.state("selections/2")["members"]


def _panel_frame(page, path_part: str):
    return next(f for f in page.frames if path_part in f.url)


def _mark_page(frame) -> None:
    """Leave a mark on the loaded page: a reload or a new page would lose it."""
    frame.evaluate("window.emhubNoReload = 'kept'")


def _page_kept(frame) -> bool:
    return frame.evaluate("window.emhubNoReload") == "kept"


def _two_leads(account):
    campaign = CampaignFactory(account=account, name="Spring launch")
    form = FormFactory(account=account, campaign=campaign, name="Contact us")
    leads = []
    for email, first in (("ingrid.ny@fjordtech.example", "Ingrid"), ("ola@havet.example", "Ola")):
        lead = ContactFactory(
            account=account,
            email=email,
            first_name=first,
            last_name="Ny",
            company_name=f"{first} AS",
        )
        EventFactory(
            account=account,
            campaign=campaign,
            contact=lead,
            form=form,
            type=EventType.FORM_SUBMITTED,
        )
        leads.append(lead)
    return leads


def test_a_lead_card_changes_in_place_after_approve_without_a_reload(
    page, live_server, superoffice_host, panel, simulator
):
    # The approve form proposes a new company named as the lead's: nothing to pick.
    SuperOfficeConnection.objects.filter(account=panel.account).update(allow_company_creation=True)
    approved, other = _two_leads(panel.account)
    frame = _open_in_superoffice(page, superoffice_host, live_server, panel, "leads:lead_report")
    _sign_in(page, frame)
    panel_frame = _panel_frame(page, "/leads/")
    _mark_page(panel_frame)

    card = frame.locator(f'[data-contact="{approved.id}"]')
    card.get_by_role("button", name="Approve…").click()
    card.get_by_role("button", name="Create in SuperOffice").click()

    expect(card).to_have_attribute("data-state", "approved")
    expect(card.get_by_test_id("lead-outcome")).to_contain_text("Approved — SuperOffice person #")
    # Only that card changed: the other lead is still listed, waiting, and the page is the same.
    expect(frame.locator(f'[data-contact="{other.id}"]')).to_have_attribute("data-state", "waiting")
    expect(card.get_by_role("button", name="Approve…")).to_have_count(0)
    assert _page_kept(panel_frame)
    _screenshot(card, "lead-report-approved.png")
    approved.refresh_from_db()
    person = simulator.state(f"persons/{approved.superoffice_person_id}")
    assert person["Emails"] == ["ingrid.ny@fjordtech.example"]
    expect(card).to_contain_text(
        f"person #{approved.superoffice_person_id} created with company Ingrid AS"
    )


def test_a_rejected_lead_card_changes_in_place_and_the_rejection_is_undone(
    page, live_server, superoffice_host, panel
):
    from leads.models import LeadDecision

    rejected, other = _two_leads(panel.account)
    frame = _open_in_superoffice(page, superoffice_host, live_server, panel, "leads:lead_report")
    _sign_in(page, frame)
    panel_frame = _panel_frame(page, "/leads/")
    _mark_page(panel_frame)

    card = frame.locator(f'[data-contact="{rejected.id}"]')
    card.get_by_label("Reason to reject").fill("Student")
    card.get_by_role("button", name="Reject").click()

    expect(card).to_have_attribute("data-state", "rejected")
    expect(card.get_by_test_id("lead-outcome")).to_have_text("Rejected: Student.")
    expect(frame.locator(f'[data-contact="{other.id}"]')).to_have_attribute("data-state", "waiting")
    _screenshot(card, "lead-report-rejected.png")
    decision = LeadDecision.objects.get(contact=rejected)
    assert (decision.outcome, decision.undone_at) == (LeadDecision.Outcome.REJECTED, None)

    card.get_by_role("button", name="Undo").click()

    expect(card).to_have_attribute("data-state", "waiting")
    expect(card).to_contain_text("Rejection undone")
    expect(card).to_contain_text("Contact us")
    expect(card.get_by_role("button", name="Approve…")).to_be_visible()
    assert _page_kept(panel_frame)
    decision.refresh_from_db()
    assert decision.undone_at is not None and decision.undone_by_associate_id == SAM
    # Back in the report for good: a new load of the panel lists it again.
    frame = _open_in_superoffice(page, superoffice_host, live_server, panel, "leads:lead_report")
    _sign_in(page, frame)
    expect(frame.locator(f'[data-contact="{rejected.id}"]')).to_have_attribute(
        "data-state", "waiting"
    )


def test_a_bulk_match_follows_its_work_in_place_until_done(
    page, live_server, superoffice_host, panel, simulator, worker
):
    person = simulator.state("persons/7")
    exact = ContactFactory(account=panel.account, email=person["Emails"][0])
    unknown = ContactFactory(account=panel.account, email="nobody-in-crm@example.org")
    left_out = ContactFactory(
        account=panel.account, email=simulator.state("persons/5")["Emails"][0]
    )
    for contact in (exact, unknown, left_out):
        waiting_runs(panel.account, contact)
    frame = _open_in_superoffice(page, superoffice_host, live_server, panel, "leads:queue")
    _sign_in(page, frame)
    panel_frame = _panel_frame(page, "/queue/")
    _mark_page(panel_frame)

    # Every waiting contact is ticked; the rep leaves one out.
    frame.get_by_label(f"Select {left_out.email} for Match selected").uncheck()
    frame.get_by_role("button", name="Match selected by exact e-mail").click()

    progress = frame.get_by_test_id("bulk-progress")
    expect(progress).to_have_attribute("data-state", "done", timeout=30_000)
    expect(progress).to_have_text("Done: 1 matched by exact e-mail; 1 left for you.")
    card = frame.locator(f'[data-contact="{exact.id}"]')
    expect(card).to_contain_text("Matched by exact e-mail to SuperOffice person #7")
    expect(card.get_by_role("button", name="Undo match")).to_be_visible()
    expect(frame.locator(f'[data-contact="{unknown.id}"]')).to_contain_text("Find in SuperOffice")
    assert _page_kept(panel_frame)
    _screenshot(frame.locator("#panel-root"), "queue-bulk-match-done.png")
    for contact, person_id in ((exact, 7), (unknown, None), (left_out, None)):
        contact.refresh_from_db()
        assert contact.superoffice_person_id == person_id


def test_a_rep_approves_a_lead_under_a_company_chosen_by_name(
    page, live_server, superoffice_host, panel, simulator
):
    account = panel.account
    campaign = CampaignFactory(account=account, name="Spring launch")
    lead = ContactFactory(account=account, email="ola@kunde.example", last_name="Kunde")
    EventFactory(account=account, campaign=campaign, contact=lead, type=EventType.LINK_CLICKED)
    company = simulator.state("companies/3")
    word = company["Name"].split()[1]

    frame = _open_in_superoffice(page, superoffice_host, live_server, panel, "leads:lead_report")
    _sign_in(page, frame)
    entry = frame.locator(f'[data-contact="{lead.id}"]')
    entry.get_by_role("button", name="Approve…").click()
    picker = entry.get_by_label("Existing company: type part of its name")
    expect(picker).to_be_visible()
    # htmx binds a swapped-in element's triggers when the swap settles (20 ms later): typing
    # before that fires an input event nobody listens to, which no person types fast enough
    # to do.
    expect(entry.locator(".candidates")).not_to_have_class(re.compile(r"\bhtmx-settling\b"))
    picker.fill(word.lower())
    entry.get_by_role("button", name=f"{company['Name']} no. 3", exact=True).click()
    expect(entry.get_by_test_id("chosen-company")).to_have_text(company["Name"])
    entry.get_by_role("button", name="Create in SuperOffice").click()
    expect(entry).to_contain_text("Approved — SuperOffice person #")

    lead.refresh_from_db()
    assert simulator.state(f"persons/{lead.superoffice_person_id}")["ContactId"] == 3


def test_a_rep_reads_a_persons_timeline_on_the_person_card(
    page, live_server, superoffice_host, panel
):
    account = panel.account
    campaign = CampaignFactory(account=account, name="Newsletter")
    link = TrackedLinkFactory(account=account, campaign=campaign, name="Pricing page")
    contact = ContactFactory(account=account, superoffice_person_id=5)
    for _ in range(3):
        EventFactory(account=account, campaign=campaign, contact=contact)
    EventFactory(
        account=account,
        campaign=campaign,
        contact=contact,
        link=link,
        type=EventType.LINK_CLICKED,
    )

    frame = _open_in_superoffice(
        page, superoffice_host, live_server, panel, "leads:timeline", atid=5
    )
    _sign_in(page, frame)

    expect(frame.locator("#timeline-count")).to_have_text("4 interactions")
    # The panel token came in a header: it is in no URL the browser, logs or Referer see.
    assert all("pt=" not in f.url for f in page.frames)
    expect(frame.locator("#timeline-chart")).to_be_visible()
    expect(frame.locator("#timeline")).to_contain_text("Link “Pricing page”")
    frame.get_by_label("Type").select_option(label="Link clicked")
    expect(frame.locator("#timeline-count")).to_have_text("1 interaction")


def _timeline_with_events(panel):
    account = panel.account
    campaign = CampaignFactory(account=account, name="Newsletter")
    contact = ContactFactory(account=account, superoffice_person_id=5)
    for _ in range(3):
        EventFactory(account=account, campaign=campaign, contact=contact)


def _chart_drawn(target) -> bool:
    # Chart.js keeps the chart it drew on a canvas; an undrawn canvas has none.
    return target.locator("#timeline-chart").evaluate(
        "c => !!(window.Chart && window.Chart.getChart(c))"
        " && c.width > 0 && c.toDataURL() !== document.createElement('canvas').toDataURL()"
    )


def test_a_panel_opened_on_its_own_signs_in_after_the_pop_up_closes(page, live_server, panel):
    _timeline_with_events(panel)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    url = live_server.url + reverse("leads:timeline", kwargs={"panel_key": panel.panel_key})
    page.goto(url + "?" + urlencode({"atid": 5, "usid": SAM}))
    with page.expect_popup() as popup_info:
        page.get_by_role("button", name="Sign in with SuperOffice").click()
    popup = popup_info.value
    with popup.expect_event("close"):
        popup.get_by_role("button", name=re.compile("Sam Seller")).click()
    expect(page.locator(f'[data-associate="{SAM}"]')).to_be_visible()
    expect(page.locator("#timeline-count")).to_have_text("3 interactions")
    # The Timeline chart is drawn on this first load, with no script error.
    _wait_until(lambda: _chart_drawn(page), message="the chart was not drawn")
    assert errors == []


def test_the_timeline_chart_draws_on_the_first_load_in_a_frame(
    page, live_server, superoffice_host, panel
):
    _timeline_with_events(panel)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    frame = _open_in_superoffice(
        page, superoffice_host, live_server, panel, "leads:timeline", atid=5
    )
    _sign_in(page, frame)
    expect(frame.locator("#timeline-count")).to_have_text("3 interactions")
    panel_frame = next(f for f in page.frames if "/timeline" in f.url)
    _wait_until(lambda: _chart_drawn(panel_frame), message="the chart was not drawn")
    assert errors == []


@pytest.mark.csp_violation_expected  # frame-ancestors refuses the frame, as it must
def test_the_panel_refuses_to_show_in_a_frame_of_another_site(
    page, live_server, superoffice_host, panel
):
    panel.frame_ancestors = "https://online.superoffice.com"
    panel.save()
    messages = []
    page.on("console", lambda m: messages.append(m.text))

    frame = _open_in_superoffice(page, superoffice_host, live_server, panel, "leads:queue")

    expect(page.locator("h1")).to_have_text("SuperOffice CRM (stand-in)")
    page.wait_for_timeout(500)
    expect(frame.get_by_text("Sign in with SuperOffice")).to_have_count(0)
    assert any("frame-ancestors" in m for m in messages)


# -- the hub under gunicorn, with its access log ----------------------------------------------


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class _Hub:
    def __init__(self, url: str, access_log: Path) -> None:
        self.url = url
        self.access_log = access_log

    def log(self) -> str:
        return self.access_log.read_text()


@pytest.fixture
def gunicorn_hub(transactional_db, tmp_path):
    """The hub as users run it (gunicorn, with gunicorn.conf.py), on the test database."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    access_log = tmp_path / "access.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.e2e.hub_settings",
        "DATABASE_URL": _database_url(),
    }
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "gunicorn",
            "emhub.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "4",
            "--access-logfile",
            str(access_log),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("gunicorn did not start") from None
                time.sleep(0.2)
        # "localhost": another site than the SuperOffice stand-in on 127.0.0.1.
        yield _Hub(f"http://localhost:{port}", access_log)
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_no_panel_token_or_usec_reaches_a_url_or_the_access_log(
    page, gunicorn_hub, superoffice_host, panel
):
    """Panels in fresh frames without any cookie (plain http in a cross-site frame, where
    the browser keeps no cookie or storage), signed in each time; an on-site panel opened
    with <usec>; and a frame that keeps its token in sessionStorage opening one panel after
    another: no URL the browser asked for carries a panel token, and the server's access
    log holds neither a token nor the <usec>."""
    panel.usec_enabled = True
    panel.save()
    ContactFactory(account=panel.account, superoffice_person_id=5)
    urls = []
    page.on("request", lambda request: urls.append(request.url))
    tokens = []

    def token_shown(frame):
        expect(frame.locator(f'[data-associate="{SAM}"]')).to_be_visible()
        tokens.append(json.loads(frame.locator("#panel-token").text_content()))

    for name, params in (("leads:timeline", {"atid": 5}), ("leads:lead_report", {})):
        frame = _open_in_superoffice(page, superoffice_host, gunicorn_hub, panel, name, **params)
        _sign_in(page, frame)
        token_shown(frame)
    usec = "usec-sam-0002"
    frame = _open_in_superoffice(
        page, superoffice_host, gunicorn_hub, panel, "leads:queue", usec=usec
    )
    token_shown(frame)
    # The frame's address no longer shows the <usec> either.
    panel_frame = next(f for f in page.frames if "/panels/" in f.url)
    assert usec not in panel_frame.evaluate("location.href")

    # A SuperOffice of the same site as the hub (localhost): the frame may keep its token
    # in sessionStorage, though still no cookie (plain http). The next panel opened in a
    # fresh frame takes the token from there, and sends it in a header, never in the URL.
    same_site = superoffice_host.replace("127.0.0.1", "localhost")
    panel.frame_ancestors = f"{superoffice_host} {same_site}"
    panel.save()
    frame = _open_in_superoffice(page, same_site, gunicorn_hub, panel, "leads:timeline", atid=5)
    _sign_in(page, frame)
    token_shown(frame)
    frame = _open_in_superoffice(page, same_site, gunicorn_hub, panel, "leads:queue")
    token_shown(frame)
    assert tokens[-1] == tokens[-2]  # the kept one: no second sign-in
    assert not page.context.cookies()

    assert len(tokens) == 5 and all(len(t) > 30 for t in tokens)
    time.sleep(0.5)  # gunicorn writes its line once the response is sent
    log = gunicorn_hub.log()
    assert "/panels/" in log and "sign-in/done/" in log
    for token in tokens:
        assert not [u for u in urls if token in u]
        assert token not in log
    assert not [u for u in urls if "pt=" in u]
    assert usec not in log
    assert "usec=[redacted]" in log
    # Nor the sign-in's code and state.
    assert "code=[redacted]" in log
    assert re.search(r"code=(?!\[redacted\])", log) is None


def test_the_csp_watch_catches_an_inline_script(page, live_server, no_csp_violation):
    """The watch that fails a browser test on a CSP violation does see one: a script
    injected into a hub page is refused by the page's policy and reported."""
    from tests.conftest import CSP_VIOLATIONS

    page.goto(live_server.url + reverse("emhub:login"))
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.injected = 1'; document.body.appendChild(s); }"
    )
    page.wait_for_timeout(300)

    assert page.evaluate("window.injected") is None
    assert any("script-src" in v for v in CSP_VIOLATIONS), CSP_VIOLATIONS
    CSP_VIOLATIONS.clear()
