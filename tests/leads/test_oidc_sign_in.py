"""The pop-up sign-in against the simulator's identity provider, through the Django views."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.urls import reverse

from crm.simulator import idp
from leads import auth

from .factories import ContactFactory, PanelSettingsFactory, waiting_runs

pytestmark = pytest.mark.django_db


@pytest.fixture
def panel(crm_account, simulator):
    return PanelSettingsFactory(
        account=crm_account,
        context_identifier=simulator.context_identifier,
        oidc_issuer=simulator.root_url,
        oidc_client_id=idp.CLIENT_ID,
        oidc_client_secret=simulator.app_token,
    )


def _sign_in(client, panel, login_hint="SAL1"):
    """Follow the pop-up: hub -> identity provider -> hub. Returns the final response."""
    start = client.get(
        reverse("leads:panel_sign_in", kwargs={"panel_key": panel.panel_key}),
        {"login_hint": login_hint},
    )
    assert start.status_code == 302
    authorize = requests.get(start["Location"], allow_redirects=False, timeout=10)
    assert authorize.status_code == 302, authorize.text
    back = urlsplit(authorize.headers["Location"])
    return client.get(back.path, {k: v[0] for k, v in parse_qs(back.query).items()})


def _token(response) -> str:
    import json
    import re

    match = re.search(rb'id="panel-token" type="application/json">(.*?)</script>', response.content)
    assert match, response.content[:500]
    return json.loads(match.group(1))


def test_signing_in_with_superoffice_hands_the_panel_a_token_for_that_user(client, panel):
    done = _sign_in(client, panel)

    assert done.status_code == 200
    assert done.headers["Cross-Origin-Opener-Policy"] == "unsafe-none"
    user = auth.panel_token_read(token=_token(done))
    assert user is not None
    assert (user.account_id, user.associate_id, user.method) == (panel.account_id, 2, "oidc")


def test_the_token_from_the_sign_in_opens_the_panel(client, panel):
    contact = ContactFactory(account=panel.account, email="waiting@example.com")
    waiting_runs(panel.account, contact)
    token = _token(_sign_in(client, panel))

    response = client.get(
        reverse("leads:queue", kwargs={"panel_key": panel.panel_key}),
        {"usid": "2"},
        HTTP_X_PANEL_TOKEN=token,
    )

    assert response.status_code == 200
    assert b"waiting@example.com" in response.content


def test_the_authorize_request_uses_pkce_state_and_nonce(client, panel):
    start = client.get(reverse("leads:panel_sign_in", kwargs={"panel_key": panel.panel_key}))

    query = parse_qs(urlsplit(start["Location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["state"][0]) >= 32
    assert len(query["nonce"][0]) >= 32
    assert query["client_id"] == [idp.CLIENT_ID]


def test_a_sign_in_answer_with_a_foreign_state_is_refused(client, panel):
    start = client.get(
        reverse("leads:panel_sign_in", kwargs={"panel_key": panel.panel_key}),
        {"login_hint": "SAL1"},
    )
    authorize = requests.get(start["Location"], allow_redirects=False, timeout=10)
    back = urlsplit(authorize.headers["Location"])
    params = {k: v[0] for k, v in parse_qs(back.query).items()}
    params["state"] = "attacker-state"

    response = client.get(back.path, params)

    assert response.status_code == 403
    assert b"panel-token" not in response.content


def test_a_sign_in_answer_without_the_pop_ups_cookie_is_refused(client, panel):
    start = client.get(
        reverse("leads:panel_sign_in", kwargs={"panel_key": panel.panel_key}),
        {"login_hint": "SAL1"},
    )
    authorize = requests.get(start["Location"], allow_redirects=False, timeout=10)
    back = urlsplit(authorize.headers["Location"])
    client.cookies.clear()

    response = client.get(back.path, {k: v[0] for k, v in parse_qs(back.query).items()})

    assert response.status_code == 403


def test_a_superoffice_user_of_another_tenant_is_refused(client, panel):
    panel.context_identifier = "Cust99999"
    panel.save()

    response = _sign_in(client, panel)

    assert response.status_code == 403
    assert b"another tenant" in response.content


def test_a_sign_in_with_the_wrong_client_secret_is_refused(client, panel):
    panel.oidc_client_secret = "not-the-secret"
    panel.save()

    response = _sign_in(client, panel)

    assert response.status_code == 403
    assert b"panel-token" not in response.content


def test_the_sign_in_learns_the_users_groups_from_netserver(client, panel):
    done = _sign_in(client, panel, login_hint="SAL2")  # Siri Seller: Sales, and Marketing

    user = auth.panel_token_read(token=_token(done))
    assert user.associate_id == 3
    assert set(user.group_ids) == {1, 2}


def test_groups_limit_panels_for_users_signed_in_with_superoffice(client, panel):
    panel.panel_groups = {"queue": [2]}  # Marketing
    panel.save()
    siri = _token(_sign_in(client, panel, login_hint="SAL2"))
    sam = _token(_sign_in(client, panel, login_hint="SAL1"))  # Sales only
    url = reverse("leads:queue", kwargs={"panel_key": panel.panel_key})

    assert client.get(url, HTTP_X_PANEL_TOKEN=siri).status_code == 200
    assert client.get(url, HTTP_X_PANEL_TOKEN=sam).status_code == 403


def test_without_netserver_the_groups_stay_unknown_and_limited_panels_closed(
    client, panel, simulator
):
    simulator.control(mode="down", operations=["AuthenticateWithAccessToken"])

    user = auth.panel_token_read(token=_token(_sign_in(client, panel)))

    assert user.associate_id == 2
    assert user.group_ids is None


def test_a_discovery_document_pointing_elsewhere_is_refused(client, panel, simulator):
    """The hub fetches what the discovery names: only from the host the admin set."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Evil(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = json.dumps(
                {
                    "issuer": f"http://127.0.0.1:{self.server.server_address[1]}",
                    "authorization_endpoint": simulator.root_url + idp.AUTHORIZE_PATH,
                    "token_endpoint": "http://169.254.169.254/latest/meta-data/",
                    "jwks_uri": simulator.root_url + idp.JWKS_PATH,
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    Thread(target=server.serve_forever, daemon=True).start()
    panel.oidc_issuer = f"http://127.0.0.1:{server.server_address[1]}"
    panel.save()
    try:
        response = client.get(reverse("leads:panel_sign_in", kwargs={"panel_key": panel.panel_key}))
    finally:
        server.shutdown()
        server.server_close()

    assert response.status_code == 403
    assert b"another host" in response.content


@pytest.mark.parametrize("status", [302, 307])
def test_discovery_does_not_follow_a_redirect_and_tells_the_admin(
    client, admin_client, account, status
):
    """The issuer answers its discovery document with a redirect (to a server that would
    serve a document naming internal endpoints): refused, nothing fetched from there."""
    from django.core.cache import cache

    from tests.crm.loopback import loopback_server, redirect

    cache.clear()
    with loopback_server() as issuer, loopback_server() as elsewhere:
        issuer.behaviour["*"] = redirect(status, f"{elsewhere.url}{auth.DISCOVERY_PATH}")
        panel = PanelSettingsFactory(
            account=account,
            context_identifier="Cust12345",
            oidc_issuer=issuer.url,
            oidc_client_id=idp.CLIENT_ID,
            oidc_client_secret="secret",
        )
        with pytest.raises(auth.ProviderMisconfigured, match="redirect"):
            auth.provider_metadata(issuer=issuer.url, refresh=True)

        start = client.get(reverse("leads:panel_sign_in", kwargs={"panel_key": panel.panel_key}))

        assert start.status_code == 403
        assert b"answered with a redirect" in start.content
        assert elsewhere.requests == []
        assert [r[1] for r in issuer.requests] == [auth.DISCOVERY_PATH] * 2
    page = admin_client.get(reverse("leads:panel_settings"))
    assert b'id="oidc-error"' in page.content
    assert b"answered with a redirect" in page.content


def test_discovery_at_an_internal_address_is_refused_unless_the_operator_allows_it(
    client, account, settings
):
    from django.core.cache import cache

    from tests.crm.loopback import loopback_server

    cache.clear()
    settings.CRM_ALLOW_PRIVATE_ADDRESSES = False
    with loopback_server() as issuer:
        with pytest.raises(auth.ProviderMisconfigured, match="internal address"):
            auth.provider_metadata(issuer=f"http://localhost:{issuer.port}", refresh=True)
        assert issuer.requests == []
