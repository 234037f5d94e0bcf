"""Page links say what the next page holds: "Older" on a list newest first, "Next" on one by
name or e-mail, where "Older" would not be true."""

import pytest
from django.core.paginator import Paginator
from django.template.loader import render_to_string
from django.urls import reverse

from tests.automations.factories import CampaignFactory, ContactFactory

pytestmark = pytest.mark.django_db

PER_PAGE = 25  # campaigns.views.PER_PAGE


def _pager(number: int, order: str | None) -> str:
    page = Paginator(range(30), 10).get_page(number)
    context = {"page": page} if order is None else {"page": page, "order": order}
    return render_to_string("_partials/pagination.html", context)


@pytest.mark.parametrize(
    ("order", "back", "forward"),
    [
        ("newest", "← Newer", "Older →"),
        ("oldest", "← Earlier", "Later →"),
        (None, "← Previous", "Next →"),
        ("name", "← Previous", "Next →"),
    ],
)
def test_the_pagination_words_follow_the_order_it_is_told(order, back, forward):
    middle = _pager(2, order)

    assert back in middle and forward in middle
    assert back not in _pager(1, order)
    assert forward not in _pager(3, order)


def test_a_single_page_shows_no_page_links():
    page = Paginator(range(3), 10).get_page(1)

    assert "pagination" not in render_to_string("_partials/pagination.html", {"page": page})


def test_the_contact_list_by_email_says_next_and_previous(marketer_client, account):
    ContactFactory.create_batch(PER_PAGE + 1, account=account)
    url = reverse("campaigns:contact_list")

    first = marketer_client.get(url).content.decode()
    second = marketer_client.get(url, {"page": 2}).content.decode()

    assert "Next →" in first and "Older" not in first
    assert "← Previous" in second and "Newer" not in second


def test_the_campaign_list_newest_first_says_older_and_newer(marketer_client, account):
    CampaignFactory.create_batch(PER_PAGE + 1, account=account)
    url = reverse("campaigns:campaign_list")

    first = marketer_client.get(url).content.decode()
    second = marketer_client.get(url, {"page": 2}).content.decode()

    assert "Older →" in first and "Next →" not in first
    assert "← Newer" in second


def test_a_search_is_kept_on_the_page_links(marketer_client, account):
    ContactFactory.create_batch(PER_PAGE + 1, account=account, first_name="Kari")

    first = marketer_client.get(reverse("campaigns:contact_list"), {"q": "Kari"}).content.decode()

    assert "?q=Kari&page=2" in first
