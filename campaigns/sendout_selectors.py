"""Reads for a sendout's statistics and its campaign's totals. Account-scoped, reads only.

What counts: a message the hub addressed (not excluded) was sent; one the mail server
accepted was delivered (the hub reads no bounces, so a later bounce still counts as
delivered); one that ran out of attempts failed. Opens come from the open pixel of this
sendout's messages; clicks are people's clicks on the message's tracked links, the
ones a mail scanner or a link preview made are left out (campaigns.scanners marks them
`filtered`). Unique counts count each recipient once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.db.models.fields.json import KT
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from .models import Campaign, Event, EventType, Sendout, SendoutMessage, TrackedLink
from .sendout_mail import urls_in

# A sendout's chart shows hours while it is this young, days after that.
HOURLY_SPAN = timedelta(hours=48)
DAILY_SPAN_MAX = 60


def _rate(part: int, whole: int) -> float | None:
    return None if not whole else round(100 * part / whole, 1)


@dataclass
class SendoutFigures:
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    waiting: int = 0
    excluded: int = 0
    opens_unique: int = 0
    opens_total: int = 0
    clicks_unique: int = 0
    clicks_total: int = 0
    clicks_filtered: int = 0
    unsubscribed: int = 0

    def add(self, other: SendoutFigures) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def delivery_rate(self) -> float | None:
        return _rate(self.delivered, self.sent)

    @property
    def failure_rate(self) -> float | None:
        return _rate(self.failed, self.sent)

    @property
    def open_rate(self) -> float | None:
        return _rate(self.opens_unique, self.delivered)

    @property
    def click_rate(self) -> float | None:
        return _rate(self.clicks_unique, self.delivered)

    @property
    def click_to_open_rate(self) -> float | None:
        return _rate(self.clicks_unique, self.opens_unique)

    @property
    def unsubscribe_rate(self) -> float | None:
        return _rate(self.unsubscribed, self.delivered)


def _message_figures(qs) -> dict[int, SendoutFigures]:
    out: dict[int, SendoutFigures] = {}
    S = SendoutMessage.Status
    rows = (
        qs.order_by()
        .values("sendout_id")
        .annotate(
            delivered=Count("id", filter=Q(status=S.SENT)),
            failed=Count("id", filter=Q(status=S.FAILED)),
            waiting=Count("id", filter=Q(status__in=[S.QUEUED, S.SENDING])),
            excluded=Count("id", filter=Q(status=S.EXCLUDED)),
            unsubscribed=Count("id", filter=Q(unsubscribed_at__isnull=False)),
        )
    )
    for row in rows:
        figures = out.setdefault(row["sendout_id"], SendoutFigures())
        figures.delivered = row["delivered"]
        figures.failed = row["failed"]
        figures.waiting = row["waiting"]
        figures.excluded = row["excluded"]
        figures.sent = row["delivered"] + row["failed"] + row["waiting"]
        figures.unsubscribed = row["unsubscribed"]
    return out


def _sendout_events(*, account_id: int, campaign_id: int):
    """The opens and clicks of the campaign that name a sendout: the index on (account,
    campaign) finds them, the sendout is read from the event's data."""
    return Event.objects.filter(
        account_id=account_id,
        campaign_id=campaign_id,
        type__in=[EventType.EMAIL_OPENED, EventType.LINK_CLICKED],
        data__has_key="sendout",
    )


def _event_figures(events, figures_by_sendout: dict[int, SendoutFigures]) -> None:
    rows = (
        events.order_by()
        .annotate(sendout_ref=KT("data__sendout"))
        .values("sendout_ref", "type")
        .annotate(
            total=Count("id", filter=~Q(data__has_key="filtered")),
            unique=Count("contact_id", distinct=True, filter=~Q(data__has_key="filtered")),
            filtered=Count("id", filter=Q(data__has_key="filtered")),
        )
    )
    for row in rows:
        try:
            sendout_id = int(row["sendout_ref"])
        except (TypeError, ValueError):
            continue
        figures = figures_by_sendout.get(sendout_id)
        if figures is None:
            continue
        if row["type"] == EventType.EMAIL_OPENED:
            figures.opens_total += row["total"]
            figures.opens_unique += row["unique"]
        else:
            figures.clicks_total += row["total"]
            figures.clicks_unique += row["unique"]
            figures.clicks_filtered += row["filtered"]


def sendout_figures(*, sendout: Sendout) -> SendoutFigures:
    """Sent, delivered, failed, opens, clicks and unsubscribes of one sendout."""
    by_sendout = _message_figures(
        SendoutMessage.objects.filter(account_id=sendout.account_id, sendout=sendout)
    )
    figures = by_sendout.setdefault(sendout.pk, SendoutFigures())
    events = _sendout_events(account_id=sendout.account_id, campaign_id=sendout.campaign_id)
    _event_figures(events.filter(data__sendout=sendout.pk), by_sendout)
    return figures


@dataclass
class LinkFigures:
    link: TrackedLink
    clicks_total: int = 0
    clicks_unique: int = 0
    clicks_filtered: int = 0
    runs: int = 0
    # The sendout's delivered messages, the base of the click rate.
    delivered: int = 0

    @property
    def click_rate(self) -> float | None:
        return _rate(self.clicks_unique, self.delivered)


def sendout_link_figures(*, sendout: Sendout, delivered: int = 0) -> list[LinkFigures]:
    """Per tracked link in the message: people's clicks (total and unique), the filtered
    ones, and the automation runs those clicks caused."""
    from automations.models import Run

    wanted = urls_in(body=sendout.body, channel=sendout.channel)
    links = {
        link.url: link
        for link in TrackedLink.objects.filter(
            account_id=sendout.account_id, campaign_id=sendout.campaign_id
        )
    }
    public = {}
    if wanted:
        from .services import link_public_url

        public = {link_public_url(link=link): link for link in links.values()}
    ordered: dict[int, LinkFigures] = {}
    for url in wanted:
        link = links.get(url) or public.get(url.split("?", 1)[0])
        if link is not None:
            ordered.setdefault(link.pk, LinkFigures(link=link, delivered=delivered))
    if not ordered:
        return []
    clicks = Event.objects.filter(
        account_id=sendout.account_id,
        campaign_id=sendout.campaign_id,
        type=EventType.LINK_CLICKED,
        link_id__in=list(ordered),
        data__sendout=sendout.pk,
    )
    for row in (
        clicks.order_by()
        .values("link_id")
        .annotate(
            total=Count("id", filter=~Q(data__has_key="filtered")),
            unique=Count("contact_id", distinct=True, filter=~Q(data__has_key="filtered")),
            filtered=Count("id", filter=Q(data__has_key="filtered")),
        )
    ):
        figures = ordered[row["link_id"]]
        figures.clicks_total = row["total"]
        figures.clicks_unique = row["unique"]
        figures.clicks_filtered = row["filtered"]
    for row in (
        Run.objects.filter(account_id=sendout.account_id, event__in=clicks)
        .order_by()
        .values("event__link_id")
        .annotate(n=Count("id"))
    ):
        ordered[row["event__link_id"]].runs = row["n"]
    return list(ordered.values())


@dataclass
class Timeline:
    unit: str  # "hour" or "day"
    labels: list[str] = field(default_factory=list)
    opens: list[int] = field(default_factory=list)
    clicks: list[int] = field(default_factory=list)

    @property
    def has_data(self) -> bool:
        return any(self.opens) or any(self.clicks)

    def chart(self) -> dict:
        return {
            "labels": self.labels,
            "datasets": [
                {"label": "Opens", "data": self.opens},
                {"label": "Clicks", "data": self.clicks},
            ],
        }


def sendout_timeline(*, sendout: Sendout, now: datetime | None = None) -> Timeline:
    """Opens and people's clicks per hour over the first 48 hours after the send began,
    per day (up to 60 days) for an older sendout."""
    now = now or timezone.now()
    start = sendout.started_at or sendout.scheduled_at or sendout.created_at
    tz = timezone.get_current_timezone()
    if now - start <= HOURLY_SPAN:
        unit, trunc, step, label = "hour", TruncHour, timedelta(hours=1), "%d %b %H:00"
        first = timezone.localtime(start, tz).replace(minute=0, second=0, microsecond=0)
    else:
        unit, trunc, step, label = "day", TruncDay, timedelta(days=1), "%d %b"
        first = timezone.localtime(start, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    end = min(now, start + (HOURLY_SPAN if unit == "hour" else step * DAILY_SPAN_MAX))
    count = max(1, int((end - first) / step) + 1)
    buckets = [timezone.localtime(first + i * step, tz) for i in range(count)]
    events = _sendout_events(account_id=sendout.account_id, campaign_id=sendout.campaign_id)
    counted: dict[tuple[str, datetime], int] = {}
    for row in (
        events.filter(data__sendout=sendout.pk, occurred_at__gte=first)
        .exclude(data__has_key="filtered")
        .annotate(bucket=trunc("occurred_at", tzinfo=tz))
        .order_by()
        .values("type", "bucket")
        .annotate(n=Count("id"))
    ):
        bucket = row["bucket"]
        if timezone.is_aware(bucket):
            bucket = timezone.localtime(bucket, tz)
        counted[(row["type"], bucket.replace(tzinfo=None))] = row["n"]
    timeline = Timeline(unit=unit)
    for bucket in buckets:
        key = bucket.replace(tzinfo=None)
        timeline.labels.append(bucket.strftime(label))
        timeline.opens.append(counted.get((EventType.EMAIL_OPENED, key), 0))
        timeline.clicks.append(counted.get((EventType.LINK_CLICKED, key), 0))
    return timeline


def sendout_runs(*, sendout: Sendout):
    """The automation runs the sendout's sends, opens and clicks caused, newest first."""
    from automations.models import Run

    return (
        Run.objects.filter(
            account_id=sendout.account_id,
            event__campaign_id=sendout.campaign_id,
            event__data__sendout=sendout.pk,
        )
        .select_related("automation", "contact", "event")
        .order_by("-created_at", "-id")
    )


def sendout_run_counts(*, sendout: Sendout) -> list[tuple[str, int]]:
    """The runs the sendout caused, by status: (the status's label, how many)."""
    from automations.models import RunStatus

    counts = dict(
        sendout_runs(sendout=sendout).order_by().values_list("status").annotate(n=Count("id"))
    )
    return [(label, counts[value]) for value, label in RunStatus.choices if counts.get(value)]


@dataclass
class CampaignSendouts:
    rows: list[tuple[Sendout, SendoutFigures]]
    total: SendoutFigures


def campaign_sendout_figures(*, campaign: Campaign) -> CampaignSendouts:
    """Each of the campaign's sendouts with its figures, and their sum: three queries."""
    sendouts = list(
        Sendout.objects.filter(account_id=campaign.account_id, campaign=campaign).order_by(
            "-created_at", "-id"
        )
    )
    by_sendout = _message_figures(
        SendoutMessage.objects.filter(
            account_id=campaign.account_id, sendout__in=[s.pk for s in sendouts]
        )
    )
    for sendout in sendouts:
        by_sendout.setdefault(sendout.pk, SendoutFigures())
    if sendouts:
        _event_figures(
            _sendout_events(account_id=campaign.account_id, campaign_id=campaign.pk), by_sendout
        )
    total = SendoutFigures()
    rows = []
    for sendout in sendouts:
        rows.append((sendout, by_sendout[sendout.pk]))
        total.add(by_sendout[sendout.pk])
    return CampaignSendouts(rows=rows, total=total)
