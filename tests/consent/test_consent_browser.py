"""In the browser: an admin follows a sync cycle from the history chart down to why a
contact's consent is what it is."""

import pytest

from consent.models import WITHDRAWN, ConsentSyncCycle, Purpose
from consent.services import consent_record, consent_sync_cycle
from crm.models import SuperOfficeConnection
from crm.services import client_for_account
from emhub.models import Membership
from tests.factories import DEFAULT_PASSWORD, AccountFactory, MembershipFactory, UserFactory

from .conftest import sim_connection_fields
from .factories import ContactFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_reads_the_sync_history_chart_and_a_decisions_reason(
    page,
    live_server,
    sim,
):
    account = AccountFactory(slug="fjordhus", name="Fjordhus")
    user = UserFactory(username="ingrid")
    MembershipFactory(user=user, account=account, role=Membership.Role.ADMIN)
    SuperOfficeConnection.objects.create(account=account, **sim_connection_fields(sim))
    contact = ContactFactory(
        account=account, email=sim.person(30)["Emails"][0], superoffice_person_id=30
    )
    consent_record(account=account, contact=contact, purpose=Purpose.STORE, legal_basis="61A")
    consent_sync_cycle(account=account, kind=ConsentSyncCycle.Kind.FULL)
    client_for_account(account).set_consent(
        person_id=30, purpose_key=Purpose.EMARKETING, legal_base_key=WITHDRAWN, source_key="USER"
    )
    consent_sync_cycle(account=account)

    page.goto(f"{live_server.url}/sign-in/")
    page.fill("input[name=username]", "ingrid")
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.click("nav.mainnav >> text=Consent")

    assert page.locator("[data-testid=sync-status] .stat").inner_text() == "On"
    assert page.locator("[data-testid=cycle-table] tbody tr").count() == 2
    # Chart.js drew the chart from the figures.
    page.wait_for_function("() => window.Chart && Chart.getChart('consent-cycles-chart')")
    assert page.locator("button:has-text('Sync now')").is_visible()

    page.locator("[data-testid=cycle-table] tbody tr").first.locator("a").click()
    page.wait_for_selector("h1:has-text('Incremental cycle')")
    decisions = page.locator("[data-testid=decision-table]").inner_text()
    assert "Only SuperOffice has a legal basis" in decisions and contact.email in decisions

    page.click(f"text={contact.email}")
    page.wait_for_selector(f"h1:has-text('{contact.email}')")
    now = page.locator("[data-testid=contact-consents]").inner_text()
    assert "withdrawn" in now and "consent" in now and "61A" not in now
