"""A sendout's statistics: sent, delivered, failed, opens and people's clicks (unique and
total), rates, per link, over time, the runs they caused; the campaign sums its sendouts."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.utils import timezone

from automations.models import AutomationType, Run
from campaigns import imports, sendout_selectors, sendouts
from campaigns.models import Channel, Event, EventType, SendoutMessage, TrackedLink
from campaigns.tasks import drain_clicks
from consent.models import Origin, Purpose
from consent.services import consent_record
from tests.automations.factories import AutomationFactory
from tests.campaigns.factories import CampaignFactory, ContactFactory, EmailSenderFactory

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"
BODY = (
    '<p>Hi {first_name}</p><p><a href="https://www.example.com/offer">Offer</a> '
    '<a href="https://www.example.com/agenda">Agenda</a></p>'
)


def _html(message) -> str:
    return next(body for body, kind in message.alternatives if kind == "text/html")


def _path(url: str) -> str:
    parts = urlsplit(url.replace("&amp;", "&"))
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


@pytest.fixture
def sent(account):
    """A sendout to four readers: three delivered, one failed."""
    EmailSenderFactory(account=account)
    readers = [ContactFactory(account=account, email=f"r{i}@example.com") for i in range(4)]
    for reader in readers:
        consent_record(
            account=account,
            contact=reader,
            purpose=Purpose.EMARKETING,
            legal_basis="61A",
            origin=Origin.API,
        )
    recipients = imports.recipient_list_create(account=account, name="Readers")
    imports.recipient_list_add_contacts(
        recipient_list=recipients, contact_ids=[r.pk for r in readers]
    )
    campaign = CampaignFactory(account=account, name="Spring")
    sendout = sendouts.sendout_create(
        account=account,
        campaign=campaign,
        recipient_list=recipients,
        channel=Channel.EMAIL,
        subject="Spring",
        body=BODY,
    )
    offer = TrackedLink.objects.get(campaign=campaign, url="https://www.example.com/offer")
    AutomationFactory(
        account=account,
        campaign=campaign,
        type=AutomationType.CREATE_TASK,
        trigger_event_type=EventType.LINK_CLICKED,
        trigger_link=offer,
    )
    sendouts.sendout_checklist_run(sendout=sendout)
    sendouts.sendout_confirm(sendout=sendout)
    sendouts.sendout_send(sendout_id=sendout.pk)
    SendoutMessage.objects.filter(sendout=sendout, contact=readers[3]).update(
        status=SendoutMessage.Status.FAILED
    )
    # The readers take a while: clicks right after delivery would be a scanner's.
    Event.objects.filter(type=EventType.EMAIL_SENT).update(
        occurred_at=timezone.now() - timedelta(minutes=5)
    )
    return sendout, readers, offer


def _mail_of(reader):
    return next(m for m in mail.outbox if m.to == [reader.email])


def _open(client, reader):
    pixel = re.search(r'<img src="([^"]+/o/[^"]+)"', _html(_mail_of(reader))).group(1)
    assert client.get(_path(pixel), HTTP_USER_AGENT=BROWSER).status_code == 200
    drain_clicks()  # what a worker does next: the open becomes its event


def _click(client, reader, link, *, method="get"):
    url = next(u for u in re.findall(r'href="([^"]+)"', _html(_mail_of(reader))) if link.token in u)
    getattr(client, method)(_path(url), HTTP_USER_AGENT=BROWSER)
    drain_clicks()


@pytest.fixture
def engaged(sent, client):
    sendout, readers, offer = sent
    _open(client, readers[0])
    _open(client, readers[0])
    _open(client, readers[1])
    _click(client, readers[0], offer)
    _click(client, readers[0], offer)
    _click(client, readers[1], offer)
    _click(client, readers[2], offer, method="head")  # a link checker: not a person's click
    return sent


def test_the_figures_count_people_once_and_leave_scanners_out(engaged):
    sendout, _, _ = engaged

    figures = sendout_selectors.sendout_figures(sendout=sendout)

    assert (figures.sent, figures.delivered, figures.failed) == (4, 3, 1)
    assert (figures.opens_unique, figures.opens_total) == (2, 3)
    assert (figures.clicks_unique, figures.clicks_total, figures.clicks_filtered) == (2, 3, 1)
    assert figures.delivery_rate == 75.0
    assert figures.open_rate == 66.7 and figures.click_rate == 66.7
    assert figures.click_to_open_rate == 100.0


def test_each_link_has_its_clicks_and_the_runs_they_caused(engaged):
    sendout, _, offer = engaged

    rows = sendout_selectors.sendout_link_figures(sendout=sendout, delivered=3)

    assert [row.link.url for row in rows] == [
        "https://www.example.com/offer",
        "https://www.example.com/agenda",
    ]
    first, second = rows
    assert (first.clicks_unique, first.clicks_total, first.clicks_filtered) == (2, 3, 1)
    assert first.runs == Run.objects.filter(event__link=offer).count() == 3
    assert (second.clicks_total, second.runs, second.click_rate) == (0, 0, 0.0)
    assert first.click_rate == 66.7
    assert sendout_selectors.sendout_runs(sendout=sendout).count() == 3


def test_the_timeline_shows_opens_and_clicks_per_hour_while_the_sendout_is_young(engaged):
    sendout, _, _ = engaged

    timeline = sendout_selectors.sendout_timeline(sendout=sendout)

    assert timeline.unit == "hour"
    assert sum(timeline.opens) == 3 and sum(timeline.clicks) == 3
    assert timeline.opens[-1] == 3  # all in this hour


def test_an_older_sendout_is_shown_per_day(engaged):
    sendout, _, _ = engaged
    started = timezone.now() - timedelta(days=5)
    type(sendout).objects.filter(pk=sendout.pk).update(started_at=started)
    sendout.refresh_from_db()

    timeline = sendout_selectors.sendout_timeline(sendout=sendout)

    assert timeline.unit == "day" and len(timeline.labels) == 6
    assert sum(timeline.opens) == 3


def test_the_sendout_page_shows_the_statistics(engaged, marketer_client):
    sendout, _, _ = engaged

    page = marketer_client.get(f"/sendouts/{sendout.pk}/").content.decode()

    figures = page.split('data-testid="sendout-figures"')[1]
    assert re.search(r'data-figure="opens"><div class="stat">2</div>', figures)
    assert "66.7%" in figures and "3 opens" in figures and "3 clicks" in figures
    assert "1 open<" not in figures
    assert 'id="sendout-timeline"' in page and 'data-testid="link-figures"' in page
    assert "1 click by mail scanners and link previews are not counted" in page
    # Done: the page no longer polls.
    assert "hx-trigger" not in page.split('id="sendout-live"')[1].split(">")[0]


def test_the_campaign_page_sums_its_sendouts(engaged, account, marketer_client):
    sendout, readers, _ = engaged
    second = sendouts.sendout_create(
        account=account,
        campaign=sendout.campaign,
        recipient_list=sendout.recipient_list,
        channel=Channel.EMAIL,
        subject="Again",
        body="<p>Hi</p>",
    )
    sendouts.sendout_checklist_run(sendout=second)
    sendouts.sendout_confirm(sendout=second)
    sendouts.sendout_send(sendout_id=second.pk)

    totals = sendout_selectors.campaign_sendout_figures(campaign=sendout.campaign)
    page = marketer_client.get(f"/campaigns/{sendout.campaign_id}/").content.decode()

    assert [s.pk for s, _ in totals.rows] == [second.pk, sendout.pk]
    assert (totals.total.sent, totals.total.delivered, totals.total.failed) == (8, 7, 1)
    assert totals.total.opens_unique == 2 and totals.total.clicks_unique == 2
    row = page.split('data-testid="sendout-totals"')[1].split("</tr>")[0]
    assert "<th>8</th><th>7</th><th>1</th>" in row
