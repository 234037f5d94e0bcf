"""Writes for sendouts: a campaign's email or SMS to a recipient list.

The life of a sendout: created as a draft (its links become the campaign's tracked
links); the checklist shows who is excluded (no "Marketing sendouts" legal basis, no
address), syncing their legal basis with SuperOffice first when sync is on; confirmed
for now or a time (a conditional update, so a double click schedules once); at its
time a worker claims it, syncs the recipients' legal basis again, writes one
`SendoutMessage` per recipient (unique per sendout and contact) and delivers them in
batches. A batch is claimed with a conditional update; each message sent is stored
with its `email_sent`/`sms_sent` event in one transaction; a failed delivery is kept
with its error and tried again with backoff until it goes out or runs out of attempts.

A message is sent at least once in effect, never twice by a double click or a retried
task. A worker killed between handing a message to the mail server and recording it
leaves the row claimed; when its lease runs out the message is sent again (the mail
server cannot tell us whether it went), and its event is still stored once.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import get_connection
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from emhub.models import Account

from . import merge_fields, selectors
from .models import (
    Campaign,
    Channel,
    Contact,
    EmailSender,
    Event,
    EventType,
    RecipientList,
    Sendout,
    SendoutMessage,
    TrackedLink,
)
from .sendout_mail import Mode, email_message, links_by_url, mail_parts, sender_of, urls_in
from .services import (
    email_validate,
    events_ingest,
    link_public_url,
    tracked_link_create,
)
from .sms import SmsDeliveryError, sms_backend

logger = logging.getLogger(__name__)

SMS_MAX = 1600
BATCH = 100
PREPARE_CHUNK = 2000


def _setting(name: str, default):
    return getattr(settings, name, default)


def max_attempts() -> int:
    return int(_setting("CAMPAIGNS_SEND_MAX_ATTEMPTS", 5))


def retry_base_seconds() -> float:
    return float(_setting("CAMPAIGNS_SEND_RETRY_BASE_SECONDS", 60.0))


def retry_cap_seconds() -> float:
    return float(_setting("CAMPAIGNS_SEND_RETRY_CAP_SECONDS", 3600.0))


def lease() -> timedelta:
    return timedelta(seconds=float(_setting("CAMPAIGNS_SEND_LEASE_SECONDS", 300.0)))


def backoff_seconds(*, attempt: int) -> float:
    """Wait before attempt `attempt + 1`: doubling from the base, capped."""
    return min(retry_cap_seconds(), retry_base_seconds() * 2 ** max(0, attempt - 1))


# --- Links in the message ----------------------------------------------------------------


def _link_name(url: str) -> str:
    short = re.sub(r"^https?://(www\.)?", "", url).rstrip("/")
    return short[:200] or url[:200]


def sendout_links_prepare(*, campaign: Campaign, body: str, channel: str) -> list[TrackedLink]:
    """The message's links as the campaign's tracked links: an existing link with the
    same URL is reused, a new URL gets a new tracked link. The hub's own tracking URLs
    (pasted from the Links tab) are recognised as the links they are."""
    links = list(TrackedLink.objects.filter(account_id=campaign.account_id, campaign=campaign))
    by_url = {link.url: link for link in links}
    by_public = {link_public_url(link=link): link for link in links}
    result = []
    for url in urls_in(body=body, channel=channel):
        if merge_fields.fields_used(url):
            # One tracked link serves every recipient: its address cannot differ per person.
            raise ValidationError(
                {"body": [f"A link's address cannot hold merge fields: {url[:200]}"]}
            )
        link = by_url.get(url) or by_public.get(url.split("?", 1)[0])
        if link is None:
            if len(url) > TrackedLink._meta.get_field("url").max_length:
                raise ValidationError({"body": [f"This link is too long: {url[:80]}…"]})
            try:
                link = tracked_link_create(campaign=campaign, name=_link_name(url), url=url)
            except ValidationError as exc:
                raise ValidationError({"body": [f"Not a valid link: {url[:200]}"]}) from exc
            by_url[url] = link
        result.append(link)
    return result


# --- Drafts ------------------------------------------------------------------------------


def _draft_errors(*, channel: str, subject: str, body: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if channel not in Channel.values:
        errors["channel"] = ["Choose email or SMS."]
    if channel == Channel.EMAIL and not subject:
        errors["subject"] = ["An email needs a subject."]
    if not body:
        errors["body"] = ["Write the message."]
    elif channel == Channel.SMS and len(body) > SMS_MAX:
        errors["body"] = [f"An SMS may have at most {SMS_MAX} characters."]
    for name, text in (("subject", subject), ("body", body)):
        unknown = merge_fields.fields_unknown(text, known=merge_fields.SENDOUT_FIELDS)
        if unknown:
            errors.setdefault(name, []).append(
                merge_fields.unknown_fields_message(unknown, known=merge_fields.SENDOUT_FIELDS)
            )
    return errors


def sendout_create(
    *,
    account: Account,
    campaign: Campaign,
    recipient_list: RecipientList,
    channel: str,
    subject: str = "",
    body: str,
    user=None,
) -> Sendout:
    if campaign.account_id != account.pk or recipient_list.account_id != account.pk:
        raise ValidationError("The campaign and the list must belong to this account.")
    subject = subject.strip()
    body = body.strip()
    errors = _draft_errors(channel=channel, subject=subject, body=body)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        sendout_links_prepare(campaign=campaign, body=body, channel=channel)
        return Sendout.objects.create(
            account=account,
            campaign=campaign,
            recipient_list=recipient_list,
            channel=channel,
            subject=subject[:300],
            body=body,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )


def sendout_update(
    *,
    sendout: Sendout,
    campaign: Campaign,
    recipient_list: RecipientList,
    channel: str,
    subject: str = "",
    body: str,
) -> Sendout:
    """Change a draft; its checklist has to run again before it can be confirmed."""
    if sendout.status != Sendout.Status.DRAFT:
        raise ValidationError("Only a draft can be changed.")
    if campaign.account_id != sendout.account_id or recipient_list.account_id != sendout.account_id:
        raise ValidationError("The campaign and the list must belong to this account.")
    subject = subject.strip()
    body = body.strip()
    errors = _draft_errors(channel=channel, subject=subject, body=body)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        sendout_links_prepare(campaign=campaign, body=body, channel=channel)
        changed = Sendout.objects.filter(pk=sendout.pk, status=Sendout.Status.DRAFT).update(
            campaign=campaign,
            recipient_list=recipient_list,
            channel=channel,
            subject=subject[:300],
            body=body,
            checklist={},
            checklist_at=None,
        )
    if not changed:
        raise ValidationError("Only a draft can be changed.")
    sendout.refresh_from_db()
    return sendout


# --- The sender --------------------------------------------------------------------------


def email_sender_save(
    *, account: Account, from_name: str, from_email: str, reply_to: str = ""
) -> EmailSender:
    """The account's sender of marketing e-mail. Sendouts confirmed from now on use it."""
    errors: dict[str, list[str]] = {}
    from_name = " ".join(from_name.split())
    if not from_name:
        errors["from_name"] = ["Give the name recipients see as the sender."]
    elif len(from_name) > EmailSender._meta.get_field("from_name").max_length:
        errors["from_name"] = ["At most 100 characters."]
    addresses = {}
    for name, value, required in (("from_email", from_email, True), ("reply_to", reply_to, False)):
        if not value.strip() and not required:
            addresses[name] = ""
            continue
        try:
            addresses[name] = email_validate(value)
        except ValidationError as exc:
            errors[name] = exc.messages
    if errors:
        raise ValidationError(errors)
    sender, _ = EmailSender.objects.update_or_create(
        account=account,
        defaults={
            "from_name": from_name,
            "from_email": addresses["from_email"],
            "reply_to": addresses["reply_to"],
            "updated_at": timezone.now(),
        },
    )
    return sender


# --- The checklist -----------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentCheck:
    synced: bool
    note: str


def _consent_sync(*, account: Account, contact_ids: list[int]) -> ConsentCheck:
    """Bring the recipients' legal basis in step with SuperOffice, where sync is on."""
    from consent.models import ConsentSyncCycle
    from consent.selectors import consent_sync_enabled
    from consent.services import consent_sync_for_contacts

    if not consent_sync_enabled(account=account):
        return ConsentCheck(False, "Legal-basis sync is off: the hub's own records decide.")
    if not contact_ids:
        return ConsentCheck(True, "No recipients to sync.")
    cycle = consent_sync_for_contacts(account=account, contact_ids=contact_ids)
    if cycle is None:
        return ConsentCheck(
            False, "Another sync held the account: the hub's current records decide."
        )
    if cycle.status == ConsentSyncCycle.Status.FAILED:
        return ConsentCheck(
            False, f"The sync with SuperOffice failed ({cycle.error}): the hub's records decide."
        )
    return ConsentCheck(True, f"Synced with SuperOffice at {timezone.now():%Y-%m-%d %H:%M:%S}.")


def _address_of(contact_row: dict, channel: str) -> str:
    if channel == Channel.EMAIL:
        return contact_row["email"] or ""
    return (contact_row["mobile"] or contact_row["phone"] or "").strip()


def sendout_checklist_run(*, sendout: Sendout) -> dict:
    """Sync the recipients' legal basis (sync on) and count who would receive the
    message; the figures are kept on the sendout for the page."""
    contact_ids = list(selectors.recipient_contact_ids(recipient_list=sendout.recipient_list))
    check = _consent_sync(account=sendout.account, contact_ids=contact_ids)
    figures = selectors.sendout_recipient_figures(sendout=sendout)
    figures.update({"synced": check.synced, "note": check.note})
    sendout.checklist = figures
    sendout.checklist_at = timezone.now()
    sendout.save(update_fields=["checklist", "checklist_at"])
    return figures


def sendout_problems(*, sendout: Sendout) -> list[str]:
    """What stops the sendout from going out, in the marketer's words; empty when
    nothing does. Checked on the checklist, at Confirm and again at the send time."""
    problems = []
    if sendout.channel == Channel.EMAIL and sender_of(sendout) is None:
        problems.append(
            "The account has no sender yet: set the name and address recipients see on "
            "the Sender page."
        )
    for name, text in (("subject", sendout.subject), ("message", sendout.body)):
        unknown = merge_fields.fields_unknown(text, known=merge_fields.SENDOUT_FIELDS)
        if unknown:
            message = merge_fields.unknown_fields_message(
                unknown, known=merge_fields.SENDOUT_FIELDS
            )
            problems.append(f"The {name}: {message}")
    return problems


# --- Confirming, cancelling ----------------------------------------------------------------


def sendout_confirm(*, sendout: Sendout, scheduled_at: datetime | None = None) -> bool:
    """Send now or at `scheduled_at`. False when the sendout was no longer a draft
    (a second click, another tab): nothing more happens then."""
    now = timezone.now()
    when = scheduled_at or now
    if timezone.is_naive(when):
        raise ValidationError({"scheduled_at": ["Give a time with its time zone."]})
    if sendout.checklist_at is None:
        raise ValidationError("Run the checklist before sending.")
    problems = sendout_problems(sendout=sendout)
    if problems:
        raise ValidationError(problems)
    if not sendout.checklist.get("will_send"):
        raise ValidationError("Nobody on the list would receive it: there is nothing to send.")
    sender = sender_of(sendout) if sendout.channel == Channel.EMAIL else None
    confirmed = Sendout.objects.filter(pk=sendout.pk, status=Sendout.Status.DRAFT).update(
        status=Sendout.Status.SCHEDULED,
        scheduled_at=max(when, now),
        from_name=sender.name if sender else "",
        from_email=sender.email if sender else "",
        reply_to=sender.reply_to if sender else "",
    )
    if not confirmed:
        return False
    sendout.refresh_from_db()
    if when <= now:
        from .tasks import send_sendout

        transaction.on_commit(lambda: send_sendout.delay(sendout.pk))
    return True


def sendout_cancel(*, sendout: Sendout) -> bool:
    """Cancel a draft or a scheduled sendout that has not started."""
    return bool(
        Sendout.objects.filter(
            pk=sendout.pk, status__in=[Sendout.Status.DRAFT, Sendout.Status.SCHEDULED]
        ).update(status=Sendout.Status.CANCELLED, finished_at=timezone.now())
    )


# --- A test message ---------------------------------------------------------------------


def sendout_test_send(*, sendout: Sendout, contact: Contact, to: str) -> None:
    """The message as `contact` would get it, sent to `to` (the marketer's own address),
    marked as a test; it records nothing (sendout_mail.Mode.TEST)."""
    if sendout.channel != Channel.EMAIL:
        raise ValidationError("Test messages are for e-mail sendouts.")
    if contact.account_id != sendout.account_id:
        raise ValidationError("This contact belongs to another account.")
    try:
        to = email_validate(to)
    except ValidationError as exc:
        raise ValidationError(
            "Your user has no valid e-mail address to send the test to; add one to your user."
        ) from exc
    problems = sendout_problems(sendout=sendout)
    if problems:
        raise ValidationError(problems)
    parts = mail_parts(
        sendout=sendout, contact=contact, links=links_by_url(sendout=sendout), mode=Mode.TEST, to=to
    )
    try:
        email_message(parts).send(fail_silently=False)
    except OSError as exc:
        raise ValidationError(f"The mail server did not take the test message: {exc}") from exc


# --- Sending -----------------------------------------------------------------------------------


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"[:64]


def _sendout_claim(*, sendout_id: int) -> Sendout | None:
    """Take a due sendout (or one whose worker's lease ran out) with one conditional UPDATE."""
    now = timezone.now()
    claimed = Sendout.objects.filter(
        Q(status=Sendout.Status.SCHEDULED, scheduled_at__lte=now)
        | Q(status=Sendout.Status.SENDING)
        & (Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)),
        pk=sendout_id,
    ).update(status=Sendout.Status.SENDING, lease_expires_at=now + lease())
    if not claimed:
        return None
    sendout = Sendout.objects.select_related("account", "campaign", "recipient_list").get(
        pk=sendout_id
    )
    if sendout.started_at is None:
        sendout.started_at = now
        sendout.save(update_fields=["started_at"])
    return sendout


def _prepare(sendout: Sendout) -> None:
    """At send time: sync the recipients' legal basis, then write one message row per
    recipient, excluded where there is no legal basis or no address."""
    contact_ids = list(selectors.recipient_contact_ids(recipient_list=sendout.recipient_list))
    check = _consent_sync(account=sendout.account, contact_ids=contact_ids)
    for start in range(0, len(contact_ids), PREPARE_CHUNK):
        chunk = contact_ids[start : start + PREPARE_CHUNK]
        granted = selectors.contacts_with_marketing_basis(
            account=sendout.account, contact_ids=chunk
        )
        rows = []
        for row in Contact.objects.filter(account=sendout.account, pk__in=chunk).values(
            "pk", "email", "mobile", "phone"
        ):
            address = _address_of(row, sendout.channel)
            reason = ""
            if row["pk"] not in granted:
                reason = SendoutMessage.Exclusion.NO_LEGAL_BASIS
            elif not address:
                reason = SendoutMessage.Exclusion.NO_ADDRESS
            rows.append(
                SendoutMessage(
                    account=sendout.account,
                    sendout=sendout,
                    contact_id=row["pk"],
                    address=address[:254],
                    status=SendoutMessage.Status.EXCLUDED
                    if reason
                    else SendoutMessage.Status.QUEUED,
                    excluded_reason=reason,
                )
            )
        # The unique (sendout, contact) constraint: a resumed preparation adds nothing twice.
        SendoutMessage.objects.bulk_create(rows, ignore_conflicts=True)
    sendout.prepared_at = timezone.now()
    sendout.checklist = {
        **sendout.checklist,
        "at_send": {"synced": check.synced, "note": check.note},
    }
    sendout.save(update_fields=["prepared_at", "checklist"])


def _messages_claim(*, sendout: Sendout, worker: str, due_by: datetime) -> list[SendoutMessage]:
    """Claim up to BATCH messages due by `due_by`: a conditional UPDATE tagged with this
    worker, so two workers never hold the same row (skip-locked selection on PostgreSQL).
    A pass takes messages due when it began, so it tries each message once; a retry
    comes with a later pass."""
    now = timezone.now()
    due = SendoutMessage.objects.filter(
        Q(status=SendoutMessage.Status.QUEUED, next_attempt_at__lte=due_by)
        | Q(status=SendoutMessage.Status.SENDING, lease_expires_at__lt=now),
        sendout=sendout,
    ).order_by("id")
    with transaction.atomic():
        if db_connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("id", flat=True)[:BATCH])
        if not ids:
            return []
        SendoutMessage.objects.filter(
            Q(status=SendoutMessage.Status.QUEUED)
            | Q(status=SendoutMessage.Status.SENDING, lease_expires_at__lt=now),
            id__in=ids,
        ).update(
            status=SendoutMessage.Status.SENDING,
            claimed_by=worker,
            lease_expires_at=now + lease(),
        )
    return list(
        SendoutMessage.objects.filter(
            id__in=ids, status=SendoutMessage.Status.SENDING, claimed_by=worker
        ).select_related("contact")
    )


def _deliver_email(*, sendout, message, links, mail) -> None:
    parts = mail_parts(sendout=sendout, contact=message.contact, links=links, to=message.address)
    email_message(parts, connection=mail).send(fail_silently=False)


def _deliver_sms(*, sendout, message, links, sms) -> None:
    parts = mail_parts(sendout=sendout, contact=message.contact, links=links, to=message.address)
    sms.send(account_id=sendout.account_id, to=message.address, body=parts.text)


def _deliver_batch(*, sendout: Sendout, batch: list[SendoutMessage], links, mail, sms) -> None:
    now = timezone.now()
    sent_events = []
    for message in batch:
        message.attempts += 1
        message.lease_expires_at = None
        message.claimed_by = ""
        try:
            if sendout.channel == Channel.EMAIL:
                _deliver_email(sendout=sendout, message=message, links=links, mail=mail)
            else:
                _deliver_sms(sendout=sendout, message=message, links=links, sms=sms)
        except (OSError, SmsDeliveryError, ValueError) as exc:
            # SMTP errors are OSErrors; a backend's own failures are SmsDeliveryError.
            message.last_error = f"{exc.__class__.__name__}: {exc}"[:2000]
            if message.attempts >= max_attempts():
                message.status = SendoutMessage.Status.FAILED
            else:
                message.status = SendoutMessage.Status.QUEUED
                message.next_attempt_at = now + timedelta(
                    seconds=backoff_seconds(attempt=message.attempts)
                )
            logger.warning(
                "Sendout %s: message %s to contact %s failed (attempt %s): %s",
                sendout.pk,
                message.pk,
                message.contact_id,
                message.attempts,
                exc,
            )
            continue
        message.status = SendoutMessage.Status.SENT
        message.sent_at = timezone.now()
        message.last_error = ""
        sent_events.append(
            {
                # One event per message, whatever happens to the task.
                "event_id": f"sendout-{sendout.pk}-{message.contact_id}",
                "type": EventType.EMAIL_SENT
                if sendout.channel == Channel.EMAIL
                else EventType.SMS_SENT,
                "campaign": sendout.campaign,
                "contact": message.contact,
                "occurred_at": message.sent_at,
                "data": {"sendout": sendout.pk, "subject": sendout.subject}
                if sendout.subject
                else {"sendout": sendout.pk},
            }
        )
    with transaction.atomic():
        SendoutMessage.objects.bulk_update(
            batch,
            fields=[
                "status",
                "attempts",
                "next_attempt_at",
                "lease_expires_at",
                "claimed_by",
                "last_error",
                "sent_at",
            ],
        )
        if sent_events:
            events_ingest(account=sendout.account, events=sent_events, source=Event.Source.SENDOUT)


def sendout_send(*, sendout_id: int) -> Sendout | None:
    """Send a due sendout: claim it, check legal basis at this moment (first time),
    deliver every due message in batches. Safe to call any number of times."""
    sendout = _sendout_claim(sendout_id=sendout_id)
    if sendout is None:
        return None
    worker = _worker_name()
    try:
        if sendout.prepared_at is None:
            problems = sendout_problems(sendout=sendout)
            if problems:
                # Something changed since Confirm (the sender was removed): nothing goes out.
                Sendout.objects.filter(pk=sendout.pk, status=Sendout.Status.SENDING).update(
                    status=Sendout.Status.CANCELLED,
                    finished_at=timezone.now(),
                    lease_expires_at=None,
                    not_sent_reason=" ".join(problems),
                )
                sendout.refresh_from_db()
                return sendout
            _prepare(sendout)
        links = links_by_url(sendout=sendout)
        mail = get_connection() if sendout.channel == Channel.EMAIL else None
        sms = sms_backend() if sendout.channel == Channel.SMS else None
        began = timezone.now()
        while batch := _messages_claim(sendout=sendout, worker=worker, due_by=began):
            _deliver_batch(sendout=sendout, batch=batch, links=links, mail=mail, sms=sms)
            Sendout.objects.filter(pk=sendout.pk).update(lease_expires_at=timezone.now() + lease())
    finally:
        _sendout_settle(sendout)
    sendout.refresh_from_db()
    return sendout


def _sendout_settle(sendout: Sendout) -> None:
    """Done when no message waits; otherwise release it for the beat to pick up the
    retries when they are due."""
    waiting = SendoutMessage.objects.filter(
        sendout=sendout,
        status__in=[SendoutMessage.Status.QUEUED, SendoutMessage.Status.SENDING],
    ).exists()
    if sendout.prepared_at is not None and not waiting:
        Sendout.objects.filter(pk=sendout.pk, status=Sendout.Status.SENDING).update(
            status=Sendout.Status.SENT, finished_at=timezone.now(), lease_expires_at=None
        )
    else:
        Sendout.objects.filter(pk=sendout.pk).update(lease_expires_at=None)


def sendouts_dispatch_due() -> int:
    """The beat's every-minute job: wake a worker for each sendout that is due, or has
    messages due for another attempt, or whose worker's lease ran out."""
    from .tasks import send_sendout

    ids = selectors.sendouts_due()
    for sendout_id in ids:
        send_sendout.delay(sendout_id)
    return len(ids)
