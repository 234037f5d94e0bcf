"""The Content-Security-Policy: on every response, scripts and styles only from the hub's
files or the page's nonce; and no template holds an inline script, handler or style
attribute that the policy would refuse."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

from tests.campaigns.factories import FormFactory
from tests.leads.factories import PanelSettingsFactory, token_for

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def _assert_strict(response):
    policy = _policy(response)
    assert policy["script-src"][0] == "'self'"
    assert all(v == "'self'" or v.startswith("'nonce-") for v in policy["script-src"])
    assert all(v == "'self'" or v.startswith("'nonce-") for v in policy["style-src"])
    assert policy["object-src"] == ["'none'"]
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]
    return policy


def test_hub_pages_sign_in_errors_and_public_pages_carry_the_policy(client, admin_client):
    form = FormFactory()
    for response in (
        admin_client.get(reverse("emhub:home")),
        admin_client.get(reverse("leads:panel_settings")),
        admin_client.get("/no-such-page/"),
        client.get(reverse("emhub:login")),
        client.post(reverse("campaigns:form_submit", args=[form.token]), {"email": "a@b.example"}),
        client.get(reverse("api_docs")),
    ):
        _assert_strict(response)


def test_a_page_with_scripts_names_its_nonce_in_the_policy(admin_client):
    response = admin_client.get(reverse("emhub:home"))
    nonce = re.search(rb'<script src="[^"]+" nonce="([^"]+)"', response.content).group(1)
    assert f"'nonce-{nonce.decode()}'" in _policy(response)["script-src"]


def test_panels_carry_the_policy_and_their_frame_ancestors(client, account):
    panel = PanelSettingsFactory(account=account, frame_ancestors="https://online.superoffice.com")
    response = client.get(
        reverse("leads:queue", kwargs={"panel_key": panel.panel_key}),
        HTTP_X_PANEL_TOKEN=token_for(panel),
    )
    assert response.status_code == 200
    policy = _assert_strict(response)
    assert policy["frame-ancestors"] == ["https://online.superoffice.com"]


@pytest.mark.parametrize("path", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: p.name)
def test_no_template_needs_unsafe_inline(path):
    text = path.read_text()
    # Text shown as code (an embed snippet) is escaped: &lt;script&gt; never runs.
    inline_scripts = [
        m.group(0)
        for m in re.finditer(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", text)
    ]
    handlers = re.findall(r"<[a-z][^>]*\son[a-z]+\s*=", text)
    styles = re.findall(r"<[a-z][^>]*\sstyle\s*=", text)
    style_elements = re.findall(r"<style(?![^>]*nonce=)[^>]*>", text)
    assert not (inline_scripts or handlers or styles or style_elements), (
        inline_scripts,
        handlers,
        styles,
        style_elements,
    )


@pytest.mark.parametrize("path", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: p.name)
def test_template_comments_close_on_their_line(path):
    # {# ... #} is a one-line comment: spread over lines it is shown on the page.
    for number, line in enumerate(path.read_text().splitlines(), 1):
        assert line.count("{#") == line.count("#}"), f"{path.name}:{number}"


def test_a_response_without_a_nonce_gets_the_policy_django_csp_builds(client, settings):
    """The policy of a response that used no nonce is built once (emhub.csp): the same
    header as django-csp's own middleware gives, and rebuilt when the setting changes."""
    from csp.middleware import CSPMiddleware as StockCSPMiddleware
    from django.http import HttpResponse
    from django.test import RequestFactory

    from emhub.csp import CSPMiddleware

    def stock_header():
        request = RequestFactory().get("/t/x/")
        return StockCSPMiddleware(lambda r: HttpResponse())(request)["Content-Security-Policy"]

    plain = client.get("/t/no-such-link/")  # a 404 page, with no script
    assert plain["Content-Security-Policy"] == stock_header() + "; frame-ancestors 'none'"
    assert "nonce-" not in plain["Content-Security-Policy"]

    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    assert stock_header() == "default-src 'none'"
    request = RequestFactory().get("/anything/")
    assert CSPMiddleware(lambda r: HttpResponse())(request)["Content-Security-Policy"] == (
        "default-src 'none'"
    )
