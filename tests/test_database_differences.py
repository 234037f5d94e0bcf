"""Where SQLite and PostgreSQL differ, the hub behaves the same on both: case folding of
every letter, JSON keys read back, days in the hub's time zone, ids beyond 64 bits."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from campaigns.models import Event, EventType
from campaigns.selectors import campaign_events_per_day, contacts_search
from consent.selectors import contact_by_email
from emhub.sqlite import like

from .campaigns.factories import CampaignFactory, ContactFactory, EventFactory

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]


@pytest.mark.parametrize("query", ["ÅSA", "åsa", "ØSTBY", "Østby", "Åsa Øst", "BJØRN"])
def test_a_search_folds_the_case_of_every_letter(account, query):
    anna = ContactFactory(account=account, first_name="Åsa", last_name="Østby")
    ContactFactory(account=account, first_name="Bjørn", last_name="Dæhlie")
    found = set(contacts_search(account=account, query=query).values_list("first_name", flat=True))
    assert found == ({"Bjørn"} if query == "BJØRN" else {anna.first_name})


def test_a_search_for_a_percent_sign_or_underscore_is_literal(account):
    ContactFactory(account=account, company_name="100% Fjord")
    ContactFactory(account=account, company_name="100 Fjord")
    ContactFactory(account=account, company_name="a_b", email="x@example.com")
    ContactFactory(account=account, company_name="axb", email="y@example.com")
    assert [c.company_name for c in contacts_search(account=account, query="100%")] == [
        "100% Fjord"
    ]
    assert [c.company_name for c in contacts_search(account=account, query="a_b")] == ["a_b"]


def test_the_consent_api_finds_a_contact_by_any_case_of_its_address(account):
    contact = ContactFactory(account=account, email="åsa.østby@example.com")
    assert contact_by_email(account=account, email=" ÅSA.Østby@Example.COM ") == contact


def test_sqlites_like_as_the_hub_installs_it():
    assert like("%ÅSA%", "åsa østby") and like("_sa", "Åsa")
    assert not like("a\\%b", "axb", "\\") and like("a\\%b", "a%b", "\\")
    assert like(None, "x") is None


def test_events_count_on_the_day_of_the_hubs_time_zone(account, settings):
    settings.TIME_ZONE = "Europe/Oslo"
    campaign = CampaignFactory(account=account)
    now = timezone.now()
    # 23:30 UTC is 00:30 (or 01:30) the next day in Oslo.
    late = datetime(now.year, now.month, now.day, 23, 30, tzinfo=UTC) - timedelta(days=2)
    EventFactory(campaign=campaign, occurred_at=late, type=EventType.EMAIL_OPENED)
    with timezone.override("Europe/Oslo"):
        per_day = dict(campaign_events_per_day(campaign=campaign, days=5))
        oslo_day = timezone.localtime(late).date()
    assert oslo_day != late.date()
    assert per_day[oslo_day] == 1
    assert sum(per_day.values()) == 1


def test_a_json_key_read_back_is_the_same_on_both(account):
    event = EventFactory(campaign=CampaignFactory(account=account), data={"sendout": 12})
    assert Event.objects.filter(data__sendout=12).get() == event
    assert Event.objects.values_list("data__sendout", flat=True).get() == 12
