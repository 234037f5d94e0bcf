"""Celery entry points of the legal-basis sync. Each takes ids, re-reads the rows and
calls one service; the account's lease (not Celery) makes a cycle run once at a time,
so a duplicate beat or a redelivered message is a harmless no-op."""

import logging

from celery import shared_task

from emhub.models import Account

from .models import ConsentSyncCycle
from .selectors import consent_sync_accounts
from .services import consent_sync_cycle

logger = logging.getLogger(__name__)

# A full reconciliation of a large account reads every linked person; give it room
# beyond the default task limits. The lease is renewed after every batch meanwhile.
CYCLE_SOFT_TIME_LIMIT = 3300
CYCLE_TIME_LIMIT = 3600


@shared_task(
    name="consent.sync_account",
    ignore_result=True,
    soft_time_limit=CYCLE_SOFT_TIME_LIMIT,
    time_limit=CYCLE_TIME_LIMIT,
)
def sync_account(account_id: int, kind: str = ConsentSyncCycle.Kind.INCREMENTAL) -> None:
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        return
    consent_sync_cycle(account=account, kind=kind)


def _fan_out(kind: str) -> int:
    count = 0
    for account in consent_sync_accounts():
        # One message per account: one account's slow or failing SuperOffice never
        # holds up another's cycle.
        sync_account.delay(account.pk, kind)
        count += 1
    logger.info("Consent sync (%s) queued for %s accounts", kind, count)
    return count


@shared_task(name="consent.sync_all_accounts", ignore_result=True)
def sync_all_accounts() -> None:
    """Every 30 minutes: an incremental cycle for every account with sync on."""
    _fan_out(ConsentSyncCycle.Kind.INCREMENTAL)


@shared_task(name="consent.reconcile_all_accounts", ignore_result=True)
def reconcile_all_accounts() -> None:
    """Nightly: a full reconciliation for every account with sync on."""
    _fan_out(ConsentSyncCycle.Kind.FULL)


# -- pushes between cycles (see consent.push) ------------------------------------------


# acks_late: a message whose worker died is delivered again; the account's push lease
# makes a second delivery a no-op while the first still drains.
@shared_task(name="consent.drain_pushes", acks_late=True, ignore_result=True)
def drain_pushes(account_id: int) -> None:
    from .push import consent_pushes_drain

    consent_pushes_drain(account_id=account_id)


@shared_task(name="consent.ensure_webhook", ignore_result=True)
def ensure_webhook(account_id: int) -> None:
    from .webhooks import consent_webhook_ensure

    account = Account.objects.filter(pk=account_id).first()
    if account is not None:
        consent_webhook_ensure(account=account)


@shared_task(name="consent.check_webhook", ignore_result=True)
def check_webhook(account_id: int) -> None:
    from .webhooks import consent_webhook_check

    account = Account.objects.filter(pk=account_id).first()
    if account is not None:
        consent_webhook_check(account=account)


@shared_task(name="consent.sweep_pushes", ignore_result=True)
def sweep_pushes() -> None:
    """Every 15 seconds: wake accounts whose pushes wait with nobody on them, and queue
    the webhook registrations, removals and state checks that are due."""
    from .push import consent_pushes_sweep
    from .webhooks import consent_webhooks_due

    consent_pushes_sweep()
    ensure, check = consent_webhooks_due()
    for account_id in ensure:
        ensure_webhook.delay(account_id)
    for account_id in check:
        check_webhook.delay(account_id)


@shared_task(name="consent.prune_pushes", ignore_result=True)
def prune_pushes() -> None:
    """Daily: forget finished deliveries and pushes after CONSENT_PUSH_KEEP_DAYS."""
    from .push import consent_pushes_prune

    consent_pushes_prune()
