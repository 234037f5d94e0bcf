"""Panels show data only to a verified SuperOffice user of the account, in the allowed groups,
and may be framed only by the account's SuperOffice host."""

import secrets
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from leads import auth
from leads.models import Panel, PanelSession

from .factories import (
    SUPEROFFICE_HOST,
    ContactFactory,
    PanelSettingsFactory,
    token_for,
    waiting_runs,
)

pytestmark = pytest.mark.django_db

SECRET_EMAIL = "secret.lead@example.com"


@pytest.fixture
def panel(account):
    settings = PanelSettingsFactory(account=account)
    waiting_runs(account, ContactFactory(account=account, email=SECRET_EMAIL))
    return settings


def _get(client, settings, name="leads:queue", token=None, **params):
    url = reverse(name, kwargs={"panel_key": settings.panel_key})
    headers = {"HTTP_X_PANEL_TOKEN": token} if token else {}
    return client.get(url, params, **headers)


def test_a_verified_user_sees_the_queue(client, panel):
    response = _get(client, panel, token=token_for(panel))

    assert response.status_code == 200
    assert SECRET_EMAIL.encode() in response.content


@pytest.mark.parametrize(
    "name", ["leads:queue", "leads:lead_report", "leads:timeline", "leads:event_details"]
)
def test_without_a_token_no_panel_shows_data(client, panel, name):
    response = _get(client, panel, name, atid="1", said="1")

    assert response.status_code == 401
    assert SECRET_EMAIL.encode() not in response.content
    assert b"Sign in with SuperOffice" in response.content
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_url_variables_alone_prove_nothing(client, panel):
    response = _get(client, panel, usid="2", uctx=panel.context_identifier)

    assert response.status_code == 401
    assert SECRET_EMAIL.encode() not in response.content


def test_a_made_up_token_gets_no_data(client, panel):
    token_for(panel)
    forged = secrets.token_urlsafe(32)

    response = _get(client, panel, token=forged)

    assert response.status_code == 401
    assert SECRET_EMAIL.encode() not in response.content


def test_an_expired_token_gets_no_data(client, panel):
    token = token_for(panel)
    # Three hours later: past the panel session's lifetime of two hours.
    PanelSession.objects.update(expires_at=timezone.now() - timedelta(hours=1))

    response = _get(client, panel, token=token)

    assert response.status_code == 401
    assert SECRET_EMAIL.encode() not in response.content


def test_a_token_of_another_account_gets_no_data(client, panel, other_account):
    other = PanelSettingsFactory(account=other_account)

    response = _get(client, panel, token=token_for(other))

    assert response.status_code == 401
    assert SECRET_EMAIL.encode() not in response.content


def test_a_token_of_another_tenant_of_the_same_account_gets_no_data(client, panel):
    token = token_for(panel)
    panel.context_identifier = "Cust99999"
    panel.save()

    response = _get(client, panel, token=token)

    assert response.status_code == 401


def test_a_user_outside_the_allowed_groups_gets_no_data(client, panel):
    panel.panel_groups = {Panel.QUEUE: [4]}
    panel.save()

    response = _get(client, panel, token=token_for(panel, groups=(1, 2)))

    assert response.status_code == 403
    assert SECRET_EMAIL.encode() not in response.content


def test_a_user_in_an_allowed_group_sees_the_panel(client, panel):
    panel.panel_groups = {Panel.QUEUE: [4, 2]}
    panel.save()

    response = _get(client, panel, token=token_for(panel, groups=(1, 2)))

    assert response.status_code == 200


def test_a_sign_in_that_does_not_tell_the_groups_is_refused_where_groups_are_limited(client, panel):
    panel.panel_groups = {Panel.QUEUE: [1]}
    panel.save()

    response = _get(client, panel, token=token_for(panel, groups=None))

    assert response.status_code == 403
    assert SECRET_EMAIL.encode() not in response.content


def test_groups_limit_only_the_panels_they_are_set_for(client, panel):
    panel.panel_groups = {Panel.QUEUE: [4]}
    panel.save()

    response = _get(client, panel, "leads:lead_report", token=token_for(panel, groups=(1,)))

    assert response.status_code == 200


def test_a_usid_that_is_not_the_verified_user_gets_no_data(client, panel):
    response = _get(client, panel, token=token_for(panel, associate_id=2), usid="1")

    assert response.status_code == 403
    assert SECRET_EMAIL.encode() not in response.content


def test_a_usid_of_the_verified_user_is_accepted(client, panel):
    response = _get(client, panel, token=token_for(panel, associate_id=2), usid="2")

    assert response.status_code == 200


def test_an_unknown_panel_key_is_not_found(client, panel):
    response = client.get(reverse("leads:queue", kwargs={"panel_key": "nope"}))

    assert response.status_code == 404


def test_panels_may_be_framed_by_the_accounts_superoffice_host_only(client, panel):
    response = _get(client, panel, token=token_for(panel))

    csp = response.headers["Content-Security-Policy"]
    assert csp.endswith(f"; frame-ancestors {SUPEROFFICE_HOST}")
    assert csp.count("frame-ancestors") == 1
    assert "X-Frame-Options" not in response.headers


def test_the_sign_in_page_of_a_panel_is_framed_by_the_same_host_only(client, panel):
    response = _get(client, panel)

    csp = response.headers["Content-Security-Policy"]
    assert csp.endswith(f"; frame-ancestors {SUPEROFFICE_HOST}") and "script-src 'self'" in csp


def test_a_panel_without_an_allowed_host_refuses_every_frame(client, panel):
    panel.frame_ancestors = ""
    panel.save()

    response = _get(client, panel, token=token_for(panel))

    assert response.headers["Content-Security-Policy"].endswith("; frame-ancestors 'none'")


def test_the_hubs_own_pages_refuse_framing(admin_client, panel):
    response = admin_client.get(reverse("leads:panel_settings"))

    assert response.headers["Content-Security-Policy"].endswith("; frame-ancestors 'none'")


def test_a_change_needs_the_token_in_the_header_or_form_not_only_a_cookie(client, panel):
    contact = ContactFactory(account=panel.account, email="x@example.com")
    waiting_runs(panel.account, contact)
    client.cookies["emhub_panel"] = token_for(panel)
    url = reverse(
        "leads:queue_dismiss", kwargs={"panel_key": panel.panel_key, "contact_id": contact.id}
    )

    by_cookie = client.post(url, {"reason": "spam"})
    by_header = client.post(url, {"reason": "spam"}, HTTP_X_PANEL_TOKEN=token_for(panel))

    assert by_cookie.status_code == 401
    assert by_header.status_code == 200
    assert b"1 waiting run(s) cancelled" in by_header.content


def test_a_contact_of_another_account_cannot_be_touched_through_a_panel(
    client, panel, other_account
):
    foreign = ContactFactory(account=other_account, email="foreign@example.com")
    waiting_runs(other_account, foreign)
    token = token_for(panel)

    for name in (
        "leads:queue_dismiss",
        "leads:queue_match",
        "leads:lead_reject",
        "leads:lead_reject_undo",
        "leads:lead_merge",
    ):
        url = reverse(name, kwargs={"panel_key": panel.panel_key, "contact_id": foreign.id})
        response = client.post(url, {"reason": "x", "person_id": 5}, HTTP_X_PANEL_TOKEN=token)
        assert response.status_code == 404, name
    foreign.refresh_from_db()
    assert foreign.superoffice_person_id is None


def test_a_token_from_the_header_is_kept_in_a_partitioned_cookie_over_https(client, panel):
    response = client.get(
        reverse("leads:queue", kwargs={"panel_key": panel.panel_key}),
        HTTP_X_PANEL_TOKEN=token_for(panel),
        secure=True,
    )

    cookie = response.cookies["emhub_panel"].output()
    assert response.status_code == 200
    for attribute in ("Secure", "HttpOnly", "SameSite=None", "Partitioned"):
        assert attribute in cookie
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_a_token_in_the_url_is_not_accepted(client, panel):
    response = _get(client, panel, pt=token_for(panel))

    assert response.status_code == 401
    assert SECRET_EMAIL.encode() not in response.content
    assert "emhub_panel" not in response.cookies


def test_a_signed_out_panel_session_is_refused_everywhere(client, panel):
    token = token_for(panel)
    assert _get(client, panel, token=token).status_code == 200

    signed_out = client.post(
        reverse("leads:panel_sign_out", kwargs={"panel_key": panel.panel_key}),
        HTTP_X_PANEL_TOKEN=token,
    )

    assert signed_out.status_code == 200
    assert b"You are signed out." in signed_out.content
    for name in ("leads:queue", "leads:lead_report", "leads:timeline"):
        response = _get(client, panel, name, token=token, atid="1")
        assert response.status_code == 401, name
        assert SECRET_EMAIL.encode() not in response.content


def test_a_panel_session_the_admin_ended_is_refused(client, admin_client, panel):
    token = token_for(panel)
    kept = token_for(panel, associate_id=3)
    assert _get(client, panel, token=token).status_code == 200
    page = admin_client.get(reverse("leads:panel_settings"))
    [row] = [s for s in page.context["panel_sessions"] if s.associate_id == 2]
    assert f'data-panel-session="{row.id}"'.encode() in page.content

    ended = admin_client.post(
        reverse("leads:panel_session_revoke", kwargs={"panel_session_id": row.id})
    )

    assert ended.status_code == 302
    response = _get(client, panel, token=token)
    assert response.status_code == 401
    assert SECRET_EMAIL.encode() not in response.content
    # Another rep's sign-in is untouched, until the admin ends them all.
    assert _get(client, panel, token=kept).status_code == 200
    admin_client.post(reverse("leads:panel_sessions_revoke_all"))
    assert _get(client, panel, token=kept).status_code == 401


def test_a_marketer_cannot_end_panel_sessions(client, marketer_client, panel):
    token = token_for(panel)
    session_id = auth.panel_token_read(token=token).session_id

    response = marketer_client.post(
        reverse("leads:panel_session_revoke", kwargs={"panel_session_id": session_id})
    )

    assert response.status_code == 403
    assert _get(client, panel, token=token).status_code == 200


def test_no_panel_url_answers_a_hub_session_of_another_account_with_data(
    admin_client, other_account
):
    """The panels' own isolation sweep: a hub admin of account A, with A's session, asks
    every panel URL of account B (B's panel key, B's contact)."""
    from django.urls import get_resolver

    from leads.models import BulkMatch
    from leads.urls import PANEL_URL_NAMES

    b_panel = PanelSettingsFactory(account=other_account)
    b_contact = ContactFactory(account=other_account, email=SECRET_EMAIL)
    waiting_runs(other_account, b_contact)
    b_bulk = BulkMatch.objects.create(account=other_account, contact_ids=[b_contact.id])
    [leads_urls] = [
        r for r in get_resolver().url_patterns if getattr(r, "namespace", "") == "leads"
    ]
    patterns = {p.name: str(p.pattern) for p in leads_urls.url_patterns}
    admin_pages = {"panel_settings", "panel_session_revoke", "panel_sessions_revoke_all"}
    assert set(PANEL_URL_NAMES) == set(patterns) - admin_pages

    for name in PANEL_URL_NAMES:
        kwargs = {"panel_key": b_panel.panel_key}
        if "contact_id" in patterns[name]:
            kwargs["contact_id"] = b_contact.id
        if "bulk_match_id" in patterns[name]:
            kwargs["bulk_match_id"] = b_bulk.id
        url = reverse(f"leads:{name}", kwargs=kwargs)
        for method in ("get", "post"):
            response = getattr(admin_client, method)(url, {"person_id": 1, "reason": "x"})
            assert response.status_code in (401, 403, 404, 405), (name, method)
            assert SECRET_EMAIL.encode() not in response.content, (name, method)
    b_contact.refresh_from_db()
    assert b_contact.superoffice_person_id is None
