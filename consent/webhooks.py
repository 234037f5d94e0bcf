"""Writes of the account's webhook in SuperOffice: registered while legal-basis sync is
on, removed when it is turned off, its state read back for the connection page.

SuperOffice's documented behaviour shapes it (docs/en/automation/webhook/):
- a save first POSTs a test event to the target and fails unless it answers 200
  (``dev/register.md``): the receiver row, with its secret, is committed before the
  save, so the receiver can verify and answer that POST;
- the target must be https (``dev/index.md``): without a public https address
  (EMHUB_PUBLIC_URL) nothing is registered and the cycle alone keeps the sides in step;
- nine failed deliveries in a row, or one 410, set the state to TooManyErrors
  (``dev/notification.md``, ``reference/state-events.md``), and turning it back on is
  the receiver's job: the hub re-registers a disabled webhook when the admin asks, and
  then runs a cycle at once to catch what was not pushed meanwhile;
- the payload names only the person (``reference/person-events.md``): see push.py.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from crm.errors import CrmError, NotFoundCrmError
from crm.services import client_for_account
from emhub.models import Account

from .models import SuperOfficeWebhook
from .selectors import consent_sync_enabled

logger = logging.getLogger(__name__)

# The consent events (a consent added, changed, removed or withdrawn) and person.changed,
# which a save of the whole person (its Consents included) raises.
WEBHOOK_EVENTS = ("person.consented", "person.unconsented", "person.changed")
# A registration that failed is tried again after this, doubling up to the cap.
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=1)
# A registration still "being registered" after this was cut short (a worker died).
REGISTERING_STALE = timedelta(minutes=5)


def _check_seconds() -> float:
    return getattr(settings, "CONSENT_WEBHOOK_CHECK_SECONDS", 300.0)


def webhook_public_base() -> tuple[str | None, str]:
    """The hub's address as SuperOffice reaches it (EMHUB_PUBLIC_URL), or None and why
    SuperOffice cannot: it delivers to https only. Plain http is accepted where the
    operator allows private addresses (the embedded default and the tests run the
    simulator and the hub on loopback)."""
    base = (getattr(settings, "EMHUB_PUBLIC_URL", "") or "").rstrip("/")
    parts = urlsplit(base)
    if parts.scheme == "https" and parts.hostname:
        return base, ""
    if parts.scheme == "http" and parts.hostname and settings.CRM_ALLOW_PRIVATE_ADDRESSES:
        return base, ""
    return None, (
        "The hub has no public https address (EMHUB_PUBLIC_URL), and SuperOffice delivers "
        "webhooks to https only: consent changes arrive with the 30-minute cycle."
    )


def _backoff(attempts: int) -> timedelta:
    return min(RETRY_CAP, RETRY_BASE * (2 ** max(attempts - 1, 0)))


def _webhook_row(account: Account) -> SuperOfficeWebhook:
    row = SuperOfficeWebhook.objects.filter(account=account).first()
    if row is None:
        row, _ = SuperOfficeWebhook.objects.get_or_create(
            account=account,
            defaults={
                "token": secrets.token_urlsafe(24),
                "secret": secrets.token_urlsafe(32),
                # SuperOffice lists webhooks by name: the hub finds its own by this.
                "name": f"emhub legal basis ({account.slug})"[:200],
                "events": list(WEBHOOK_EVENTS),
            },
        )
    return row


def _save(row: SuperOfficeWebhook, **fields) -> SuperOfficeWebhook:
    fields["updated_at"] = timezone.now()
    SuperOfficeWebhook.objects.filter(pk=row.pk).update(**fields)
    row.refresh_from_db()
    return row


def consent_webhook_ensure(*, account: Account, force: bool = False) -> SuperOfficeWebhook | None:
    """Bring the account's webhook in line with its legal-basis sync switch: registered
    while it is on, removed while it is off. ``force`` (the admin's button) registers
    again a webhook SuperOffice disabled, stopped or lost, and retries a failed one now.
    Calls SuperOffice outside any transaction; never raises for SuperOffice's errors
    (they are kept on the row for the connection page). None when there is nothing to do."""
    if consent_sync_enabled(account=account):
        return _register(account=account, force=force)
    row = SuperOfficeWebhook.objects.filter(account=account).first()
    if row is None:
        return None
    return _remove(row=row, force=force)


def _register(*, account: Account, force: bool) -> SuperOfficeWebhook:
    row = _webhook_row(account)
    now = timezone.now()
    base, why_not = webhook_public_base()
    if base is None:
        # Nothing to try until the operator gives the hub an address (a restart).
        return _save(
            row,
            state=SuperOfficeWebhook.State.NOT_REGISTERED,
            error=why_not,
            next_attempt_at=now + RETRY_CAP,
        )
    State = SuperOfficeWebhook.State
    if not force:
        if row.state in (State.ACTIVE, State.FAILING, State.DISABLED, State.STOPPED, State.MISSING):
            return row
        if row.state == State.REGISTERING and row.updated_at > now - REGISTERING_STALE:
            return row
        if row.next_attempt_at is not None and row.next_attempt_at > now:
            return row
    target_url = f"{base}{reverse('consent:superoffice_webhook', args=[row.token])}"
    # Committed before SuperOffice's test POST arrives: the receiver answers it.
    previous = row.state
    row = _save(row, state=State.REGISTERING, target_url=target_url, events=list(WEBHOOK_EVENTS))
    try:
        client = client_for_account(account, correlation="consent-webhook")
        webhook_id = row.webhook_id or 0
        if not webhook_id:
            # A save whose answer was lost may have made it already: find it by name.
            webhook_id = next(
                (w.id for w in client.find_webhooks(name=row.name) if w.target_url == target_url),
                0,
            )
        try:
            hook = client.save_webhook(
                webhook_id=webhook_id,
                name=row.name,
                events=WEBHOOK_EVENTS,
                target_url=target_url,
                secret=row.secret,
            )
        except NotFoundCrmError:
            # Deleted in SuperOffice since: make a new one.
            hook = client.save_webhook(
                name=row.name, events=WEBHOOK_EVENTS, target_url=target_url, secret=row.secret
            )
        acknowledged = client.webhook_last_error(webhook_id=hook.id)
    except CrmError as exc:
        attempts = row.attempts + 1
        logger.warning("Webhook of account %s not registered: %s", account.pk, exc)
        return _save(
            row,
            state=previous
            if previous in (State.DISABLED, State.STOPPED, State.MISSING)
            else State.NOT_REGISTERED,
            error=f"SuperOffice did not register the webhook: {exc}"[:2000],
            attempts=attempts,
            next_attempt_at=timezone.now() + _backoff(attempts),
        )
    now = timezone.now()
    row = _save(
        row,
        state=State.ACTIVE,
        webhook_id=hook.id,
        superoffice_state=hook.state,
        error="",
        superoffice_error="",
        superoffice_error_seen_at=None,
        acknowledged_error=acknowledged or "",
        consecutive_errors=hook.consecutive_errors,
        attempts=0,
        next_attempt_at=None,
        registered_at=now,
        checked_at=now,
    )
    # What SuperOffice changed while nothing was pushed is caught at once, not in up to
    # 30 minutes (an incremental cycle reads the changes since the last one).
    from .tasks import sync_account

    try:
        sync_account.delay(account.pk)
    except Exception:
        logger.warning("Could not queue a consent cycle for account %s", account.pk)
    return row


def _remove(*, row: SuperOfficeWebhook, force: bool) -> SuperOfficeWebhook | None:
    State = SuperOfficeWebhook.State
    if row.state in (State.REMOVED, State.NOT_REGISTERED) and not row.webhook_id:
        return None
    if not force and row.next_attempt_at is not None and row.next_attempt_at > timezone.now():
        return row
    # From now on a delivery that still arrives is answered 410 Gone.
    row = _save(row, state=State.REMOVING)
    if row.webhook_id:
        try:
            client_for_account(row.account, correlation="consent-webhook").delete_webhook(
                webhook_id=row.webhook_id
            )
        except NotFoundCrmError:
            pass
        except CrmError as exc:
            attempts = row.attempts + 1
            return _save(
                row,
                error=f"SuperOffice did not delete the webhook: {exc}"[:2000],
                attempts=attempts,
                next_attempt_at=timezone.now() + _backoff(attempts),
            )
    return _save(
        row, state=State.REMOVED, webhook_id=None, error="", attempts=0, next_attempt_at=None
    )


def consent_webhook_check(*, account: Account) -> SuperOfficeWebhook | None:
    """Read the webhook's state back from SuperOffice: active, failing (SuperOffice reports
    delivery errors the hub has not seen a delivery after), disabled by SuperOffice after
    errors, stopped by someone, or gone. Never raises for SuperOffice's errors."""
    row = SuperOfficeWebhook.objects.filter(account=account).first()
    State = SuperOfficeWebhook.State
    if (
        row is None
        or not row.webhook_id
        or row.state
        not in (
            State.ACTIVE,
            State.FAILING,
            State.DISABLED,
            State.STOPPED,
        )
    ):
        return row
    now = timezone.now()
    try:
        client = client_for_account(account, correlation="consent-webhook")
        hook = client.get_webhook(webhook_id=row.webhook_id)
        last_error = (
            client.webhook_last_error(webhook_id=row.webhook_id) if hook is not None else ""
        )
    except CrmError as exc:
        return _save(row, checked_at=now, error=f"Could not read the webhook's state: {exc}")
    if hook is None:
        return _save(
            row,
            state=State.MISSING,
            superoffice_state="",
            checked_at=now,
            error="SuperOffice no longer has this webhook (deleted there); register it again.",
        )
    fields = {
        "superoffice_state": hook.state,
        "checked_at": now,
        "error": "",
        "consecutive_errors": hook.consecutive_errors,
    }
    if hook.state == "TooManyErrors":
        fields |= {
            "state": State.DISABLED,
            "superoffice_error": last_error or row.superoffice_error,
        }
        return _save(row, **fields)
    if hook.state == "Stopped":
        who = f" by {hook.updated_by}" if hook.updated_by else ""
        fields |= {"state": State.STOPPED, "error": f"Stopped in SuperOffice{who}."}
        return _save(row, **fields)
    error = hook.last_error or last_error
    if error and error != row.superoffice_error:
        fields |= {"superoffice_error": error, "superoffice_error_seen_at": now}
        seen_at = now
    else:
        seen_at = row.superoffice_error_seen_at
    if hook.consecutive_errors is not None:
        failing = hook.consecutive_errors > 0
    else:
        # NetServer 10.0.2 tells the last error, not whether it is still failing: an error
        # the hub saw no delivery arrive after, and not already there when it registered.
        failing = (
            bool(error)
            and error != row.acknowledged_error
            and (row.last_delivery_at is None or seen_at is None or row.last_delivery_at < seen_at)
        )
    fields["state"] = State.FAILING if failing else State.ACTIVE
    return _save(row, **fields)


def _needs_registering(row: SuperOfficeWebhook | None, *, now) -> bool:
    State = SuperOfficeWebhook.State
    if row is None:
        return True
    due = row.next_attempt_at is None or row.next_attempt_at <= now
    if row.state in (State.NOT_REGISTERED, State.REMOVING, State.REMOVED):
        return due
    return row.state == State.REGISTERING and row.updated_at <= now - REGISTERING_STALE


def consent_webhooks_due() -> tuple[list[int], list[int]]:
    """Accounts whose webhook needs registering or removing now, and accounts whose
    webhook's state is due to be read again (the sweeper queues both)."""
    from crm.models import SuperOfficeConnection

    now = timezone.now()
    State = SuperOfficeWebhook.State
    on = set(
        SuperOfficeConnection.objects.filter(legal_basis_sync_enabled=True).values_list(
            "account_id", flat=True
        )
    )
    rows = {r.account_id: r for r in SuperOfficeWebhook.objects.all()}
    ensure = []
    for account_id in sorted(on):
        row = rows.get(account_id)
        if _needs_registering(row, now=now):
            ensure.append(account_id)
    for account_id, row in sorted(rows.items()):
        if account_id in on:
            continue
        if row.webhook_id and (row.next_attempt_at is None or row.next_attempt_at <= now):
            ensure.append(account_id)
    stale = now - timedelta(seconds=_check_seconds())
    check = list(
        SuperOfficeWebhook.objects.filter(
            account_id__in=on,
            state__in=[State.ACTIVE, State.FAILING, State.DISABLED, State.STOPPED],
        )
        .filter(Q(checked_at__isnull=True) | Q(checked_at__lt=stale))
        .values_list("account_id", flat=True)
    )
    return ensure, check
