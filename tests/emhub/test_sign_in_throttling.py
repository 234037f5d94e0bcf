"""Sign-in throttling (django-axes): the sixth wrong password in a row locks the user and
the address, the lockout is shown, and an admin of the account lifts it. Wrong API keys
lock the address out of the API the same way."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db

ATTACKER = "203.0.113.7"
COLLEAGUE = "198.51.100.20"


def _sign_in(client, username, password, address=ATTACKER):
    return client.post(
        reverse("emhub:login"),
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


@pytest.fixture
def admin_browser(admin_user, account, signed_in):
    """An admin of the account in a browser of their own (the test's client is the
    attacker's)."""
    return signed_in(Client(), admin_user, account)


def test_the_sixth_wrong_password_locks_the_user_from_that_address_until_an_admin_lifts_it(
    client, marketer, admin_browser
):
    admin_client = admin_browser
    for attempt in range(1, 6):
        response = _sign_in(client, "mia", f"wrong-{attempt}")
        assert response.status_code == 200, attempt
        assert b"do not match" in response.content

    sixth = _sign_in(client, "mia", "wrong-6")

    assert sixth.status_code == 429
    assert b"Too many failed sign-ins" in sixth.content
    assert b"30 minutes" in sixth.content
    # Now even the right password is refused, from that address and for that user.
    assert _sign_in(client, "mia", DEFAULT_PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session
    assert _sign_in(client, "mia", DEFAULT_PASSWORD, address=COLLEAGUE).status_code == 429

    page = admin_client.get(reverse("emhub:sign_in_lockouts"))
    assert b'data-locked="mia"' in page.content
    assert ATTACKER.encode() in page.content
    lifted = admin_client.post(reverse("emhub:sign_in_lockouts"), {"username": "mia"})
    assert lifted.status_code == 302
    assert b'data-locked="mia"' not in admin_client.get(reverse("emhub:sign_in_lockouts")).content

    response = _sign_in(client, "mia", DEFAULT_PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(marketer.pk)


def test_an_address_trying_many_user_names_is_locked_for_all_of_them(client, marketer):
    for attempt in range(6):
        _sign_in(client, f"guess-{attempt}", "x")

    assert _sign_in(client, "mia", DEFAULT_PASSWORD).status_code == 429
    # The same user from another address is not held back by that address.
    assert _sign_in(client, "mia", DEFAULT_PASSWORD, address=COLLEAGUE).status_code == 302


def test_a_right_password_clears_the_count(client, marketer):
    for _ in range(5):
        _sign_in(client, "mia", "wrong")
    assert _sign_in(client, "mia", DEFAULT_PASSWORD).status_code == 302
    client.logout()

    for _ in range(5):
        assert _sign_in(client, "mia", "wrong").status_code == 200


def test_a_marketer_cannot_lift_lockouts_and_no_admin_lifts_another_accounts(
    client, marketer, account, signed_in, admin_browser, other_account
):
    from tests.factories import MembershipFactory, UserFactory

    marketer_client = signed_in(Client(), marketer, account)
    admin_client = admin_browser
    MembershipFactory(account=other_account, user=UserFactory(username="otto"))
    for _ in range(6):
        _sign_in(client, "otto", "wrong")

    assert marketer_client.get(reverse("emhub:sign_in_lockouts")).status_code in (302, 403, 404)
    page = admin_client.get(reverse("emhub:sign_in_lockouts"))
    assert b"otto" not in page.content
    admin_client.post(reverse("emhub:sign_in_lockouts"), {"username": "otto"})
    assert _sign_in(client, "otto", DEFAULT_PASSWORD, address=COLLEAGUE).status_code == 429


def test_the_sixth_wrong_api_key_locks_the_address_out_of_the_api(client, api_key):
    url = reverse("emhub:whoami_api")
    for attempt in range(5):
        response = client.get(
            url, HTTP_AUTHORIZATION=f"Bearer wrong-{attempt}", REMOTE_ADDR=ATTACKER
        )
        assert response.status_code == 401, attempt

    sixth = client.get(url, HTTP_AUTHORIZATION="Bearer wrong-6", REMOTE_ADDR=ATTACKER)
    right = client.get(url, HTTP_AUTHORIZATION=f"Bearer {api_key}", REMOTE_ADDR=ATTACKER)
    elsewhere = client.get(url, HTTP_AUTHORIZATION=f"Bearer {api_key}", REMOTE_ADDR=COLLEAGUE)

    assert sixth.status_code == 429
    assert "Too many wrong API keys" in sixth.json()["detail"]
    assert right.status_code == 429
    assert elsewhere.status_code == 200


def test_behind_a_trusted_proxy_the_address_is_the_one_the_proxy_saw(client, marketer, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for attempt in range(6):
        client.post(
            reverse("emhub:login"),
            {"username": f"guess-{attempt}", "password": "x"},
            REMOTE_ADDR="10.0.0.2",
            # The first entry is the caller's own claim; the proxy appended the real one.
            HTTP_X_FORWARDED_FOR=f"1.2.3.{attempt}, {ATTACKER}",
        )

    locked = client.post(
        reverse("emhub:login"),
        {"username": "mia", "password": DEFAULT_PASSWORD},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR=f"9.9.9.9, {ATTACKER}",
    )
    other = client.post(
        reverse("emhub:login"),
        {"username": "mia", "password": DEFAULT_PASSWORD},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR=COLLEAGUE,
    )
    assert locked.status_code == 429
    assert other.status_code == 302
