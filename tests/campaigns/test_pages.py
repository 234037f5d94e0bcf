"""Campaign and contact pages: a marketer's own objects, never another account's."""

import pytest
from django.urls import NoReverseMatch, reverse

from campaigns.models import Campaign, EventType, Form, TrackedLink

from .factories import (
    CampaignFactory,
    ContactFactory,
    EventFactory,
    FormFactory,
    TrackedLinkFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(account):
    return CampaignFactory(account=account, name="Spring webinar")


@pytest.fixture
def theirs(other_account):
    campaign = CampaignFactory(account=other_account, name="Their campaign")
    return {
        "campaign": campaign,
        "link": TrackedLinkFactory(campaign=campaign),
        "form": FormFactory(campaign=campaign),
        "contact": ContactFactory(account=other_account),
        "event": EventFactory(campaign=campaign),
    }


def own_urls(campaign):
    link = TrackedLinkFactory(campaign=campaign, name="Pricing")
    form = FormFactory(campaign=campaign, name="Demo request")
    contact = ContactFactory(account=campaign.account, email="anna@example.com")
    event = EventFactory(
        campaign=campaign, contact=contact, type=EventType.FORM_SUBMITTED, form=form
    )
    return [
        reverse("campaigns:campaign_list"),
        reverse("campaigns:campaign_create"),
        reverse("campaigns:campaign_detail", args=[campaign.pk]),
        reverse("campaigns:campaign_edit", args=[campaign.pk]),
        reverse("campaigns:campaign_links", args=[campaign.pk]),
        reverse("campaigns:link_edit", args=[campaign.pk, link.pk]),
        reverse("campaigns:campaign_forms", args=[campaign.pk]),
        reverse("campaigns:form_detail", args=[campaign.pk, form.pk]),
        reverse("campaigns:campaign_events", args=[campaign.pk]),
        reverse("campaigns:event_detail", args=[event.pk]),
        reverse("campaigns:contact_list"),
        reverse("campaigns:contact_detail", args=[contact.pk]),
    ]


def test_every_page_shows_the_marketer_their_own_objects(marketer_client, campaign):
    for url in own_urls(campaign):
        response = marketer_client.get(url)
        assert response.status_code == 200, url


def test_another_accounts_objects_are_404(marketer_client, campaign, theirs):
    c = theirs["campaign"]
    urls = [
        reverse("campaigns:campaign_detail", args=[c.pk]),
        reverse("campaigns:campaign_edit", args=[c.pk]),
        reverse("campaigns:campaign_links", args=[c.pk]),
        reverse("campaigns:link_edit", args=[c.pk, theirs["link"].pk]),
        # Their link or form under our campaign is no way in either.
        reverse("campaigns:link_edit", args=[campaign.pk, theirs["link"].pk]),
        reverse("campaigns:campaign_forms", args=[c.pk]),
        reverse("campaigns:form_detail", args=[c.pk, theirs["form"].pk]),
        reverse("campaigns:form_detail", args=[campaign.pk, theirs["form"].pk]),
        reverse("campaigns:campaign_events", args=[c.pk]),
        reverse("campaigns:event_detail", args=[theirs["event"].pk]),
        reverse("campaigns:contact_detail", args=[theirs["contact"].pk]),
    ]
    for url in urls:
        assert marketer_client.get(url).status_code == 404, url
        assert (
            marketer_client.post(
                url, {"name": "Hijacked", "url": "https://evil.example"}
            ).status_code
            == 404
        )
    assert not Campaign.objects.filter(name="Hijacked").exists()
    assert not TrackedLink.objects.filter(name="Hijacked").exists()


def test_lists_show_only_the_accounts_own_rows(marketer_client, campaign, theirs):
    ContactFactory(account=campaign.account, email="mine@example.com")
    campaigns = marketer_client.get(reverse("campaigns:campaign_list")).content.decode()
    contacts = marketer_client.get(reverse("campaigns:contact_list")).content.decode()
    assert "Spring webinar" in campaigns and "Their campaign" not in campaigns
    assert "mine@example.com" in contacts and theirs["contact"].email not in contacts


def test_pages_need_a_signed_in_user(client, campaign):
    response = client.get(reverse("campaigns:campaign_detail", args=[campaign.pk]))
    assert response.status_code == 302 and "/sign-in/" in response["Location"]


def test_a_marketer_creates_and_edits_a_campaign(marketer_client, account):
    response = marketer_client.post(
        reverse("campaigns:campaign_create"), {"name": "Autumn fair", "description": "Stand B12"}
    )
    campaign = Campaign.objects.get(account=account, name="Autumn fair")
    assert response.status_code == 302
    assert response["Location"] == reverse("campaigns:campaign_detail", args=[campaign.pk])

    marketer_client.post(
        reverse("campaigns:campaign_edit", args=[campaign.pk]),
        {"name": "Autumn fair 2025", "description": "", "is_archived": "on"},
    )
    campaign.refresh_from_db()
    assert (campaign.name, campaign.description, campaign.is_archived) == (
        "Autumn fair 2025",
        "",
        True,
    )


def test_a_campaign_without_a_name_shows_the_message(marketer_client):
    response = marketer_client.post(reverse("campaigns:campaign_create"), {"name": "   "})
    assert response.status_code == 200
    assert not Campaign.objects.exists()
    assert "This field is required." in response.content.decode()


def test_the_campaign_list_is_paginated_with_a_create_button(marketer_client, account):
    for n in range(30):
        CampaignFactory(account=account, name=f"Campaign number {n:02}")
    first = marketer_client.get(reverse("campaigns:campaign_list")).content.decode()
    second = marketer_client.get(reverse("campaigns:campaign_list") + "?page=2").content.decode()
    assert reverse("campaigns:campaign_create") in first
    assert first.count("Campaign number") == 25 and second.count("Campaign number") == 5


def test_the_overview_counts_events_by_type_and_charts_them(marketer_client, campaign):
    contact = ContactFactory(account=campaign.account)
    for _ in range(3):
        EventFactory(campaign=campaign, contact=contact, type=EventType.EMAIL_OPENED)
    EventFactory(campaign=campaign, contact=contact, type=EventType.EMAIL_SENT)
    response = marketer_client.get(reverse("campaigns:campaign_detail", args=[campaign.pk]))

    counts = {row["type"]: row["count"] for row in response.context["counts"]}
    assert counts[EventType.EMAIL_OPENED] == 3 and counts[EventType.EMAIL_SENT] == 1
    assert counts[EventType.SMS_SENT] == 0
    assert sum(response.context["chart"]["datasets"][0]["data"]) == 4
    assert len(response.context["chart"]["labels"]) == 30
    assert 'id="events-per-day"' in response.content.decode()


def test_the_automations_tab_shows_when_the_automations_page_exists(marketer_client, campaign):
    html = marketer_client.get(
        reverse("campaigns:campaign_detail", args=[campaign.pk])
    ).content.decode()
    try:
        url = reverse("automations:campaign_automations", kwargs={"campaign_id": campaign.pk})
    except NoReverseMatch:
        assert ">Automations</a>" not in html.split('aria-label="Campaign"')[1]
    else:
        assert f'href="{url}"' in html


def test_a_marketer_adds_a_tracked_link_and_sees_its_clicks(marketer_client, campaign):
    url = reverse("campaigns:campaign_links", args=[campaign.pk])
    response = marketer_client.post(url, {"name": "Pricing", "url": "https://example.com/pricing"})
    assert response.status_code == 302
    link = TrackedLink.objects.get(campaign=campaign)
    assert link.account_id == campaign.account_id
    EventFactory(campaign=campaign, type=EventType.LINK_CLICKED, link=link)
    EventFactory(campaign=campaign, type=EventType.LINK_CLICKED, link=link)

    html = marketer_client.get(url).content.decode()
    assert f"/t/{link.token}/?c=" in html
    rows = marketer_client.get(url).context["links"]
    assert [(lk.click_count, summary.human) for lk, _, summary in rows] == [(2, 2)]


def test_a_bad_link_url_shows_the_message(marketer_client, campaign):
    url = reverse("campaigns:campaign_links", args=[campaign.pk])
    response = marketer_client.post(url, {"name": "Bad", "url": "not a url"})
    assert response.status_code == 200
    assert "Enter a valid URL." in response.content.decode()
    assert not TrackedLink.objects.exists()


def test_a_marketer_edits_a_tracked_link_and_its_token_stays(marketer_client, campaign):
    link = TrackedLinkFactory(campaign=campaign)
    token = link.token
    marketer_client.post(
        reverse("campaigns:link_edit", args=[campaign.pk, link.pk]),
        {"name": "Renamed", "url": "https://example.com/new"},
    )
    link.refresh_from_db()
    assert (link.name, link.url, link.token) == ("Renamed", "https://example.com/new", token)


def test_a_marketer_adds_a_form_and_gets_its_embed_code(marketer_client, campaign):
    response = marketer_client.post(
        reverse("campaigns:campaign_forms", args=[campaign.pk]),
        {"name": "Demo request", "success_url": ""},
    )
    form = Form.objects.get(campaign=campaign)
    assert response["Location"] == reverse("campaigns:form_detail", args=[campaign.pk, form.pk])
    html = marketer_client.get(response["Location"]).content.decode()
    assert f"/f/{form.token}/" in html


def test_the_events_tab_filters_by_type_and_paginates(marketer_client, campaign):
    contact = ContactFactory(account=campaign.account)
    for _ in range(55):
        EventFactory(campaign=campaign, contact=contact, type=EventType.EMAIL_OPENED)
    EventFactory(campaign=campaign, contact=contact, type=EventType.SMS_SENT)
    url = reverse("campaigns:campaign_events", args=[campaign.pk])
    assert len(marketer_client.get(url).context["page"]) == 50
    assert len(marketer_client.get(url, {"page": 2}).context["page"]) == 6
    only_sms = marketer_client.get(url, {"type": "sms_sent"}).context["page"]
    assert [e.type for e in only_sms] == [EventType.SMS_SENT]


def test_contacts_are_searched_by_email_and_name(marketer_client, account):
    ContactFactory(
        account=account, email="anna.berg@nordlicht.example", first_name="Anna", last_name="Berg"
    )
    ContactFactory(account=account, email="lars@fjord.example", first_name="Lars", last_name="Holm")
    url = reverse("campaigns:contact_list")

    def found(q):
        return [c.email for c in marketer_client.get(url, {"q": q}).context["page"]]

    assert found("nordlicht") == ["anna.berg@nordlicht.example"]
    assert found("holm") == ["lars@fjord.example"]
    assert found("Anna Berg") == ["anna.berg@nordlicht.example"]
    assert found("") == ["anna.berg@nordlicht.example", "lars@fjord.example"]


def test_the_contact_page_shows_fields_person_id_and_events_newest_first(
    marketer_client, account, campaign
):
    contact = ContactFactory(account=account, superoffice_person_id=4711, title="CFO")
    older = EventFactory(campaign=campaign, contact=contact, occurred_at="2025-01-01T10:00:00Z")
    newer = EventFactory(campaign=campaign, contact=contact, occurred_at="2025-02-01T10:00:00Z")
    response = marketer_client.get(reverse("campaigns:contact_detail", args=[contact.pk]))
    html = response.content.decode()
    assert "4711" in html and "CFO" in html
    assert [e.pk for e in response.context["page"]] == [newer.pk, older.pk]


def test_the_event_page_shows_its_data(marketer_client, campaign):
    event = EventFactory(campaign=campaign, data={"fields": {"message": "Call me"}})
    html = marketer_client.get(reverse("campaigns:event_detail", args=[event.pk])).content.decode()
    assert "Call me" in html
