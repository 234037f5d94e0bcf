"""Recipients and panel users never see Django's debug page, whatever DEBUG says: a view
that fails shows the plain branded page of its status and the error is logged."""

import logging

import pytest
from django.db import DatabaseError
from django.test import Client, override_settings
from django.urls import reverse

from campaigns.services import contact_ref_make

from ..campaigns.factories import CampaignFactory, ContactFactory, TrackedLinkFactory
from ..leads.factories import PanelSettingsFactory, token_for

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

DEBUG_PAGE_MARKS = (b"Traceback", b"settings.py", b"DEBUG = True", b"URLconf", b"Request Method")


def _plain(response, status):
    assert response.status_code == status
    assert b'data-testid="error-page"' in response.content
    assert b"<script" not in response.content
    for mark in DEBUG_PAGE_MARKS:
        assert mark not in response.content


def _failing(*args, **kwargs):
    # A fault the hub cannot prevent: the database went away mid-request.
    raise DatabaseError("server closed the connection unexpectedly")


@pytest.fixture
def visitor():
    return Client(raise_request_exception=False, HTTP_USER_AGENT="Mozilla/5.0")


@pytest.mark.parametrize("debug", [True, False])
def test_a_failing_tracked_link_shows_the_branded_page_and_logs(
    visitor, account, monkeypatch, caplog, debug
):
    link = TrackedLinkFactory(campaign=CampaignFactory(account=account))
    contact = ContactFactory(account=account)
    # The click's one write: its raw row (campaigns.clicks).
    monkeypatch.setattr("campaigns.clicks._raw_insert", _failing)
    with override_settings(DEBUG=debug), caplog.at_level(logging.ERROR, "django.request"):
        response = visitor.get(f"/t/{link.token}/", {"c": contact_ref_make(contact=contact)})
    _plain(response, 500)
    assert b"Something went wrong" in response.content
    logged = [r for r in caplog.records if r.name == "django.request" and r.exc_info]
    assert logged and "server closed the connection" in str(logged[0].exc_info[1])


@override_settings(DEBUG=True)
@pytest.mark.parametrize("path", ["/f/not-a-form/", "/o/nothing", "/t/", "/panels/x/nowhere/"])
def test_a_public_path_that_matches_nothing_shows_the_branded_404_with_debug_on(visitor, path):
    _plain(visitor.get(path), 404)


@override_settings(DEBUG=True)
def test_an_unknown_form_and_pixel_show_the_branded_404_with_debug_on(visitor):
    _plain(visitor.post("/f/999999/", {"email": "a@example.com"}), 404)
    _plain(visitor.get("/o/forged.gif"), 404)


@override_settings(DEBUG=True)
def test_a_failing_panel_shows_the_branded_page_inside_its_frame(visitor, account, monkeypatch):
    panel = PanelSettingsFactory(account=account)
    monkeypatch.setattr("leads.selectors.queue_page", _failing)
    url = reverse("leads:queue", kwargs={"panel_key": panel.panel_key})
    response = visitor.get(url, HTTP_X_PANEL_TOKEN=token_for(panel))
    _plain(response, 500)
    # SuperOffice frames the panel: the error shows there instead of a refused frame.
    assert "X-Frame-Options" not in response
    assert panel.ancestors[0] in response["Content-Security-Policy"]


@override_settings(DEBUG=True)
def test_the_marketers_own_pages_keep_the_debug_page_where_debug_is_on(marketer_client):
    marketer_client.raise_request_exception = False
    response = marketer_client.get("/campaigns/999999/")
    assert response.status_code == 404
    assert b"URLconf" in response.content or b"Page not found" in response.content
