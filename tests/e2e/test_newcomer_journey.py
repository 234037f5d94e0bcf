"""A newcomer's first hour on the embedded default, in Chromium, as `make run` starts it:
SQLite, kombu's filesystem broker, the NetServer simulator, a Celery worker and beat, and
the web app under gunicorn, in processes of their own.

The demo marketer imports a SuperOffice selection, saves it as a list, writes a sendout
to it, passes the checklist and sends. A recipient opens the sent mail from the file
backend and clicks its tracked link in a person's browser, after the scanner window;
the click's runs are done and their objects are in the simulator. Then a sales rep opens
the Manage Automations Queue in a SuperOffice frame, signs in and matches a contact,
whose run then makes its sale. Last, the bad-input probe is sent to the same hub.

It fails on any answer 500 and on any traceback in any process's log.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from email import message_from_string
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import expect

from emhub.demo import DEMO_USERS

from ..probe_bad_input import Probe, Target
from .hub import ROOT, start_hub

pytestmark = pytest.mark.browser

# The scanner window the hub runs with here: a click this soon after the send is a mail
# scanner's. Short, so the recipient's click comes after it without a long wait.
SCANNER_SECONDS = 2
# A person's browser: headless Chromium's own user agent is filtered as a scanner's.
PERSON_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
DEMO_CAMPAIGN = "Spring webinar: pipelines that close"
# The demo's first link; the demo's "Clicked: into the follow-up selection" acts on it.
DEMO_LINK_URL = "https://www.example.com/webinars/pipelines/register"
FOLLOW_UP_SELECTION = 2
IMPORTED_SELECTION = "Webinar leads"
SAM_SELLER = 2  # the simulated tenant's "Sam Seller"


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


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    yield from start_hub(tmp_path_factory.mktemp("var"), LINK_SCANNER_SECONDS=str(SCANNER_SECONDS))


@pytest.fixture
def superoffice_host():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FramingPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def server_errors():
    """Every answer of 500 or more that any page, frame or pop-up of the test received."""
    return []


def _new_page(browser, server_errors, **context_options):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **context_options)
    context.on(
        "response",
        lambda r: server_errors.append(f"{r.status} {r.url}") if r.status >= 500 else None,
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


def _sign_in(page, address, username, password):
    page.goto(address)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page.locator(".userbox")).to_contain_text("Demo Company")


def _choose(page, select: str, text: str) -> None:
    """Pick the option of `select` whose label contains `text`."""
    option = page.locator(f"{select} option", has_text=text).first
    page.select_option(select, option.get_attribute("value"))


def _poll(page, predicate, *, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout:.0f} s: {message}")
        time.sleep(1)
        page.reload()


def _sim_state(hub, *parts):
    url = f"{hub.simulator_root}/_sim/state/{'/'.join(map(str, parts))}"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def _sent_messages(hub) -> list:
    """The messages the file backend wrote under var/mail, parsed."""
    messages = []
    for path in sorted((hub.var_dir / "mail").glob("*.log")):
        for chunk in path.read_text().split("-" * 79):
            if chunk.strip():
                messages.append(message_from_string(chunk.strip()))
    return messages


def _html_part(message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no HTML part")


def test_a_newcomer_imports_sends_and_a_click_and_a_match_act_in_superoffice(
    hub, browser, superoffice_host, server_errors
):
    marketer, admin = DEMO_USERS[0], DEMO_USERS[1]
    page = _new_page(browser, server_errors)
    _sign_in(page, hub.address, marketer[0], marketer[1])

    # 1. Import a SuperOffice selection and keep its people as a recipient list.
    page.click("nav >> text=Sendouts & imports")
    page.goto(f"{hub.address}imports/new/")
    _choose(page, "#id_source", IMPORTED_SELECTION)
    page.click("button:has-text('Start import')")
    expect(page.locator("[data-testid=import-summary]")).to_be_visible(timeout=90_000)
    created = int(page.inner_text("[data-testid=created]"))
    assert created > 0
    page.click("button:has-text('Save as list')")
    expect(page.locator("main")).to_contain_text("saved")
    list_name = page.inner_text("main h1")
    # Each imported contact is linked to its SuperOffice person (the list's last column).
    person_of = {}
    for row in page.locator("main table tbody tr").all():
        cells = [c.strip() for c in row.inner_text().split("\t")]
        if cells[-1].isdigit():
            person_of[cells[0]] = int(cells[-1])
    assert len(person_of) >= created

    # 2. A sendout of the demo campaign to that list, with the campaign's link.
    page.goto(f"{hub.address}sendouts/new/")
    _choose(page, "#id_campaign", DEMO_CAMPAIGN)
    _choose(page, "#id_recipient_list", list_name)
    page.fill("#id_subject", "Join our webinar")
    page.fill(
        "#id_body", f'<p>Hello!</p><p><a href="{DEMO_LINK_URL}">Register for the webinar</a></p>'
    )
    page.click("button:has-text('Continue to the checklist')")

    # 3. The checklist: consent synced with SuperOffice, who receives it; then send now.
    expect(page.locator("main h1")).to_contain_text("Checklist")
    expect(page.locator("main")).to_contain_text("Synced with SuperOffice")
    receiving = int(
        re.search(r"(\d+)\s*will receive it", page.inner_text("main")).group(1)  # type: ignore[union-attr]
    )
    assert receiving > 0
    page.click("button:has-text('Confirm')")
    _poll(
        page,
        lambda: f"{receiving}\nsent" in page.inner_text("main"),
        timeout=90,
        message="the sendout's messages were sent",
    )
    sent_at = time.monotonic()

    # 4. The recipient reads the mail the file backend wrote, and its tracked link.
    followers = set(_sim_state(hub, "selections", FOLLOW_UP_SELECTION)["members"])
    messages = _sent_messages(hub)
    assert len(messages) == receiving
    recipient = next(
        m for m in messages if person_of.get(m["To"]) and person_of[m["To"]] not in followers
    )
    person_id = person_of[recipient["To"]]
    body = _html_part(recipient)
    tracked = html.unescape(re.search(r'href="([^"]+/t/[^"]+)"', body).group(1))  # type: ignore[union-attr]
    assert tracked.startswith(hub.address) and "?c=" in tracked
    assert re.search(r'<img src="[^"]+/o/[^"]+\.gif"', body), "no open pixel"

    # 5. They click it in their own browser, after the scanner window.
    time.sleep(max(0.0, sent_at + SCANNER_SECONDS + 0.5 - time.monotonic()))
    reader = _new_page(browser, server_errors, user_agent=PERSON_AGENT)
    with reader.expect_response(lambda r: "/t/" in r.url) as clicked:
        try:
            reader.goto(tracked)
        except Exception as exc:  # noqa: BLE001 - the destination is on the internet
            # This machine reaches no site outside; the hub's answer is what counts.
            assert "ERR_" in str(exc), exc
    click = clicked.value
    assert click.status == 302
    assert click.headers["location"] == DEMO_LINK_URL

    # 6. The click's runs are done, and the person is in the follow-up selection.
    page.goto(f"{hub.address}campaigns/")
    page.click(f"text={DEMO_CAMPAIGN}")
    page.click("main >> text=Links")
    page.click("main >> text=Register for the webinar")
    # The link page's "Runs caused by clicks" and "Clicks" tables.
    rows = page.locator("main table tbody tr")

    def click_run_done():
        return any(
            recipient["To"] in row
            and "Clicked: into the follow-up selection" in row
            and "Done" in row
            and f"Selection #{FOLLOW_UP_SELECTION}" in row
            for row in rows.all_inner_texts()
        )

    _poll(page, click_run_done, timeout=60, message="the click's run is done")
    assert person_id in _sim_state(hub, "selections", FOLLOW_UP_SELECTION)["members"]
    # Counted as a person's click (not a scanner's), with the browser it came from.
    assert any(
        recipient["To"] in row and "person" in row and "Mozilla/5.0" in row
        for row in rows.all_inner_texts()
    )

    # 7. The admin lets the SuperOffice address frame the panels and reads the queue's URL.
    admin_page = _new_page(browser, server_errors)
    _sign_in(admin_page, hub.address, admin[0], admin[1])
    admin_page.goto(f"{hub.address}settings/panels/")
    queue_url = re.search(  # type: ignore[union-attr]
        r"http://\S+/queue/\?usid=<usid>&uctx=<uctx>", admin_page.inner_text("main")
    ).group(0)
    tenant = _sim_state(hub, "config")["context_identifier"]
    queue_url = queue_url.replace("<usid>", str(SAM_SELLER)).replace("<uctx>", tenant)
    admin_page.fill("textarea[name=frame_ancestors]", superoffice_host)
    admin_page.click("main form button[type=submit]")
    expect(admin_page.locator("body")).to_contain_text("Panel settings saved")

    # 8. A sales rep opens the Manage Automations Queue inside SuperOffice and signs in.
    rep = _new_page(browser, server_errors)
    rep.goto(f"{superoffice_host}/?{urlencode({'src': queue_url})}")
    frame = rep.frame_locator("#panel")
    expect(frame.get_by_text("Sign in with SuperOffice to see this panel.")).to_be_visible()
    with rep.expect_popup() as popup_info:
        frame.get_by_role("button", name="Sign in with SuperOffice").click()
    popup = popup_info.value
    with popup.expect_event("close"):
        popup.get_by_role("button", name=re.compile("Sam Seller")).click()
    expect(frame.locator(f'[data-associate="{SAM_SELLER}"]')).to_be_visible()

    # 9. ... and matches a waiting contact to a SuperOffice person; its run then acts.
    entry = frame.locator("[data-contact]").first
    email = re.search(r"[\w.+-]+@[\w.-]+", entry.inner_text()).group(0)  # type: ignore[union-attr]
    entry.get_by_role("button", name="Find in SuperOffice").click()
    candidate = entry.locator("tr[data-person]").first
    matched_person = int(candidate.get_attribute("data-person"))
    candidate.get_by_role("button", name="Match…").click()
    # The person as SuperOffice has it first; a differing name or e-mail needs a tick.
    preview = entry.locator(".match-preview")
    expect(preview.get_by_role("button", name=re.compile("^Match to"))).to_be_visible()
    same_person = preview.get_by_label("This is the same person")
    if same_person.count():
        same_person.check()
    preview.get_by_role("button", name=re.compile("^Match to")).click()
    expect(entry).to_contain_text("waiting run(s) resumed")
    # The runs are held for the undo window; the rep lets them go at once.
    entry.get_by_role("button", name="Go now").click()

    page.goto(f"{hub.address}automations/")
    row = _poll(
        page,
        lambda: next(
            (
                r
                for r in page.locator("[data-testid=runs] tbody tr").all_inner_texts()
                if email in r and "Done" in r and "Sale #" in r
            ),
            None,
        ),
        timeout=60,
        message="the matched contact's run made its sale",
    )
    sale_id = int(re.search(r"Sale #(\d+)", row).group(1))  # type: ignore[union-attr]
    sale = next(s for s in _sim_state(hub, "sales") if s["SaleId"] == sale_id)
    assert sale["PersonId"] == matched_person

    # 10. The bad-input probe against this same hub (SQLite): every answer a 400.
    api_key = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "create_api_key", "--account", "demo", "--name", "probe"],
        cwd=ROOT,
        env=hub.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    page.goto(f"{hub.address}campaigns/")
    page.click(f"text={DEMO_CAMPAIGN}")
    campaign_id = int(re.search(r"/campaigns/(\d+)/", page.url).group(1))  # type: ignore[union-attr]
    page.click("main >> text=Forms")
    page.locator("main table a").first.click()
    form_action = re.search(r"http://\S+/f/[^\s\"'<]+", page.content()).group(0)  # type: ignore[union-attr]
    token = urlsplit(tracked).path.split("/")[2]
    probe = Probe(
        Target(
            url=hub.address,
            api_key=api_key,
            campaign=campaign_id,
            link_token=token,
            link_destination=DEMO_LINK_URL,
            form_action=form_action,
            email=recipient["To"],
        )
    ).run()
    assert probe.failures == []

    assert server_errors == []
    assert hub.tracebacks() == {}
