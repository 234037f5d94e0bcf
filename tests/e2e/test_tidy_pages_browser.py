"""In Chromium: Sync now on the consent page follows its cycle in place until it has
finished, and a tracked link's Copy button puts the link's address on the clipboard."""

import pytest
from playwright.sync_api import expect

from campaigns.services import link_public_url
from consent.models import ConsentSyncCycle
from crm.models import SuperOfficeConnection
from tests.automations.conftest import (  # noqa: F401 - fixtures used by name
    celery_worker_threads,
    connected_account,
    fast_retries,
    sim,
    sim_server,
)
from tests.automations.factories import CampaignFactory, TrackedLinkFactory
from tests.factories import DEFAULT_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, live_server, user):
    page.goto(f"{live_server.url}/sign-in/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_sync_now_follows_its_cycle_in_place_until_it_has_finished(
    page,
    live_server,
    admin_user,
    connected_account,  # noqa: F811
    celery_worker_threads,  # noqa: F811
):
    SuperOfficeConnection.objects.filter(account=connected_account).update(
        legal_basis_sync_enabled=True
    )
    _sign_in(page, live_server, admin_user)
    page.goto(f"{live_server.url}/consent/")
    live = page.get_by_test_id("consent-live")
    expect(live).to_contain_text("No cycle has run yet.")
    loads = []
    page.on("load", lambda _: loads.append(page.url))

    page.get_by_role("button", name="Sync now").click()
    page.wait_for_url("**/consent/?after=*")
    loads.clear()  # the redirect after the POST is the one page load there is

    # The worker runs the cycle; the live part is swapped in by htmx, with no reload.
    expect(page.get_by_test_id("consent-following")).to_have_text(
        "The cycle you started has finished.", timeout=30_000
    )
    expect(live).to_have_attribute("data-running", "no")
    cycle = ConsentSyncCycle.objects.get(account=connected_account)
    assert cycle.finished_at is not None
    expect(page.get_by_test_id("cycle-table")).to_contain_text(cycle.get_kind_display())
    assert loads == []


def test_the_copy_button_puts_the_tracked_link_on_the_clipboard(
    browser, live_server, marketer, account
):
    link = TrackedLinkFactory(
        campaign=CampaignFactory(account=account, name="Winter webinar"), name="Sign up"
    )
    context = browser.new_context(
        base_url=live_server.url, permissions=["clipboard-read", "clipboard-write"]
    )
    try:
        page = context.new_page()
        _sign_in(page, live_server, marketer)
        page.goto(f"{live_server.url}/links/{link.id}/")
        shown = page.locator("#tracked-link-url").inner_text()

        page.get_by_test_id("copy-link").click()

        assert shown == link_public_url(link=link)
        expect(page.get_by_test_id("copy-link")).to_have_text("Copied")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == shown
    finally:
        context.close()
