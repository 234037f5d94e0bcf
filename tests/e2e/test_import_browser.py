"""A marketer imports a SuperOffice selection in the browser and watches it run: a real
Celery worker, the real client over HTTP to the simulator (slowed down), htmx polling."""

import time

import pytest
from celery.contrib.testing.worker import start_worker

from campaigns.models import Contact, ContactImport
from emhub.celery import app
from emhub.models import Membership
from tests.factories import DEFAULT_PASSWORD, MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker():
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")
    with start_worker(
        app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING"
    ) as running:
        yield running


def test_a_marketer_runs_an_import_and_sees_the_bar_move_and_the_summary(
    page, live_server, crm_account, simulator, settings, worker
):
    # Small pages from a slowed-down SuperOffice: the import takes a few seconds.
    settings.CAMPAIGNS_IMPORT_PAGE_SIZE = 3
    user = UserFactory(username="ines")
    MembershipFactory(user=user, account=crm_account, role=Membership.Role.MARKETER)
    page.goto(f"{live_server.url}/sign-in/")
    page.fill("input[name=username]", "ines")
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")

    page.goto(f"{live_server.url}/imports/new/")
    page.fill("input[name=q]", "newsletter")
    # A function, not an expression: Playwright evaluates expressions with eval, which the
    # page's CSP refuses.
    page.wait_for_function(
        "() => document.querySelectorAll('#id_source option[value]').length === 2"
    )
    page.select_option("#id_source", "selection:1")
    simulator.control(mode="slow", delay=0.25, operations=["GetArchiveListByColumns"])
    page.click("button:has-text('Start import')")
    page.wait_for_selector("h1:has-text('Newsletter Q1')")

    seen = []
    bar = page.locator("[data-testid=import-bar]")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen.append(int(bar.get_attribute("aria-valuenow")))
        if page.locator("[data-testid=import-summary]").count():
            break
        time.sleep(0.25)

    done = ContactImport.objects.get(account=crm_account)
    assert done.status == ContactImport.Status.DONE, done.error
    assert any(0 < value < 100 for value in seen), seen
    assert seen == sorted(seen) and seen[-1] == 100
    # The bar's fill follows its value.
    assert bar.locator("span").evaluate("span => span.style.width") == "100%"
    summary = page.locator("[data-testid=import-summary]")
    created = Contact.objects.filter(account=crm_account).count()
    assert summary.locator("[data-testid=created]").inner_text() == str(created)
    assert created == done.created > 0
    assert "Email shared with another person" in summary.inner_text()
