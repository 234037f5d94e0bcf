"""Every page of the hub carries the Content-Security-Policy and runs in Chromium without a
violation of it (the browser fixtures fail a test on any): an admin opens each page that
needs no object id, a campaign's pages with data, the API documentation and the sign-in
and lockout pages."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from playwright.sync_api import Error as PlaywrightError

from tests.campaigns.factories import (
    CampaignFactory,
    ContactFactory,
    EventFactory,
    FormFactory,
    TrackedLinkFactory,
)
from tests.factories import DEFAULT_PASSWORD, AccountFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SKIPPED = ("admin:", "api_schema", "emhub:logout")


def _pages_without_ids(resolver=None, namespace=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _pages_without_ids(entry, ns)
        elif (
            isinstance(entry, URLPattern)
            and entry.name
            and not getattr(entry.pattern, "converters", {})
        ):
            yield f"{namespace}{entry.name}"


def test_every_page_carries_the_policy_and_breaks_none_of_it(page, live_server):
    from emhub.models import Membership

    account = AccountFactory(slug="csp", name="CSP Ltd")
    admin = UserFactory(username="ada")
    MembershipFactory(user=admin, account=account, role=Membership.Role.ADMIN)
    campaign = CampaignFactory(account=account, name="Spring")
    contact = ContactFactory(account=account)
    link = TrackedLinkFactory(account=account, campaign=campaign)
    form = FormFactory(account=account, campaign=campaign)
    EventFactory(account=account, campaign=campaign, contact=contact)

    page.goto(f"{live_server.url}/sign-in/")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("nav.mainnav")

    names = sorted(n for n in set(_pages_without_ids()) if not n.startswith(SKIPPED))
    paths = [reverse(name) for name in names]
    paths += [
        reverse("campaigns:campaign_detail", args=[campaign.pk]),
        reverse("campaigns:campaign_links", args=[campaign.pk]),
        reverse("campaigns:form_detail", args=[campaign.pk, form.pk]),
        reverse("campaigns:contact_detail", args=[contact.pk]),
        reverse("automations:link_detail", args=[link.pk]),
        reverse("automations:automation_create", args=[campaign.pk]),
        "/admin/login/",
    ]
    seen = []
    for path in paths:
        try:
            response = page.goto(live_server.url + path)
        except PlaywrightError:
            # A POST-only address answers 405 with no page to show; Chromium then opens its
            # own error page, and the next address must wait for that navigation to end.
            page.wait_for_load_state("load")
            continue
        if (
            response is None
            or response.status >= 400
            or "json" in (response.headers.get("content-type") or "")
        ):
            continue
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy, path
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, path
        page.wait_for_load_state("networkidle")
        seen.append(path)
    # Swagger UI drew the API from its own script file.
    page.goto(live_server.url + reverse("api_docs"))
    page.wait_for_selector(".swagger-ui .information-container")
    assert len(seen) >= 15, seen
