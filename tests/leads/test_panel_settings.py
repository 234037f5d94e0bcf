"""The admin's panel settings page: groups per panel, framing host, sign-in, panel URLs."""

import pytest
from django.urls import reverse

from leads.models import PanelSettings

pytestmark = pytest.mark.django_db

URL = "leads:panel_settings"


def _form(**overrides):
    data = {
        "context_identifier": "Cust12345",
        "frame_ancestors": "https://online.superoffice.com",
        "oidc_issuer": "https://online.superoffice.com",
        "oidc_client_id": "app-1",
        "oidc_client_secret": "s3cret",
        "flag_after_days": "5",
    }
    data.update(overrides)
    return data


def test_a_marketer_cannot_open_the_panel_settings(marketer_client):
    assert marketer_client.get(reverse(URL)).status_code == 403


def test_the_admin_sees_ready_made_panel_urls_with_superoffice_variables(admin_client, account):
    response = admin_client.get(reverse(URL))

    body = response.content.decode()
    key = PanelSettings.objects.get(account=account).panel_key
    assert f"/panels/{key}/timeline/?atid=&lt;atid&gt;&amp;usid=&lt;usid&gt;" in body
    assert f"/panels/{key}/event/?said=&lt;said&gt;" in body
    assert "&lt;usec&gt;" not in body.split('id="panel-urls"')[1].split("</section>")[0]


def test_the_admin_saves_groups_per_panel_and_the_framing_host(
    admin_client, crm_account, admin_user, signed_in, simulator
):
    from tests.factories import MembershipFactory

    MembershipFactory(account=crm_account, user=admin_user, role="admin")
    client = signed_in(admin_client, admin_user, crm_account)

    page = client.get(reverse(URL))
    response = client.post(
        reverse(URL), _form(groups_queue=["1", "4"], usec_enabled="on"), follow=True
    )

    assert b"Sales" in page.content and b"Management" in page.content
    assert response.status_code == 200
    settings = PanelSettings.objects.get(account=crm_account)
    assert settings.groups_for("queue") == [1, 4]
    assert settings.groups_for("leads") == []
    assert settings.ancestors == ["https://online.superoffice.com"]
    assert settings.oidc_client_secret == "s3cret"
    assert settings.usec_enabled and settings.flag_after_days == 5
    assert b"&lt;usec&gt;" in response.content


def test_a_blank_client_secret_keeps_the_stored_one(admin_client, account):
    admin_client.post(reverse(URL), _form())
    admin_client.post(reverse(URL), _form(oidc_client_secret=""))

    assert PanelSettings.objects.get(account=account).oidc_client_secret == "s3cret"


@pytest.mark.parametrize(
    "value",
    ["'none' https://x.example", "https://evil.example/path", "javascript:alert(1)", "*"],
)
def test_a_framing_host_that_is_not_an_origin_is_a_form_error(admin_client, account, value):
    response = admin_client.post(reverse(URL), _form(frame_ancestors=value))

    assert response.status_code == 200
    assert b"field-error" in response.content
    assert not PanelSettings.objects.get(account=account).ancestors


def test_bad_numbers_are_form_errors(admin_client, account):
    response = admin_client.post(reverse(URL), _form(flag_after_days="-3"))

    assert response.status_code == 200
    assert b"field-error" in response.content
