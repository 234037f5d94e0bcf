"""A marketer sets up a campaign with a tracked link in the browser; a recipient clicks it."""

import pytest

from campaigns.models import Contact, Event, EventType, TrackedLink
from campaigns.services import tracking_url_for_link
from campaigns.tasks import drain_clicks
from emhub.models import Membership
from tests.factories import DEFAULT_PASSWORD, AccountFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def marketer(db):
    account = AccountFactory(slug="nordlicht", name="Nordlicht")
    user = UserFactory(username="maria")
    MembershipFactory(user=user, account=account, role=Membership.Role.MARKETER)
    return user


def test_a_marketer_makes_a_campaign_with_a_link_and_sees_a_recipients_click(
    page, live_server, marketer, settings
):
    settings.EMHUB_PUBLIC_URL = live_server.url
    page.goto(f"{live_server.url}/sign-in/")
    page.fill("input[name=username]", "maria")
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")

    page.click("nav.mainnav >> text=Campaigns")
    page.click("text=New campaign")
    page.fill("input[name=name]", "Autumn newsletter")
    page.click("button:has-text('Create campaign')")
    page.wait_for_selector("h1:has-text('Autumn newsletter')")

    page.click("nav.tabs >> text=Links")
    page.fill("input[name=name]", "Pricing")
    landing = f"{live_server.url}/sign-in/?from=newsletter"
    page.fill("input[name=url]", landing)
    page.click("button:has-text('Create link')")
    row = page.locator("tr[data-link='Pricing']")
    link = TrackedLink.objects.get(name="Pricing")
    assert f"/t/{link.token}/?c=" in row.inner_text()

    # A recipient, signed in to nothing, clicks the link in their email.
    contact = Contact.objects.create(account=link.account, email="reader@example.com")
    # A person's browser: headless Chromium's own user agent is a mail scanner's to the hub.
    recipient = page.context.browser.new_page(
        user_agent=(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36"
        )
    )
    recipient.goto(tracking_url_for_link(link=link, contact=contact))
    assert recipient.url == landing
    recipient.close()

    drain_clicks()  # what a worker does next: the click becomes its event
    click = Event.objects.get()
    assert (click.type, click.contact, click.link) == (EventType.LINK_CLICKED, contact, link)
    page.reload()
    assert page.locator("tr[data-link='Pricing'] td").nth(3).inner_text() == "1"
    page.click("nav.tabs >> text=Overview")
    assert page.locator("[data-type=link_clicked] .stat").inner_text() == "1"
