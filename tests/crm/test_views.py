"""The SuperOffice connection page and the call log, as an admin uses them."""

import pytest
from django.urls import reverse

from crm.models import CrmCall, SuperOfficeConnection
from crm.services import client_for_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def crm_admin_client(client, crm_account, signed_in):
    from emhub.models import Membership
    from tests.factories import MembershipFactory, UserFactory

    user = MembershipFactory(
        account=crm_account, user=UserFactory(username="crm-ada"), role=Membership.Role.ADMIN
    ).user
    return signed_in(client, user, crm_account)


def test_marketers_do_not_see_the_connection_page(marketer_client):
    assert marketer_client.get(reverse("crm:connection")).status_code == 403
    assert marketer_client.get(reverse("crm:call_list")).status_code == 403


def test_a_marketer_who_opens_an_admin_page_is_told_it_is_for_admins(marketer_client):
    response = marketer_client.get(reverse("crm:call_list"))
    html = response.content.decode()
    assert response.status_code == 403
    assert "This page is for admins" in html and "ask one of your account's admins" in html
    assert 'href="/"' in html  # inside the hub's own layout, with the way back
    assert "Page not found" not in html and "Traceback" not in html


def test_admin_saves_a_connection_and_secrets_are_never_shown_back(
    admin_client, account, simulator
):
    response = admin_client.post(
        reverse("crm:connection"),
        {
            "base_url": simulator.root_url,
            "auth_mode": "onsite",
            "username": simulator.username,
            "password": simulator.password,
            "application_token": simulator.app_token,
        },
    )
    assert response.status_code == 302
    connection = SuperOfficeConnection.objects.get(account=account)
    assert connection.password == simulator.password
    page = admin_client.get(reverse("crm:connection")).content.decode()
    assert simulator.password not in page and simulator.app_token not in page
    assert "A password is stored." in page


def test_onsite_without_password_is_explained(admin_client, simulator):
    response = admin_client.post(
        reverse("crm:connection"),
        {
            "base_url": simulator.root_url,
            "auth_mode": "onsite",
            "username": "x",
        },
    )
    assert response.status_code == 200
    assert "needs a password" in response.content.decode()


def test_internal_address_is_explained(admin_client, settings):
    settings.CRM_ALLOW_PRIVATE_ADDRESSES = False
    response = admin_client.post(
        reverse("crm:connection"),
        {
            "base_url": "https://10.0.0.5/Cust1/",
            "auth_mode": "onsite",
            "username": "u",
            "password": "p",
        },
    )
    assert "Internal addresses are not allowed" in response.content.decode()


def test_test_connection_shows_who_the_hub_signed_in_as(crm_admin_client):
    response = crm_admin_client.post(reverse("crm:connection_test"), follow=True)
    assert "Signed in as Ada Admin (associate 1)" in response.content.decode()


def test_test_connection_shows_why_not(crm_admin_client, crm_account):
    SuperOfficeConnection.objects.filter(account=crm_account).update(password="wrong")
    response = crm_admin_client.post(reverse("crm:connection_test"), follow=True)
    assert "user name or password" in response.content.decode()


def test_call_log_is_paginated_and_account_scoped(crm_admin_client, crm_account, other_account):
    crm = client_for_account(crm_account, correlation="run:page")
    for person_id in range(1, 60):
        crm.get_person(person_id=person_id)
    CrmCall.objects.create(
        account=other_account,
        agent="Person",
        operation="Leak",
        started_at=CrmCall.objects.first().started_at,
        duration_ms=1,
        outcome="ok",
    )
    first = crm_admin_client.get(reverse("crm:call_list")).content.decode()
    assert "Page 1 of 2" in first and "Leak" not in first
    second = crm_admin_client.get(reverse("crm:call_list") + "?page=2").content.decode()
    assert "AuthenticateUsernamePassword" in second
    errors_only = crm_admin_client.get(reverse("crm:call_list") + "?outcome=permanent")
    assert "No calls yet." in errors_only.content.decode()


def test_the_call_logs_xml_wraps_inside_its_card():
    from pathlib import Path

    from django.conf import settings

    css = (Path(settings.BASE_DIR) / "static" / "css" / "app.css").read_text()
    assert "pre.excerpt { white-space: pre-wrap; overflow-wrap: anywhere;" in css
    assert ".card:has(> table.table) { overflow-x: auto; }" in css
