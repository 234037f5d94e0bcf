"""The Manage Automations Queue's pages: the total it shows, its order, a page past the end,
and the same queries for each of them. The page and the total come from one query over the
waiting runs; on SQLite (the embedded default) as on PostgreSQL."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from automations.models import Run, RunStatus

from .factories import (
    AutomationFactory,
    CampaignFactory,
    ContactFactory,
    PanelSettingsFactory,
    token_for,
    waiting_runs,
)

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]


@pytest.fixture
def queue():
    """46 waiting contacts, the longest waiting first by contact number: 45 with one run,
    one (``twice``) with two; and a run still waiting whose contact already has a person
    (a match committed while the run was made), which the queue must not show or count."""
    panel = PanelSettingsFactory()
    account = panel.account
    automation = AutomationFactory(account=account, campaign=CampaignFactory(account=account))
    start = timezone.now() - timedelta(days=10)
    contacts = []
    for i in range(45):
        contact = ContactFactory(account=account, email=f"wait{i:02d}@example.com")
        [run] = waiting_runs(account, contact, automation=automation)
        Run.objects.filter(pk=run.pk).update(waiting_since=start + timedelta(minutes=i))
        contacts.append(contact)
    twice = ContactFactory(account=account, email="twice@example.com")
    runs = waiting_runs(account, twice, 2, automation=automation)
    Run.objects.filter(pk=runs[0].pk).update(waiting_since=start + timedelta(minutes=100))
    Run.objects.filter(pk=runs[1].pk).update(waiting_since=start + timedelta(minutes=200))
    matched = ContactFactory(account=account, email="matched@example.com")
    waiting_runs(account, matched, automation=automation)
    type(matched).objects.filter(pk=matched.pk).update(superoffice_person_id=77)
    return panel, contacts + [twice]


def _page(client, panel, params):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(
            reverse("leads:queue", kwargs={"panel_key": panel.panel_key}),
            params,
            HTTP_X_PANEL_TOKEN=token_for(panel),
        )
    assert response.status_code == 200
    body = response.content.decode()
    shown = [int(i) for i in re.findall(r'id="queue-contact-(\d+)"', body)]
    return body, shown, len(captured.captured_queries)


def test_the_queue_shows_the_right_total_and_order_on_every_page(client, queue):
    panel, waiting = queue
    ids = [c.id for c in waiting]

    first, shown_first, _ = _page(client, panel, {})
    third, shown_third, _ = _page(client, panel, {"page": "3"})

    assert "46 contacts waiting" in first
    assert "Page 1 of 3" in first
    assert shown_first == ids[:20]
    assert "46 contacts waiting" in third and "Page 3 of 3" in third
    assert shown_third == ids[40:]
    # The contact with two runs: both counted, since its earliest.
    assert "2 waiting since" in third
    assert "matched@example.com" not in first + third


def test_a_page_past_the_end_shows_the_last_one_and_a_nonsense_page_the_first(client, queue):
    panel, waiting = queue
    ids = [c.id for c in waiting]

    past, shown_past, _ = _page(client, panel, {"page": "9"})
    huge, shown_huge, _ = _page(client, panel, {"page": "9" * 40})
    zero, shown_zero, _ = _page(client, panel, {"page": "0"})
    nonsense, shown_nonsense, _ = _page(client, panel, {"page": "x"})

    assert shown_past == shown_huge == shown_zero == ids[40:]
    assert "Page 3 of 3" in past and "46 contacts waiting" in past
    assert shown_nonsense == ids[:20]


def test_the_filter_counts_only_the_contacts_it_finds(client, queue):
    panel, waiting = queue

    body, shown, _ = _page(client, panel, {"q": "wait1"})

    # wait10 … wait19
    assert shown == [c.id for c in waiting[10:20]]
    assert "10 contacts waiting" in body
    assert "Page 1 of" not in body


def test_an_empty_queue_says_so(client):
    panel = PanelSettingsFactory()

    body, shown, _ = _page(client, panel, {"page": "4"})

    assert shown == []
    assert "0 contacts waiting" in body and 'id="queue-empty"' in body


def test_every_queue_page_needs_the_same_queries(client, queue):
    panel, _ = queue

    counts = {
        label: _page(client, panel, params)[2]
        for label, params in [
            ("first", {}),
            ("second", {"page": "2"}),
            ("last", {"page": "3"}),
            ("past the end", {"page": "9"}),
            ("filtered", {"q": "example"}),
        ]
    }

    assert len(set(counts.values())) == 1, counts
    assert Run.objects.filter(status=RunStatus.WAITING_FOR_MATCH).count() == 48
