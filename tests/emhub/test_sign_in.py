import pytest
from django.urls import reverse

from emhub.models import Membership
from emhub.tenancy import SESSION_ACCOUNT_KEY
from tests.factories import DEFAULT_PASSWORD, AccountFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_sign_in_page_renders_a_form(client):
    response = client.get(reverse("emhub:login"))
    assert response.status_code == 200
    assert b'name="username"' in response.content and b'name="password"' in response.content


def test_a_member_of_one_account_signs_in_straight_into_it(client, marketer, account):
    response = client.post(
        reverse("emhub:login"), {"username": "mia", "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 302
    assert client.session[SESSION_ACCOUNT_KEY] == account.pk
    home = client.get(reverse("emhub:home"))
    assert home.status_code == 200
    assert account.name.encode() in home.content


def test_a_wrong_password_shows_a_clear_form_error_not_a_500(client, marketer):
    response = client.post(reverse("emhub:login"), {"username": "mia", "password": "nope"})
    assert response.status_code == 200
    assert b"do not match" in response.content
    assert SESSION_ACCOUNT_KEY not in client.session


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"username": ""},
        {"username": "x" * 5000, "password": "y"},
        {"username": "\x00", "password": "\x00"},
    ],
)
def test_malformed_sign_in_input_gets_a_form_error(client, data):
    response = client.post(reverse("emhub:login"), data)
    assert response.status_code == 200
    assert b"field-error" in response.content or b"form-errors" in response.content


def test_pages_send_anonymous_users_to_sign_in(client):
    response = client.get(reverse("emhub:home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("emhub:login"))


def test_a_user_in_two_accounts_picks_one_and_can_switch(client):
    user = UserFactory(username="sam")
    first = AccountFactory(slug="first", name="First Ltd")
    second = AccountFactory(slug="second", name="Second Ltd")
    MembershipFactory(user=user, account=first)
    MembershipFactory(user=user, account=second, role=Membership.Role.ADMIN)

    response = client.post(
        reverse("emhub:login"), {"username": "sam", "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 302
    assert client.get(reverse("emhub:home"))["Location"] == reverse("emhub:account_pick")

    page = client.get(reverse("emhub:account_pick"))
    assert b"First Ltd" in page.content and b"Second Ltd" in page.content

    client.post(reverse("emhub:account_pick"), {"account_id": second.pk})
    assert client.session[SESSION_ACCOUNT_KEY] == second.pk
    assert b"Second Ltd" in client.get(reverse("emhub:home")).content


def test_picking_an_account_the_user_is_not_in_is_refused(client, marketer, other_account):
    client.force_login(marketer)
    response = client.post(
        reverse("emhub:account_pick"), {"account_id": other_account.pk}, follow=True
    )
    assert b"Choose one of your accounts" in response.content
    assert client.session.get(SESSION_ACCOUNT_KEY) != other_account.pk


@pytest.mark.parametrize("bad", ["abc", "", "99999999999999999999999"])
def test_a_malformed_account_choice_is_a_message_not_a_500(client, marketer, bad):
    client.force_login(marketer)
    response = client.post(reverse("emhub:account_pick"), {"account_id": bad}, follow=True)
    assert response.status_code == 200
    assert b"Choose one of your accounts" in response.content


def test_a_removed_membership_takes_effect_on_the_next_request(marketer_client, marketer, account):
    assert marketer_client.get(reverse("emhub:home")).status_code == 200
    Membership.objects.filter(user=marketer, account=account).delete()
    assert marketer_client.get(reverse("emhub:home"))["Location"] == reverse("emhub:account_pick")


def test_sign_out_ends_the_session(marketer_client):
    response = marketer_client.post(reverse("emhub:logout"))
    assert response.status_code == 302
    assert marketer_client.get(reverse("emhub:home")).status_code == 302


def test_marketers_do_not_see_admin_pages(marketer_client):
    assert marketer_client.get(reverse("emhub:api_keys")).status_code == 403


def test_the_dashboard_counts_only_this_accounts_events(marketer_client, account, other_account):
    from tests.campaigns.factories import EventFactory

    EventFactory.create_batch(3, campaign__account=account)
    EventFactory.create_batch(5, campaign__account=other_account)
    response = marketer_client.get(reverse("emhub:home"))
    assert response.context["figures"].events_total == 3
    assert sum(response.context["figures"].events_chart["datasets"][0]["data"]) == 3


def test_the_dashboard_reads_a_bounded_number_of_queries(
    marketer_client, account, django_assert_max_num_queries
):
    from tests.campaigns.factories import EventFactory

    EventFactory.create_batch(30, campaign__account=account)
    with django_assert_max_num_queries(12):
        marketer_client.get(reverse("emhub:home"))
