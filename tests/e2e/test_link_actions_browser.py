"""A marketer gives a tracked link a text page and three SuperOffice actions in the
browser; a recipient follows the link, sees the page, and a real Celery worker carries
the actions out against the simulator."""

from urllib.parse import urlsplit

import pytest

from automations.models import Automation, Run, RunStatus
from campaigns.models import Contact, TrackedLink
from campaigns.services import tracking_url_for_link
from tests.automations.conftest import (  # noqa: F401 - fixtures used by name
    celery_worker_threads,
    connected_account,
    fast_retries,
    sim,
    sim_server,
    wait_until,
)
from tests.automations.factories import CampaignFactory
from tests.factories import DEFAULT_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PERSON = 12
# A person's browser; headless Chromium's own user agent is a scanner's to the hub.
DESKTOP = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def test_a_marketer_sets_up_a_link_with_three_actions_and_a_click_carries_them_out(
    browser,
    page,
    live_server,
    marketer,
    connected_account,  # noqa: F811
    sim,  # noqa: F811
    celery_worker_threads,  # noqa: F811
):
    campaign = CampaignFactory(account=connected_account, name="Winter webinar")
    page.goto(f"{live_server.url}/sign-in/")
    page.fill("input[name=username]", marketer.username)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")

    page.goto(f"{live_server.url}/campaigns/{campaign.id}/links/")
    page.fill("input[name=name]", "Sign up")
    page.fill("input[name=url]", "https://example.com/signup")
    page.click("button:has-text('Create link')")
    page.click("tr[data-link='Sign up'] >> text=Actions")

    # What the recipient sees: a text page.
    page.check("input[name=response_kind][value=text]")
    page.fill("input[name=response_title]", "You are signed up")
    page.fill(
        "textarea[name=response_html]",
        "<p>See you on <b>Thursday</b>.</p><script>alert(1)</script>",
    )
    page.click("button:has-text('Save response')")
    page.wait_for_selector("text=What the recipient sees after a click is saved.")

    # Action 1: a person field, found by searching the account's field list.
    page.click("text=Add action")
    page.select_option("select[name=type]", value="set_field")
    assert not page.locator("select[name=script_id]").is_visible()
    page.fill("input.picker-search[data-for=field_key]", "lead sc")
    assert page.locator("select[name=field_key]").input_value() == "SuperOffice:2"
    page.fill("input[name=field_value]", "42")
    page.click("button:has-text('Add action')")
    page.wait_for_selector("tr[data-action='Set a field of the person · Sign up']")

    # Action 2: a request assigned by the category's rules.
    page.click("text=Add action")
    page.select_option("select[name=type]", value="create_request")
    page.fill("input[name=name]", "Request for sales")
    page.fill("input[name=request_title]", "{email} signed up")
    page.select_option("select[name=request_assign]", value="category")
    page.select_option("select[name=category_id]", label="Sales enquiry")
    page.select_option("select[name=priority_id]", label="High")
    page.click("button:has-text('Add action')")
    page.wait_for_selector("tr[data-action='Request for sales']")

    # Action 3: a CRMScript.
    page.click("text=Add action")
    page.select_option("select[name=type]", value="run_script")
    page.fill("input[name=name]", "Route the lead")
    page.select_option("select[name=script_id]", label="lead-router")
    page.click("button:has-text('Add action')")
    page.wait_for_selector("tr[data-action='Route the lead']")

    page.click("button:has-text('Act once per recipient')")
    page.wait_for_selector("text=The link acts once per recipient.")
    link = TrackedLink.objects.get(campaign=campaign)
    assert Automation.objects.filter(trigger_link=link, once_per_contact=True).count() == 3

    # The recipient follows the link in their own browser.
    reader = Contact.objects.create(
        account=connected_account, email="reader@example.com", superoffice_person_id=PERSON
    )
    parts = urlsplit(tracking_url_for_link(link=link, contact=reader))
    recipient = browser.new_context(user_agent=DESKTOP)
    try:
        tab = recipient.new_page()
        tab.goto(f"{live_server.url}{parts.path}?{parts.query}")
        assert tab.locator("h1").inner_text() == "You are signed up"
        assert tab.locator("[data-testid=link-page] b").inner_text() == "Thursday"
        assert "alert(1)" not in tab.content()
    finally:
        recipient.close()

    wait_until(
        lambda: Run.objects.filter(status=RunStatus.DONE).count() == 3,
        timeout=60,
        message=str(list(Run.objects.values_list("status", "last_error"))),
    )
    assert sim.state("persons", PERSON)["CustomFields"]["SuperOffice:2"] == "[I:42]"
    (ticket,) = sim.state("tickets")
    assert (ticket["OwnerId"], ticket["PriorityId"]) == (2, 3)  # category 1 routes to 2
    script_run = Run.objects.get(automation__name="Route the lead")
    assert script_run.output.startswith("lead-router:custId=12;")

    page.reload()
    assert page.locator("[data-testid=human-clicks]").inner_text() == "1"
    assert page.locator("[data-testid=run-total]").inner_text() == "3"
    assert page.locator("[data-testid=link-runs] .badge.ok").count() == 3
