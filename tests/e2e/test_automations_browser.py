"""A marketer sets up each of the nine automation types in the browser, an event comes in,
a real Celery worker runs them against the simulator, and the marketer sees the runs."""

import pytest
from rest_framework.test import APIClient

from automations.models import Automation, AutomationType, Run, RunStatus
from campaigns.models import Contact
from emhub.services import api_key_issue
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

T = AutomationType
# type -> (name, {select name: option label}, description or None)
SETUPS = {
    T.CREATE_SALE: (
        "Sale for openers",
        {"source_id": "E-marketing", "rating_id": "Warm", "extra_selection_id": "Webinar leads"},
        "Opened {campaign} at {time}",
    ),
    T.CREATE_TASK: (
        "Call openers",
        {"activity_type_id": "Phone call", "owner_id": "Sam Seller"},
        "Call {email}",
    ),
    T.NOTIFY_SALES_REP: ("Tell the rep", {"activity_type_id": "Email"}, "{email} opened"),
    T.SET_INTEREST: ("Likes newsletters", {"interest_ids": "Newsletter"}, None),
    T.UNSET_INTEREST: ("No more events", {"interest_ids": "Events"}, None),
    T.ADD_TO_PROJECT: ("Into the summit", {"project_id": "Partner summit"}, None),
    T.REMOVE_FROM_PROJECT: ("Out of the fair", {"project_id": "Trade fair Oslo"}, None),
    T.ADD_TO_SELECTION: ("Key account list", {"selection_id": "Key accounts"}, None),
    T.REMOVE_FROM_SELECTION: ("Not dormant", {"selection_id": "Dormant"}, None),
}


def test_a_marketer_creates_each_automation_type_and_sees_its_runs(
    page,
    live_server,
    marketer,
    connected_account,  # noqa: F811
    celery_worker_threads,  # noqa: F811
):
    campaign = CampaignFactory(account=connected_account, name="Winter webinar")
    page.goto(f"{live_server.url}/sign-in/")
    page.fill("input[name=username]", marketer.username)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")

    page.goto(f"{live_server.url}/campaigns/{campaign.id}/")
    page.click("nav.tabs >> text=Automations")
    for type_, (name, picks, description) in SETUPS.items():
        page.click("text=New automation")
        page.fill("input[name=name]", name)
        page.select_option("select[name=type]", value=type_)
        page.select_option("select[name=trigger_event_type]", label="Email opened")
        # Only the settings this type uses are shown.
        assert page.locator("select[name=project_id]").is_visible() == ("project_id" in picks)
        for select, label in picks.items():
            page.select_option(f"select[name={select}]", label=label)
        if description:
            page.fill("textarea[name=description]", description)
        page.click("button:has-text('Create automation')")
        page.wait_for_selector(f"tr[data-automation='{name}']")
    assert Automation.objects.filter(campaign=campaign).count() == 9

    # A contact already matched to SuperOffice person 12 opens the campaign's email.
    Contact.objects.create(
        account=connected_account, email="reader@example.com", superoffice_person_id=12
    )
    api = APIClient()
    api.credentials(
        HTTP_AUTHORIZATION="Bearer " + api_key_issue(account=connected_account, name="shop").raw_key
    )
    response = api.post(
        "/api/v1/events/",
        {
            "event_id": "open-1",
            "type": "email_opened",
            "campaign": campaign.id,
            "email": "reader@example.com",
        },
        format="json",
    )
    assert response.json()["runs"] == 9
    wait_until(
        lambda: Run.objects.filter(status=RunStatus.DONE).count() == 9,
        timeout=60,
        message=str(list(Run.objects.values_list("status", "last_error"))),
    )

    page.click("nav.tabs >> text=Runs")
    rows = page.locator("table[data-testid=runs] tbody tr")
    assert rows.count() == 9
    assert page.locator("table[data-testid=runs] .badge.ok:has-text('Done')").count() == 9

    page.click("nav.mainnav >> text=Automations")
    page.click("tr:has-text('Sale for openers') td a >> nth=0")
    assert "Done" in page.locator("[data-testid=run-status]").inner_text()
    calls = page.locator("table[data-testid=crm-calls]").inner_text()
    assert "saved the sale" in calls and "SaveSaleEntity" not in calls
