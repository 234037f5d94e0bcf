"""A run that failed because its contact was matched to the wrong SuperOffice person: the
marketer matches the contact to the right one on the run's page (looked up and shown
first), retries, and the page follows the run to done with no reload; a real Celery worker
runs it against the simulator."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from automations import services
from automations.models import AutomationType, Run, RunStatus
from tests.automations.conftest import (  # noqa: F401 - fixtures used by name
    celery_worker_threads,
    connected_account,
    fast_retries,
    sim,
    sim_server,
    wait_until,
)
from tests.automations.factories import (
    AutomationFactory,
    CampaignFactory,
    ContactFactory,
    EventFactory,
)
from tests.factories import DEFAULT_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WRONG_PERSON = 9999  # SuperOffice has no such person: the run fails


def _sign_in(page, live_server, user):
    page.goto(f"{live_server.url}/sign-in/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")


def test_a_failed_run_is_matched_to_another_person_and_retried_from_its_page_to_done(
    page,
    live_server,
    marketer,
    connected_account,  # noqa: F811
    sim,  # noqa: F811
    celery_worker_threads,  # noqa: F811
):
    account = connected_account
    person = sim.state("persons", 5)
    campaign = CampaignFactory(account=account, name="Winter webinar")
    AutomationFactory(
        account=account,
        campaign=campaign,
        name="Key account list",
        type=AutomationType.ADD_TO_SELECTION,
        settings={"selection_id": 1},
    )
    contact = ContactFactory(
        account=account,
        email=person["Emails"][0],
        first_name=person["Firstname"],
        last_name=person["Lastname"],
        superoffice_person_id=WRONG_PERSON,
    )
    event = EventFactory(account=account, campaign=campaign, contact=contact)
    (run,) = services.runs_create_for_events(account=account, events=[event])
    services.runs_dispatch(run_ids=[run.id])
    wait_until(
        lambda: Run.objects.get(id=run.id).status == RunStatus.FAILED,
        timeout=30,
        message=str(Run.objects.values_list("status", "last_error").get(id=run.id)),
    )

    _sign_in(page, live_server, marketer)
    page.goto(live_server.url + reverse("automations:run_detail", kwargs={"run_id": run.id}))
    expect(page.get_by_test_id("run-status")).to_contain_text("Failed")
    rematch = page.get_by_test_id("rematch")
    expect(rematch).to_contain_text(f"is SuperOffice person #{WRONG_PERSON}")
    rematch.get_by_label("SuperOffice person number").fill("5")
    rematch.get_by_role("button", name="Look up").click()
    preview = page.get_by_test_id("rematch-preview")
    expect(preview).to_contain_text(f"{person['Firstname']} {person['Lastname']}")
    preview.get_by_role("button", name=re.compile("^Match to")).click()
    expect(page.locator("body")).to_contain_text("is now SuperOffice person #5")
    contact.refresh_from_db()
    assert contact.superoffice_person_id == 5
    assert Run.objects.get(id=run.id).status == RunStatus.FAILED

    page.get_by_role("button", name="Retry").click()
    page.evaluate("window.emhubNoReload = 'kept'")
    # The status card follows the run until it is done: nobody reloads.
    expect(page.get_by_test_id("run-status")).to_contain_text("Done", timeout=30_000)
    assert page.evaluate("window.emhubNoReload") == "kept"
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    run.refresh_from_db()
    assert (run.status, run.error_kind) == (RunStatus.DONE, "")
    assert 5 in sim.state("selections", 1)["members"]
