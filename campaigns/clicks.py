"""The recipients' fast path: a click on a tracked link (or an open of the pixel) is taken
as one raw row and answered at once; a worker turns raw rows into events in batches.

On `/t/` the link comes from the cache (forgotten when the link is saved or deleted,
campaigns.models), the contact reference's signature is checked in memory and one
RawClick row is inserted: one round trip to the database, none to the broker for most
clicks. Storing the event (contact upsert, engagement counts, the automations' runs) is
what made a click slow, and it happens later, in `raw_clicks_drain`:

- woken by the first click of a short window (`drain_wake`, debounced through the cache,
  after the row is committed), so a burst of clicks is one task and one batch;
- and swept by beat every few seconds, so a raw row whose wake-up was never published
  (the broker down, the process killed between insert and publish) is still taken.

Each batch is claimed with SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL (two drains take
different rows); on SQLite the drain's transaction takes the write lock at BEGIN
(IMMEDIATE, emhub.settings.base.sqlite_options), so drains take turns. The raw rows are
deleted in the transaction that stores their events: a crash rolls both back, and a row
becomes exactly one event, its automations run once.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from . import link_responses, scanners, services
from .models import (
    Campaign,
    Contact,
    Event,
    EventType,
    RawClick,
    TrackedLink,
    link_cache_key,
)

logger = logging.getLogger(__name__)

# How long a link stays in the cache without being read from the database again. Saving
# or deleting it forgets it at once; this only bounds a bulk update() (which sends no
# signal) and a save that raced a read.
LINK_CACHE_SECONDS = 120
DRAIN_BATCH = 500
WAKE_KEY = "campaigns:clicks:wake"
TOKEN_MAX_LENGTH = TrackedLink._meta.get_field("token").max_length
USER_AGENT_MAX_LENGTH = RawClick._meta.get_field("user_agent").max_length


@dataclass(frozen=True)
class LinkTarget:
    """What a click on a link needs: whose link it is and what the browser gets."""

    token: str
    link_id: int
    account_id: int
    response: link_responses.Response


def link_target(*, token: str) -> LinkTarget | None:
    """The link of `token` from the cache, read once from the database on a miss; None
    for an unknown token."""
    if len(token) > TOKEN_MAX_LENGTH:
        return None
    key = link_cache_key(token)
    cached = cache.get(key)
    # Plain values in the cache, not pickled classes: a process of the next release reads
    # what one of this release wrote (anything else is a miss).
    if isinstance(cached, tuple) and len(cached) == 6:
        link_id, account_id, *response = cached
        return LinkTarget(
            token=token,
            link_id=link_id,
            account_id=account_id,
            response=link_responses.Response(*response),
        )
    link = TrackedLink.objects.filter(token=token).first()
    if link is None:
        return None
    response = link_responses.response_for_link(link=link)
    cache.set(
        key,
        (link.pk, link.account_id, response.kind, response.url, response.title, response.html),
        LINK_CACHE_SECONDS,
    )
    return LinkTarget(token=token, link_id=link.pk, account_id=link.account_id, response=response)


def click_take(
    *, token: str, contact_ref: str | None, user_agent: str = "", method: str = "GET"
) -> LinkTarget | None:
    """Take a click on the link `token` by the contact `contact_ref` names: one raw row,
    its event stored later by the drain. Returns the link (what to answer), None for an
    unknown token.

    A click without a reference, or with one whose signature does not hold (forged, cut
    by a mail client), is only followed: nothing is recorded for anyone. Whether the
    contact exists and is the link's account's is checked by the drain.
    """
    target = link_target(token=token)
    if target is None or not contact_ref:
        return target
    try:
        contact_id = services.contact_ref_parse(ref=contact_ref)
    except signing.BadSignature as exc:
        logger.info("Click on link %s with an invalid contact reference: %s", target.link_id, exc)
        return target
    _raw_insert(
        kind=RawClick.Kind.CLICK,
        token=target.token,
        contact_id=contact_id,
        campaign_id=None,
        sendout_id=None,
        method=method.upper()[:8],
        user_agent=user_agent[:USER_AGENT_MAX_LENGTH],
    )
    _wake_after_commit()
    return target


def open_take(*, ref: str, user_agent: str = "") -> None:
    """Take an open of the pixel `ref` names: one query to check the campaign and contact
    are one account's, one raw row. services.TrackingRefInvalid when they are not."""
    try:
        value = signing.Signer(salt=services.OPEN_REF_SALT).unsign(ref)
        # campaign.contact, and .sendout in the pixels of sendouts.
        campaign_id, contact_id, *sendout_id = (int(part) for part in value.split("."))
        if len(sendout_id) > 1:
            raise ValueError("Not an open reference")
    except (signing.BadSignature, ValueError) as exc:
        raise services.TrackingRefInvalid(str(exc)) from exc
    if not Campaign.objects.filter(pk=campaign_id, account__contacts__pk=contact_id).exists():
        raise services.TrackingRefInvalid("No such campaign and contact")
    _raw_insert(
        kind=RawClick.Kind.OPEN,
        token="",
        contact_id=contact_id,
        campaign_id=campaign_id,
        sendout_id=sendout_id[0] if sendout_id else None,
        method="GET",
        user_agent=user_agent[:USER_AGENT_MAX_LENGTH],
    )
    _wake_after_commit()


_RAW_COLUMNS = (
    "kind",
    "token",
    "contact_id",
    "campaign_id",
    "sendout_id",
    "method",
    "user_agent",
    "occurred_at",
)


def _raw_insert(**values) -> None:
    """One INSERT of a raw row, past the ORM's save(): the endpoint's only write, and
    Model.save (signals, field preparation, RETURNING the id nobody reads) costs twice
    the CPU of the statement itself. Every value is a placeholder; the table and column
    names are the model's own."""
    values["occurred_at"] = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(_raw_insert_sql(), [values[name] for name in _RAW_COLUMNS])


# The statement per database vendor, built once: quoting the names on every click cost
# a tenth of the view's own CPU.
_RAW_INSERT_SQL: dict[str, str] = {}


def _raw_insert_sql() -> str:
    sql = _RAW_INSERT_SQL.get(connection.vendor)
    if sql is None:
        quote = connection.ops.quote_name
        columns = ", ".join(quote(RawClick._meta.get_field(name).column) for name in _RAW_COLUMNS)
        placeholders = ", ".join(["%s"] * len(_RAW_COLUMNS))
        sql = _RAW_INSERT_SQL[connection.vendor] = (
            f"INSERT INTO {quote(RawClick._meta.db_table)} ({columns})"  # noqa: S608
            f" VALUES ({placeholders})"
        )
    return sql


def _wake_after_commit() -> None:
    # In autocommit (a click's request) the row is committed already: wake at once, past
    # on_commit's bookkeeping. Inside a transaction (the tests, a caller's atomic block),
    # only once it commits, so the drain never looks for a row it cannot see yet.
    if connection.in_atomic_block:
        transaction.on_commit(drain_wake)
    else:
        drain_wake()


# When this process last published the drain's wake-up or found it published
# (time.monotonic): for a while after, it need not ask the shared cache again.
_woken_at: float | None = None


def drain_wake_forget() -> None:
    """Forget this process's last wake-up: its next click asks the cache (the drain ran
    here, or the cache was emptied)."""
    global _woken_at
    _woken_at = None


def drain_wake() -> None:
    """Publish the drain, at most once per CAMPAIGNS_CLICK_DRAIN_DELAY_SECONDS: the first
    click of the window publishes it to run at the window's end, the others find it
    published. A failed publish is only logged: the click is stored, the sweep takes it."""
    global _woken_at
    delay = float(settings.CAMPAIGNS_CLICK_DRAIN_DELAY_SECONDS)
    now = time.monotonic()
    # For half a window after this process published the drain or found it published,
    # its clicks skip the cache's round trip (most clicks of a burst). A drain that starts
    # within that half window leaves the clicks after its claim to the next click past it
    # or to beat's sweep: later, never lost, as every click is a committed row.
    if _woken_at is not None and now - _woken_at < delay / 2:
        return
    # The key outlives the delay a little, and the drain deletes it when it starts: a
    # click during the drain publishes the next one.
    if not cache.add(WAKE_KEY, 1, timeout=delay + 5):
        _woken_at = now
        return
    from .tasks import drain_clicks

    try:
        drain_clicks.apply_async(countdown=delay, retry=False)
    except Exception:
        cache.delete(WAKE_KEY)
        logger.warning("Could not publish the click drain; the sweep takes them", exc_info=True)
        return
    _woken_at = now


def raw_clicks_drain(*, batch_size: int = DRAIN_BATCH) -> int:
    """Turn every raw click and open into its event, in batches of `batch_size`, each in
    one transaction with the raw rows' delete. Returns how many raw rows were taken."""
    cache.delete(WAKE_KEY)
    drain_wake_forget()
    taken = 0
    while True:
        with transaction.atomic():
            rows = _claim(batch_size)
            if not rows:
                return taken
            deleted, _ = RawClick.objects.filter(pk__in=[r.pk for r in rows]).delete()
            if deleted != len(rows):
                # Another drain took some of them: roll back and leave the rest to it.
                raise RuntimeError(f"Claimed {len(rows)} raw clicks but deleted {deleted}")
            _events_store(rows)
        taken += len(rows)
        if len(rows) < batch_size:
            return taken


def _claim(batch_size: int) -> list[RawClick]:
    rows = RawClick.objects.order_by("id")
    if connection.features.has_select_for_update_skip_locked:
        rows = rows.select_for_update(skip_locked=True)
    return list(rows[:batch_size])


def _events_store(rows: list[RawClick]) -> None:
    clicks = [r for r in rows if r.kind == RawClick.Kind.CLICK]
    opens = [r for r in rows if r.kind == RawClick.Kind.OPEN]
    contacts = Contact.objects.in_bulk({r.contact_id for r in rows})
    # (account, source) -> events, in the raw rows' order.
    batches: dict[tuple, list[dict]] = defaultdict(list)
    accounts = {}
    if clicks:
        links = {
            link.token: link
            for link in TrackedLink.objects.filter(
                token__in={r.token for r in clicks}
            ).select_related("account", "campaign")
        }
        sends = _sends_of(
            contact_ids={r.contact_id for r in clicks},
            campaign_ids={link.campaign_id for link in links.values()},
        )
        for raw in clicks:
            link, contact = links.get(raw.token), contacts.get(raw.contact_id)
            if link is None or contact is None or contact.account_id != link.account_id:
                # The link or contact is gone, or the reference names another account's
                # contact: as a click with a bad reference, nothing is recorded.
                logger.info("Raw click %s names no contact of link %s", raw.pk, raw.token)
                continue
            sent_at, sendout_id = _last_send(
                sends.get((contact.pk, link.campaign_id), ()), before=raw.occurred_at
            )
            data = {"user_agent": raw.user_agent} if raw.user_agent else {}
            if sendout_id is not None:
                data["sendout"] = sendout_id
            reason = scanners.click_filter_reason(
                method=raw.method,
                user_agent=raw.user_agent,
                clicked_at=raw.occurred_at,
                sent_at=sent_at,
            )
            if reason:
                data["filtered"] = reason
            accounts[link.account_id] = link.account
            batches[(link.account_id, Event.Source.TRACKED_LINK)].append(
                {
                    "type": EventType.LINK_CLICKED,
                    "campaign": link.campaign,
                    "contact": contact,
                    "link": link,
                    "occurred_at": raw.occurred_at,
                    "data": data,
                }
            )
    if opens:
        campaigns = Campaign.objects.select_related("account").in_bulk(
            {r.campaign_id for r in opens}
        )
        for raw in opens:
            campaign, contact = campaigns.get(raw.campaign_id), contacts.get(raw.contact_id)
            if campaign is None or contact is None or contact.account_id != campaign.account_id:
                logger.info("Raw open %s names no contact of campaign %s", raw.pk, raw.campaign_id)
                continue
            data = {"user_agent": raw.user_agent} if raw.user_agent else {}
            if raw.sendout_id is not None:
                data["sendout"] = raw.sendout_id
            accounts[campaign.account_id] = campaign.account
            batches[(campaign.account_id, Event.Source.PIXEL)].append(
                {
                    "type": EventType.EMAIL_OPENED,
                    "campaign": campaign,
                    "contact": contact,
                    "occurred_at": raw.occurred_at,
                    "data": data,
                }
            )
    for (account_id, source), events in batches.items():
        _ingest(account=accounts[account_id], events=events, source=source)


def _ingest(*, account, events: list[dict], source: str) -> None:
    try:
        services.events_ingest(account=account, events=events, source=source)
    except services.EventsInvalid:
        # One event the ingest refuses must not hold the batch back for ever: each alone,
        # the refused ones logged and dropped (events_ingest stores nothing of a refusal).
        for event in events:
            try:
                services.events_ingest(account=account, events=[event], source=source)
            except services.EventsInvalid as exc:
                logger.warning("Raw %s of account %s refused: %s", source, account.pk, exc)


def _sends_of(
    *, contact_ids: set[int], campaign_ids: set[int]
) -> dict[tuple[int, int], list[tuple[datetime, int | None]]]:
    """The email_sent events of these contacts in these campaigns, newest first, with the
    sendout each names: one query for the whole batch."""
    if not contact_ids or not campaign_ids:
        return {}
    sends: dict[tuple[int, int], list] = defaultdict(list)
    rows = (
        Event.objects.filter(
            contact_id__in=contact_ids, campaign_id__in=campaign_ids, type=EventType.EMAIL_SENT
        )
        # The key as text: SQLite hands back an integer where PostgreSQL hands back JSON.
        .annotate(sendout_text=KeyTextTransform("sendout", "data"))
        .order_by("-occurred_at", "-id")
        .values_list("contact_id", "campaign_id", "occurred_at", "sendout_text")
    )
    for contact_id, campaign_id, occurred_at, sendout in rows:
        sends[(contact_id, campaign_id)].append((occurred_at, services._sendout_id(sendout)))
    return sends


def _last_send(sends, *, before: datetime) -> tuple[datetime | None, int | None]:
    # The last send before the click: the drain runs later, and an email sent meanwhile
    # is not the one that was clicked.
    for sent_at, sendout_id in sends:
        if sent_at <= before:
            return sent_at, sendout_id
    return None, None
