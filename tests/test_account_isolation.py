"""Every page and API object of account B is a 404 for a user (or API key) of account A.

The sweep walks every URL pattern that takes an object id, fills it with an object of
account B, and requests it as an admin of account A with GET and POST. A new URL
keyword without a maker below fails the sweep, so no page escapes it.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from campaigns.urls import PUBLIC_URL_NAMES as CAMPAIGNS_PUBLIC
from consent.urls import PUBLIC_URL_NAMES as CONSENT_PUBLIC
from emhub.models import Membership
from emhub.services import api_key_issue
from leads.urls import PANEL_URL_NAMES
from tests.factories import AccountFactory, MembershipFactory, UserFactory

from .isolation_makers import OBJECT_MAKERS

SKIPPED_PREFIXES = ("admin:",)
# Recipients' endpoints (tracked links, open pixel, public forms): reached by anyone,
# authorised by a signed contact reference rather than a signed-in account, so not
# account-scoped by design. tests/campaigns/test_tracking.py covers their forgery cases.
PUBLIC_URL_NAMES = {f"campaigns:{name}" for name in CAMPAIGNS_PUBLIC}
# SuperOffice web panels are authorised by a verified SuperOffice user of the account the
# panel key names, not by a hub session; tests/leads/test_panel_security.py sweeps them.
PUBLIC_URL_NAMES |= {f"leads:{name}" for name in PANEL_URL_NAMES}
# SuperOffice's webhook deliveries are authorised by their signature with the account's
# secret; tests/consent/test_push.py posts forged, unsigned and other accounts' ones.
PUBLIC_URL_NAMES |= {f"consent:{name}" for name in CONSENT_PUBLIC}


def _patterns_with_ids(resolver=None, namespace=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _patterns_with_ids(entry, ns)
        elif isinstance(entry, URLPattern) and entry.name:
            converters = getattr(entry.pattern, "converters", {})
            if converters:
                yield f"{namespace}{entry.name}", sorted(converters)


def _url_names_with_ids():
    names = {}
    for name, kwargs in _patterns_with_ids():
        if not name.startswith(SKIPPED_PREFIXES) and name not in PUBLIC_URL_NAMES:
            names[name] = kwargs
    return sorted(names.items())


@pytest.fixture
def account_b_objects(db):
    account_b = AccountFactory(slug="account-b", name="Account B")
    return {kwarg: make(account_b) for kwarg, make in OBJECT_MAKERS.items()}


@pytest.fixture
def account_a_clients(db, client, signed_in):
    account_a = AccountFactory(slug="account-a", name="Account A")
    user = UserFactory(username="alice")
    MembershipFactory(user=user, account=account_a, role=Membership.Role.ADMIN)
    api = APIClient()
    raw_key = api_key_issue(account=account_a, name="a").raw_key
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return signed_in(client, user, account_a), api


def test_every_url_keyword_has_a_maker_for_the_sweep():
    unknown = {kw for _, kwargs in _url_names_with_ids() for kw in kwargs} - set(OBJECT_MAKERS)
    assert not unknown, f"add makers to tests/isolation_makers.py for: {sorted(unknown)}"


@pytest.mark.django_db
def test_account_a_gets_404_for_every_object_of_account_b(account_b_objects, account_a_clients):
    session_client, api_client = account_a_clients
    checked = []
    for name, kwargs in _url_names_with_ids():
        url = reverse(name, kwargs={kw: account_b_objects[kw] for kw in kwargs})
        clients = [session_client] + ([api_client] if url.startswith("/api/") else [])
        for http in clients:
            statuses = {
                "GET": http.get(url).status_code,
                "POST": http.post(url, {}).status_code,
            }
            leaked = {m: s for m, s in statuses.items() if s < 400 or s in (400, 409, 422)}
            assert not leaked, f"{name} {url} answered {leaked} for another account's object"
            assert 404 in statuses.values() or 403 in statuses.values(), f"{name}: {statuses}"
            checked.append(name)
    assert checked, "the sweep found no URL with an object id"
