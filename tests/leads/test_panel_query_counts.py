"""Each panel page needs the same number of queries whatever the account holds: measured on
a small account, then again once it holds more than a page of everything each panel lists."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from automations.models import Run, RunStatus
from campaigns.models import EventType

from .factories import (
    AutomationFactory,
    CampaignFactory,
    ContactFactory,
    EventFactory,
    PanelSettingsFactory,
    TrackedLinkFactory,
    token_for,
    waiting_runs,
)

pytestmark = pytest.mark.django_db

PERSON = 77
SALE = 501

# (page, its URL name, its query string)
PAGES = [
    ("queue", "leads:queue", {}),
    # Past the last page on the small account, a full page on the large one.
    ("queue, page 2", "leads:queue", {"page": "2"}),
    ("queue, filtered", "leads:queue", {"q": "example"}),
    ("lead report", "leads:lead_report", {}),
    ("lead report, flagged only", "leads:lead_report", {"flagged": "1"}),
    ("timeline", "leads:timeline", {"atid": str(PERSON)}),
    ("timeline, clicks only", "leads:timeline", {"atid": str(PERSON), "type": "link_clicked"}),
    ("timeline, page 2", "leads:timeline", {"atid": str(PERSON), "page": "2"}),
    ("event details of a sale", "leads:event_details", {"said": str(SALE)}),
]


class Account:
    """One account's panel data, grown in steps: waiting contacts, engaged leads (some
    long enough ago to be flagged), a person's timeline and sales made by runs."""

    def __init__(self, panel):
        self.account = panel.account
        self.campaign = CampaignFactory(account=self.account, name="Webinar")
        self.link = TrackedLinkFactory(account=self.account, campaign=self.campaign)
        self.waiting = AutomationFactory(
            account=self.account,
            campaign=self.campaign,
            trigger_event_type=EventType.FORM_SUBMITTED,
        )
        self.sales = AutomationFactory(
            account=self.account, campaign=self.campaign, trigger_event_type=EventType.LINK_CLICKED
        )
        self.person = ContactFactory(account=self.account, superoffice_person_id=PERSON)
        self.sale_id = SALE

    def grow(self, n: int) -> None:
        now = timezone.now()
        for _ in range(n):
            waiting_runs(
                self.account, ContactFactory(account=self.account), automation=self.waiting
            )
        for i in range(n):
            lead = ContactFactory(account=self.account)
            for kind in (EventType.EMAIL_OPENED, EventType.LANDING_PAGE_VISITED):
                EventFactory(
                    account=self.account,
                    campaign=self.campaign,
                    contact=lead,
                    type=kind,
                    # Every other lead engaged before the panel's 7 days: flagged.
                    occurred_at=now - timedelta(days=10 * (i % 2), hours=i),
                )
        for i in range(n):
            event = EventFactory(
                account=self.account,
                campaign=self.campaign,
                contact=self.person,
                link=self.link,
                type=EventType.LINK_CLICKED,
                occurred_at=now - timedelta(hours=i),
            )
            Run.objects.filter(event=event).update(
                status=RunStatus.DONE, crm_object_type="sale", crm_object_id=self.sale_id
            )
            self.sale_id += 1


def _queries(client, panel, token, name, params) -> tuple[int, str]:
    url = reverse(name, kwargs={"panel_key": panel.panel_key})
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params, HTTP_X_PANEL_TOKEN=token)
    assert response.status_code == 200
    return len(captured.captured_queries), response.content.decode()


def test_every_panel_needs_as_many_queries_for_a_large_account_as_for_a_small_one(client):
    panel = PanelSettingsFactory()
    data = Account(panel)
    token = token_for(panel)

    data.grow(2)
    small = {label: _queries(client, panel, token, name, q) for label, name, q in PAGES}
    # More than a page of waiting contacts (20), leads (20) and timeline entries (25).
    data.grow(30)
    large = {label: _queries(client, panel, token, name, q) for label, name, q in PAGES}

    assert {label: n for label, (n, _) in large.items()} == {
        label: n for label, (n, _) in small.items()
    }
    # The large pages are full ones: a query per row would have shown above.
    assert large["queue"][1].count('class="card entry"') == 20
    assert large["lead report"][1].count('class="card entry') == 20
    assert large["lead report, flagged only"][1].count('class="card entry') == 16
    assert large["timeline"][1].count("data-event=") == 25
