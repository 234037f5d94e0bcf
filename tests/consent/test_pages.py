"""The consent pages: sync history, a cycle's decisions, a contact's consents."""

import pytest

from consent.models import ConsentDecision, ConsentSyncCycle, Purpose
from consent.services import consent_record
from crm.models import SuperOfficeConnection

from .factories import ContactFactory, CycleFactory


@pytest.fixture
def sync_on(account):
    return SuperOfficeConnection.objects.create(
        account=account,
        base_url="https://sod.superoffice.com/Cust1/Remote/Services88/",
        legal_basis_sync_enabled=True,
    )


def test_the_history_lists_each_cycles_figures_with_a_chart_and_the_next_cycle(
    account, marketer_client, sync_on
):
    CycleFactory(account=account, contacts_checked=321, written_to_superoffice=17, conflicts=4)
    CycleFactory(
        account=account, status=ConsentSyncCycle.Status.FAILED, errors=2, error="SuperOffice down"
    )

    response = marketer_client.get("/consent/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "321" in html and "17" in html
    assert "failed" in html and "Next cycle at" in html
    assert 'id="consent-cycles-chart"' in html and "consent-cycles-data" in html
    # Oldest first, so the chart reads left to right.
    assert response.context["chart_data"]["datasets"][0]["data"] == [321, 10]


def test_the_history_paginates(account, marketer_client):
    CycleFactory.create_batch(30, account=account)
    first = marketer_client.get("/consent/")
    second = marketer_client.get("/consent/?page=2")
    assert len(first.context["page"]) == 25 and len(second.context["page"]) == 5
    assert "Sync</div>" in first.content.decode() and "Off" in first.content.decode()


def test_another_accounts_cycles_are_not_listed_and_their_detail_is_404(
    account, other_account, marketer_client
):
    theirs = CycleFactory(account=other_account, contacts_checked=999)
    assert "999" not in marketer_client.get("/consent/").content.decode()
    assert marketer_client.get(f"/consent/cycles/{theirs.pk}/").status_code == 404


def test_a_cycles_detail_shows_every_decision_with_its_reason(account, marketer_client):
    cycle = CycleFactory(account=account)
    contact = ContactFactory(account=account, email="why@example.com")
    ConsentDecision.objects.create(
        account=account,
        cycle=cycle,
        contact=contact,
        purpose=Purpose.STORE,
        action=ConsentDecision.Action.WRITE_HUB,
        reason="SuperOffice's change is newer.",
        superoffice_legal_basis="61F",
    )
    ConsentDecision.objects.create(
        account=account,
        cycle=cycle,
        contact=contact,
        purpose=Purpose.EMARKETING,
        action=ConsentDecision.Action.NONE,
        reason="Both sides agree.",
    )

    everything = marketer_client.get(f"/consent/cycles/{cycle.pk}/").content.decode()
    only_hub = marketer_client.get(f"/consent/cycles/{cycle.pk}/?action=write_hub")

    assert "why@example.com" in everything and "SuperOffice&#x27;s change is newer." in everything
    assert "Both sides agree." in everything
    assert [d.purpose for d in only_hub.context["page"]] == [Purpose.STORE]


def test_a_contacts_consent_page_shows_state_and_history_and_is_404_across_accounts(
    account, other_account, marketer_client
):
    mine = ContactFactory(account=account, email="mine@example.com")
    consent_record(account=account, contact=mine, purpose=Purpose.STORE, legal_basis="61B")
    theirs = ContactFactory(account=other_account)

    html = marketer_client.get(f"/consent/contacts/{mine.pk}/").content.decode()

    assert "mine@example.com" in html and "contract" in html and "61B" not in html
    assert marketer_client.get(f"/consent/contacts/{theirs.pk}/").status_code == 404


def test_only_admins_can_start_a_cycle_by_hand(marketer_client):
    assert marketer_client.post("/consent/run/", {"kind": "full"}).status_code == 403


def test_an_admin_is_told_when_sync_is_off(admin_client):
    response = admin_client.post("/consent/run/", {"kind": "full"}, follow=True)
    assert "Legal-basis sync is off" in response.content.decode()


def test_an_admin_can_queue_a_cycle_when_sync_is_on(admin_client, sync_on):
    response = admin_client.post("/consent/run/", {"kind": "full"}, follow=True)
    assert "Cycle queued (full reconciliation)" in response.content.decode()


def test_signed_out_visitors_are_sent_to_sign_in(client, db):
    response = client.get("/consent/")
    assert response.status_code == 302 and "/sign-in/" in response["Location"]


def test_the_connection_page_summary_shows_the_last_cycles_and_the_next_one(account, sync_on):
    from django.template import Context, Template

    CycleFactory(account=account, contacts_checked=4242)
    html = Template("{% load consent_tags %}{% consent_sync_summary account %}").render(
        Context({"account": account})
    )
    assert "4242" in html and "Next cycle at" in html


def test_sync_now_follows_the_cycle_in_place_until_it_has_finished(account, admin_client, sync_on):
    from django.utils import timezone

    earlier = CycleFactory(account=account, finished_at=timezone.now())
    response = admin_client.post("/consent/run/", {"kind": "incremental"})
    assert response.status_code == 302
    following_url = response["Location"]
    assert following_url.endswith(f"?after={earlier.id}") or "after=" in following_url
    # What the cycle queued by the button did (if the worker already ran it) is not ours to fake:
    ConsentSyncCycle.objects.filter(account=account, id__gt=earlier.id).delete()

    page = admin_client.get(following_url).content.decode()
    assert 'hx-get="/consent/live/?after=' in page and 'hx-trigger="every 2s"' in page
    assert "this page follows it" in page and "reload" not in page.lower()

    CycleFactory(account=account, contacts_checked=77, finished_at=timezone.now())
    live = admin_client.get(f"/consent/live/?after={earlier.id}").content.decode()
    assert "hx-get" not in live
    assert "The cycle you started has finished." in live and ">77<" in live


def test_the_sync_page_does_not_poll_when_nothing_runs(account, marketer_client, sync_on):
    assert "hx-get" not in marketer_client.get("/consent/").content.decode()
    assert "hx-get" not in marketer_client.get("/consent/live/?after=junk").content.decode()
