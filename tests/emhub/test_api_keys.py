import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from emhub.models import ApiKey, hash_api_key

pytestmark = pytest.mark.django_db


def test_an_admin_creates_a_key_on_the_settings_page_and_sees_it_once(admin_client, account):
    response = admin_client.post(reverse("emhub:api_keys"), {"name": "Web shop"})
    assert response.status_code == 200
    raw_key = response.context["new_key"]
    assert raw_key.startswith("emh_")
    stored = ApiKey.objects.get(account=account)
    assert stored.key_hash == hash_api_key(raw_key)
    assert raw_key not in str(ApiKey.objects.values_list().get())  # only the hash is stored
    again = admin_client.get(reverse("emhub:api_keys"))
    assert raw_key.encode() not in again.content


def test_a_blank_key_name_is_a_form_error(admin_client, account):
    response = admin_client.post(reverse("emhub:api_keys"), {"name": "   "})
    assert response.status_code == 200
    assert b"field-error" in response.content
    assert not ApiKey.objects.filter(account=account).exists()


def test_a_key_authenticates_api_calls_in_its_own_account(api_client, account):
    response = api_client.get(reverse("emhub:whoami_api"))
    assert response.status_code == 200
    assert response.json()["account"] == account.slug


def test_a_revoked_key_is_refused(admin_client, api_client, account):
    key = ApiKey.objects.get(account=account)
    admin_client.post(reverse("emhub:api_key_revoke", args=[key.pk]))
    response = api_client.get(reverse("emhub:whoami_api"))
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer a b", "Bearer emh_not-a-key", "Token abc", "Basic Zm9vOmJhcg=="]
)
def test_bad_authorization_headers_are_refused_with_a_message(header, account):
    client = APIClient()
    response = client.get(reverse("emhub:whoami_api"), HTTP_AUTHORIZATION=header)
    assert response.status_code in (401, 403)
    assert response.json()["detail"]


def test_the_key_api_creates_lists_and_revokes(admin_client, account):
    created = admin_client.post(
        reverse("emhub:api_key_list_api"), {"name": "CRM bridge"}, content_type="application/json"
    )
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith("emh_") and body["name"] == "CRM bridge"

    listed = admin_client.get(reverse("emhub:api_key_list_api")).json()
    assert [k["name"] for k in listed] == ["CRM bridge"]
    assert "key" not in listed[0]

    revoked = admin_client.delete(reverse("emhub:api_key_detail_api", args=[body["id"]]))
    assert revoked.status_code == 204
    assert ApiKey.objects.get(pk=body["id"]).revoked_at is not None


@pytest.mark.parametrize(
    "payload, field",
    [({}, "name"), ({"name": ""}, "name"), ({"name": "x" * 101}, "name"), ({"name": None}, "name")],
)
def test_bad_input_to_the_key_api_gets_field_messages(admin_client, payload, field):
    response = admin_client.post(
        reverse("emhub:api_key_list_api"), payload, content_type="application/json"
    )
    assert response.status_code == 400
    assert field in response.json()


def test_a_non_json_body_to_the_key_api_is_a_400(admin_client):
    response = admin_client.post(
        reverse("emhub:api_key_list_api"), "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert "detail" in response.json()


def test_marketers_and_api_keys_cannot_manage_keys(marketer_client, api_client):
    assert marketer_client.get(reverse("emhub:api_key_list_api")).status_code == 403
    assert api_client.post(reverse("emhub:api_key_list_api"), {"name": "x"}).status_code in (
        401,
        403,
    )


def test_create_api_key_command_prints_a_working_key(account, capsys):
    call_command("create_api_key", "--account", account.slug)
    raw_key = capsys.readouterr().out.strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert client.get(reverse("emhub:whoami_api")).json()["account"] == account.slug


def test_create_api_key_command_names_an_unknown_account(db):
    with pytest.raises(CommandError, match="No account with slug 'nope'"):
        call_command("create_api_key", "--account", "nope")
