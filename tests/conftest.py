"""Shared fixtures: a small cast of accounts and users, and clients signed in as them."""

import os

import pytest
from rest_framework.test import APIClient

from emhub.models import Membership
from emhub.services import api_key_issue
from emhub.tenancy import SESSION_ACCOUNT_KEY

from .factories import AccountFactory, MembershipFactory, UserFactory

pytest_plugins = ["tests.crm_fixtures", "tests.internal_names"]


@pytest.fixture(autouse=True)
def _empty_cache():
    """Rate-limit counters, cached documents and the click drain's wake-up (the cache's
    and this process's memory of it) of one test do not reach the next."""
    from django.core.cache import cache

    from campaigns.clicks import drain_wake_forget

    cache.clear()
    drain_wake_forget()
    yield


def pytest_collection_modifyitems(config, items):
    """On SQLite (emhub.settings.test_sqlite, the embedded default's database) only the tests
    marked `both_databases` run; `postgresql_only` ones among them test what only
    PostgreSQL can do (two writers inside one transaction at once, skip-locked batches)."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        return
    kept, dropped = [], []
    for item in items:
        wanted = item.get_closest_marker("both_databases") is not None
        if wanted and item.get_closest_marker("postgresql_only") is None:
            kept.append(item)
        else:
            dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _signed_in(client, user, account):
    client.force_login(user)
    session = client.session
    session[SESSION_ACCOUNT_KEY] = account.pk
    session.save()
    return client


@pytest.fixture
def account(db):
    return AccountFactory(slug="acme", name="Acme")


@pytest.fixture
def other_account(db):
    return AccountFactory(slug="globex", name="Globex")


@pytest.fixture
def marketer(account):
    return MembershipFactory(
        account=account, user=UserFactory(username="mia"), role=Membership.Role.MARKETER
    ).user


@pytest.fixture
def admin_user(account):
    return MembershipFactory(
        account=account, user=UserFactory(username="ada"), role=Membership.Role.ADMIN
    ).user


@pytest.fixture
def marketer_client(client, marketer, account):
    return _signed_in(client, marketer, account)


@pytest.fixture
def admin_client(client, admin_user, account):
    return _signed_in(client, admin_user, account)


@pytest.fixture
def signed_in():
    """signed_in(client, user, account): put a user to work in an account."""
    return _signed_in


@pytest.fixture
def api_key(account):
    return api_key_issue(account=account, name="tests").raw_key


@pytest.fixture
def api_client(api_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return client


# --- browser tests: Debian's chromium through Playwright (no browser download) ----------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Every page of every browser test reports Content-Security-Policy violations; a test
# during which Chromium reported one fails (unless it is marked csp_violation_expected).
CSP_VIOLATIONS: list[str] = []
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline")
                + " in " + e.sourceFile + ":" + e.lineNumber);
});
"""


def _on_console(message) -> None:
    text = message.text
    if text.startswith("CSP violation:") or "Content Security Policy" in text:
        CSP_VIOLATIONS.append(f"{text} ({message.location.get('url', '')})")


def _on_response(response) -> None:
    """Hand each HTML page and htmx fragment the browser received to the internal-names check."""
    if response.request.resource_type not in ("document", "xhr", "fetch"):
        return
    if not response.headers.get("content-type", "").startswith("text/html"):
        return
    from .internal_names import page_seen

    try:
        body = response.text()
    except Exception:  # a redirect, or a page gone before it was read: no body
        return
    page_seen(response.url, body)


def watch_csp(context):
    """Report the CSP violations of every page of ``context`` (its frames and pop-ups too),
    and let the internal-names check read every page it shows."""
    context.add_init_script(_CSP_LISTENER)
    context.on("console", _on_console)
    context.on("response", _on_response)
    return context


@pytest.fixture(scope="session")
def browser():
    # Playwright's sync API runs an event loop; Django must allow ORM calls in tests around it.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        new_context, new_page = browser.new_context, browser.new_page

        def watched_context(*args, **kwargs):
            return watch_csp(new_context(*args, **kwargs))

        def watched_page(*args, **kwargs):
            page = new_page(*args, **kwargs)
            watch_csp(page.context)
            return page

        # Contexts and pages a test makes itself (a recipient's browser) are watched too.
        browser.new_context, browser.new_page = watched_context, watched_page
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def no_csp_violation(request):
    CSP_VIOLATIONS.clear()
    yield
    if request.node.get_closest_marker("csp_violation_expected"):
        return
    found, CSP_VIOLATIONS[:] = list(CSP_VIOLATIONS), []
    if found:
        pytest.fail("Chromium reported Content-Security-Policy violations:\n" + "\n".join(found))


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
