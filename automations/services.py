"""Writes of the automations app: automations, the run ledger and its execution engine.

How a run is executed exactly once in effect (see DESIGN, "Reliability"):

1. The run row is written in the event's transaction (`runs_create_for_events`); a Celery
   message is published after commit only to wake a worker up. If the broker is down the
   publish fails quietly and the sweeper publishes later: nothing acknowledged is lost.
2. A worker claims the row with one conditional UPDATE (pending and due, or running with
   an expired lease -> running with a new lease). Only one claimer wins, on SQLite and
   PostgreSQL alike, so a redelivered or duplicated message is a no-op.
3. SuperOffice is called outside any transaction. Objects the run creates carry the run's
   marker in their text in the same save call; an attempt after an earlier one (whose
   outcome may be unknown) looks for the marker before creating again. Set operations
   (interests, selection and project membership) check first or are idempotent.
4. The outcome is recorded in a new short transaction, guarded by the claim token so a
   worker whose lease ran out cannot overwrite a newer attempt's outcome.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
import socket
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import BooleanField, F, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from campaigns.models import Contact, Event

from . import admission
from .models import Automation, AutomationSettings, ErrorKind, Run, RunStatus

logger = logging.getLogger(__name__)


def _setting(name: str, default):
    return getattr(settings, name, default)


def max_attempts() -> int:
    return _setting("AUTOMATIONS_MAX_ATTEMPTS", 8)


def retry_base_seconds() -> float:
    return _setting("AUTOMATIONS_RETRY_BASE_SECONDS", 10.0)


def retry_cap_seconds() -> float:
    return _setting("AUTOMATIONS_RETRY_CAP_SECONDS", 900.0)


def lease_seconds() -> float:
    # Longer than the task's hard time limit: a live worker never loses its lease.
    return _setting("AUTOMATIONS_LEASE_SECONDS", _setting("CELERY_TASK_TIME_LIMIT", 300) + 60)


def redispatch_after_seconds() -> float:
    return _setting("AUTOMATIONS_REDISPATCH_AFTER_SECONDS", 60.0)


def config_pause_seconds() -> float:
    return _setting("AUTOMATIONS_CONFIG_PAUSE_SECONDS", 300.0)


# --- keys -------------------------------------------------------------------------


def run_key_for(*, account_id: int, event_id: int, automation_id: int) -> str:
    digest = hashlib.sha256(f"{account_id}:{event_id}:{automation_id}".encode()).hexdigest()
    return f"r{digest[:24]}"


def once_key_for(*, automation_id: int, contact_id: int) -> str:
    return f"{automation_id}:{contact_id}"


# --- automation settings ------------------------------------------------------------


def automation_settings_for(*, account) -> AutomationSettings:
    obj, _ = AutomationSettings.objects.get_or_create(account=account)
    return obj


def automation_settings_update(*, account, auto_match_single_email: bool) -> AutomationSettings:
    obj = automation_settings_for(account=account)
    obj.auto_match_single_email = auto_match_single_email
    obj.updated_at = timezone.now()
    obj.save(update_fields=["auto_match_single_email", "updated_at"])
    return obj


def account_crm_pause(*, account, reason: str) -> AutomationSettings:
    """Hold the account's CRM work after SuperOffice refused its configuration."""
    now = timezone.now()
    obj = automation_settings_for(account=account)
    AutomationSettings.objects.filter(pk=obj.pk).update(
        crm_paused_at=obj.crm_paused_at or now,
        crm_paused_until=now + timedelta(seconds=config_pause_seconds()),
        crm_pause_reason=reason[:2000],
        updated_at=now,
    )
    obj.refresh_from_db()
    logger.warning("CRM work of account %s paused: %s", account.pk, reason)
    return obj


def account_crm_resume(*, account) -> int:
    """Lift the pause (the admin fixed the connection, or a probe run succeeded).

    Held runs become due now and are dispatched; returns how many.
    """
    now = timezone.now()
    AutomationSettings.objects.filter(account=account).update(
        crm_paused_at=None, crm_paused_until=None, crm_pause_reason="", updated_at=now
    )
    run_ids = list(
        Run.objects.filter(
            account=account, status=RunStatus.PENDING, next_attempt_at__gt=now
        ).values_list("id", flat=True)
    )
    if run_ids:
        Run.objects.filter(id__in=run_ids, status=RunStatus.PENDING).update(next_attempt_at=now)
        transaction.on_commit(lambda: runs_dispatch(run_ids=run_ids))
    return len(run_ids)


# --- automations ---------------------------------------------------------------------


def automation_create(
    *,
    account,
    campaign,
    name: str,
    type: str,
    trigger_event_type: str,
    trigger_link=None,
    trigger_form=None,
    settings: dict | None = None,
    once_per_contact: bool = False,
    is_enabled: bool = True,
) -> Automation:
    if campaign.account_id != account.pk:
        raise ValueError("The campaign belongs to another account.")
    for obj in (trigger_link, trigger_form):
        if obj is not None and obj.campaign_id != campaign.pk:
            raise ValueError("The trigger link or form belongs to another campaign.")
    return Automation.objects.create(
        account=account,
        campaign=campaign,
        name=name,
        type=type,
        trigger_event_type=trigger_event_type,
        trigger_link=trigger_link,
        trigger_form=trigger_form,
        settings=settings or {},
        once_per_contact=once_per_contact,
        is_enabled=is_enabled,
    )


def automation_update(*, automation: Automation, **fields) -> Automation:
    allowed = {
        "name",
        "type",
        "trigger_event_type",
        "trigger_link",
        "trigger_form",
        "settings",
        "once_per_contact",
        "is_enabled",
    }
    for name, value in fields.items():
        if name not in allowed:
            raise TypeError(f"Cannot update {name}")
        setattr(automation, name, value)
    automation.updated_at = timezone.now()
    automation.save()
    return automation


def automation_set_enabled(*, automation: Automation, is_enabled: bool) -> Automation:
    automation.is_enabled = is_enabled
    automation.updated_at = timezone.now()
    automation.save(update_fields=["is_enabled", "updated_at"])
    return automation


@transaction.atomic
def automation_delete(*, automation: Automation) -> Automation:
    """Soft delete: keeps its run history; its runs that have not executed are cancelled."""
    now = timezone.now()
    automation.deleted_at = now
    automation.is_enabled = False
    automation.updated_at = now
    automation.save(update_fields=["deleted_at", "is_enabled", "updated_at"])
    Run.objects.filter(
        automation=automation, status__in=[RunStatus.PENDING, RunStatus.WAITING_FOR_MATCH]
    ).update(status=RunStatus.CANCELLED, cancel_reason="Automation deleted", finished_at=now)
    return automation


# --- creating and dispatching runs ---------------------------------------------------


def _automation_matches(automation: Automation, event: Event) -> bool:
    if automation.trigger_link_id is not None and automation.trigger_link_id != event.link_id:
        return False
    return automation.trigger_form_id is None or automation.trigger_form_id == event.form_id


def runs_create_for_events(
    *, account, events: Iterable[Event], events_are_new: bool = False
) -> list[Run]:
    """Write one run per (event, matching enabled automation), in the caller's transaction.

    Called by events_ingest inside its transaction, so the runs commit with their events.
    Runs that would break once-per-contact, or that already exist (the same event handed
    in again), are skipped by the unique constraints.

    Queries, fewest on the tracking endpoints' path: one for the automations and one
    insert. The contacts' person ids come from the events' loaded contacts (a query only
    for those not loaded); the account's auto-match setting is read only when a contact
    has no person. `events_are_new` (the caller stored the events in this transaction)
    lets a batch with no once-per-contact run be inserted with the ids returned, instead
    of inserted past conflicts and read back.
    """
    events = [e for e in events if e.account_id == account.pk]
    if not events:
        return []
    campaign_ids = {e.campaign_id for e in events}
    event_types = {e.type for e in events}
    automations = list(
        Automation.objects.filter(
            account=account,
            campaign_id__in=campaign_ids,
            trigger_event_type__in=event_types,
            is_enabled=True,
            deleted_at__isnull=True,
        )
    )
    if not automations:
        return []
    by_trigger: dict[tuple[int, str], list[Automation]] = {}
    for a in automations:
        by_trigger.setdefault((a.campaign_id, a.trigger_event_type), []).append(a)

    person_ids = _person_ids_for(events)
    auto_match = None  # read once, and only when a contact has no person

    now = timezone.now()
    rows: list[Run] = []
    seen_once: set[str] = set()
    seen_keys: set[str] = set()
    for event in events:
        for automation in by_trigger.get((event.campaign_id, event.type), []):
            if not _automation_matches(automation, event):
                continue
            key = run_key_for(account_id=account.pk, event_id=event.pk, automation_id=automation.pk)
            if key in seen_keys:
                continue
            seen_keys.add(key)
            once_key = None
            if automation.once_per_contact:
                once_key = once_key_for(automation_id=automation.pk, contact_id=event.contact_id)
                if once_key in seen_once:
                    continue
                seen_once.add(once_key)
            # A contact with no SuperOffice person waits in the queue straight away, unless
            # the account matches by email automatically (then a worker tries first).
            waiting = False
            if person_ids.get(event.contact_id) is None:
                if auto_match is None:
                    auto_match = AutomationSettings.objects.filter(
                        account=account, auto_match_single_email=True
                    ).exists()
                waiting = not auto_match
            rows.append(
                Run(
                    account=account,
                    automation=automation,
                    event=event,
                    contact_id=event.contact_id,
                    status=RunStatus.WAITING_FOR_MATCH if waiting else RunStatus.PENDING,
                    waiting_since=now if waiting else None,
                    next_attempt_at=now,
                    dispatched_at=None if waiting else now,
                    key=key,
                    once_key=once_key,
                    created_at=now,
                )
            )
    if not rows:
        return []
    created = _runs_insert(rows, now=now, may_conflict=not events_are_new)
    to_dispatch = [r.id for r in created if r.status == RunStatus.PENDING]
    if to_dispatch:
        transaction.on_commit(lambda: runs_dispatch(run_ids=to_dispatch, account_id=account.pk))
    return created


def _person_ids_for(events: list[Event]) -> dict[int, int | None]:
    """{contact id: SuperOffice person id} from the events' loaded contacts; one query
    for the contacts that are not loaded."""
    person_ids: dict[int, int | None] = {}
    to_read: set[int] = set()
    for event in events:
        if Event.contact.is_cached(event):
            person_ids[event.contact_id] = event.contact.superoffice_person_id
        else:
            to_read.add(event.contact_id)
    to_read -= person_ids.keys()
    if to_read:
        person_ids.update(
            Contact.objects.filter(id__in=to_read).values_list("id", "superoffice_person_id")
        )
    return person_ids


def _runs_insert(rows: list[Run], *, now, may_conflict: bool) -> list[Run]:
    """Insert the runs; those that would conflict with a stored one are left out.

    Without a possible conflict (new events, no once-per-contact key) a plain insert
    returns the ids where the database can (PostgreSQL, SQLite 3.35+). Otherwise, or
    where ids did not come back, the rows go in past conflicts and are read back.
    """
    if not may_conflict and not any(row.once_key for row in rows):
        Run.objects.bulk_create(rows, batch_size=1000)
        if all(row.pk is not None for row in rows):
            return rows
        # No ids returned: nothing conflicted, so every row is read back below.
    else:
        Run.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    # With ignore_conflicts PostgreSQL returns no ids: read back the ids of the rows this
    # call inserted (a row that already existed has another created_at).
    ids = dict(
        Run.objects.filter(key__in=[r.key for r in rows], created_at=now).values_list("key", "id")
    )
    created = []
    for row in rows:
        if row.key in ids:
            row.id = ids[row.key]
            row._state.adding = False
            created.append(row)
    return created


# Above this many runs, the request publishes one fan-out message per chunk and a worker
# publishes the per-run messages: a publish costs about a millisecond, too much to pay a
# thousand times inside an API request.
FAN_OUT_ABOVE = 20
FAN_OUT_CHUNK = 500
# Runs woken by one message, executed in turn by one worker: a click's actions cost the
# recipient's request one publish, not one per action. Small, so that a message's runs
# stay well inside the task time limit even when each waits out a SuperOffice timeout.
RUNS_PER_MESSAGE = 5
_PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}


def runs_dispatch(
    *, run_ids: list[int], fan_out: bool = True, account_id: int | None = None
) -> int:
    """Publish wake-ups; never raises. Returns how many runs' wake-ups went out.

    First each account's runs in flight are kept to its limit (automations.admission):
    the runs beyond it stay in the ledger for later. Up to FAN_OUT_ABOVE runs go out as
    `execute_runs` messages of RUNS_PER_MESSAGE runs; more as fan-out messages a worker
    splits; those of an account with runs held back one per message. When the broker is
    unreachable the first failure stops the batch (each publish would wait for its own
    timeout) and the runs not yet published are marked so the sweeper takes them.
    ``account_id``: the runs are all this account's.
    """
    if not fan_out:
        return _runs_publish(free=run_ids, held={}, fan_out=False)
    try:
        admitted = admission.runs_admit(run_ids=run_ids, account_id=account_id)
    except Exception:
        logger.warning("Could not admit %d runs; the sweeper will", len(run_ids), exc_info=True)
        _runs_undispatch(run_ids=run_ids)
        return 0
    return _runs_publish(free=admitted.free, held=admitted.held, fan_out=True)


def _runs_publish(*, free: list[int], held: dict[int, list[int]], fan_out: bool) -> int:
    from .tasks import dispatch_runs, execute_runs

    published = 0
    pending = list(free)
    # Accounts with runs held back: one run per message (each may take a call slot of its
    # own), taken in turn across the accounts; the worker tops the account up after it.
    singles = [
        (account_id, ids[place])
        for place in range(max((len(ids) for ids in held.values()), default=0))
        for account_id, ids in held.items()
        if place < len(ids)
    ]
    total = len(pending) + len(singles)
    try:
        with execute_runs.app.producer_or_acquire() as producer:
            while singles:
                account_id, run_id = singles[0]
                execute_runs.apply_async(
                    ([run_id],),
                    {"account_id": account_id},
                    producer=producer,
                    retry=True,
                    retry_policy=_PUBLISH_RETRY,
                )
                del singles[0]
                published += 1
            if fan_out and len(pending) > FAN_OUT_ABOVE:
                while pending:
                    chunk = pending[:FAN_OUT_CHUNK]
                    dispatch_runs.apply_async(
                        (chunk,), producer=producer, retry=True, retry_policy=_PUBLISH_RETRY
                    )
                    del pending[:FAN_OUT_CHUNK]
                    published += len(chunk)
                return published
            while pending:
                group = pending[:RUNS_PER_MESSAGE]
                execute_runs.apply_async(
                    (group,), producer=producer, retry=True, retry_policy=_PUBLISH_RETRY
                )
                del pending[:RUNS_PER_MESSAGE]
                published += len(group)
    except Exception:
        logger.warning(
            "Could not publish wake-ups of %d of %d runs; the sweeper will re-dispatch them",
            len(pending) + len(singles),
            total,
            exc_info=True,
        )
        _runs_undispatch(run_ids=pending + [run_id for _, run_id in singles])
    return published


def runs_top_up(*, account_id: int) -> int:
    """Publish the account's next held-back runs, up to its in-flight limit; never raises."""
    try:
        run_ids = admission.runs_next_of_account(account_id=account_id)
    except Exception:
        logger.warning("Could not top up account %s; the sweeper will", account_id, exc_info=True)
        return 0
    if not run_ids:
        return 0
    return _runs_publish(free=[], held={account_id: run_ids}, fan_out=False)


def _runs_undispatch(*, run_ids: list[int]) -> None:
    """Leave these pending runs to the sweeper's next round; never raises."""
    try:
        Run.objects.filter(id__in=run_ids, status=RunStatus.PENDING).update(dispatched_at=None)
    except Exception:
        logger.exception("Could not mark runs as undispatched")


def lane_runs() -> int:
    """Runs one message of a held-back account executes at most (see runs_execute)."""
    return _setting("AUTOMATIONS_LANE_RUNS", 50)


def lane_seconds() -> float:
    """Seconds after which such a message takes no further run of its account."""
    return _setting("AUTOMATIONS_LANE_SECONDS", 0.25)


def runs_execute(*, run_ids: list[int], account_id: int | None = None) -> list[RunOutcome]:
    """Execute the runs of one wake-up message in turn.

    When one of them is put back to wait (SuperOffice failing, the account paused), the
    rest are not tried now: each would likely wait out the same timeout in a row. They
    are left to the sweeper, which dispatches them on its next round.

    ``account_id``: the message is of an account with runs held back
    (automations.admission), one of its places in flight. After its own runs the worker
    keeps that place: it claims the account's next held-back runs itself, several in one
    statement (_lane_claim_count), instead of one broker round trip per run, and keeps
    the slot of the tenant's cap its first run took for the next, until the message has executed
    lane_runs() runs or lane_seconds() have gone by. Then it publishes the account's next
    runs (runs_top_up) and the message ends, so the messages of other accounts queued
    meanwhile are taken in their turn: another account's fresh run waits behind at most
    the limit's worth of messages of at most lane_seconds() (or one run) each. Unless
    SuperOffice is failing, when the account's next runs wait for the sweeper.
    """
    from crm.client.slots import SlotHold

    # The runs go one after another: a slot of a tenant's cap taken by one is kept for
    # the next of that tenant, and given back when the message is done.
    hold = SlotHold()
    try:
        return _runs_execute(run_ids=run_ids, account_id=account_id, hold=hold)
    finally:
        hold.release_all()


def _runs_execute(*, run_ids: list[int], account_id: int | None, hold) -> list[RunOutcome]:
    started = time.monotonic()
    outcomes = []
    for index, run_id in enumerate(run_ids):
        outcome = run_execute(run_id=run_id, hold=hold)
        outcomes.append(outcome)
        if outcome.status == RunStatus.PENDING and index + 1 < len(run_ids):
            _runs_undispatch(run_ids=run_ids[index + 1 :])
            break
    if account_id is None:
        return outcomes
    claimed: list[Run] = []
    read_ahead: dict = {}
    try:
        while not (outcomes and outcomes[-1].status == RunStatus.PENDING):
            spent = time.monotonic() - started
            if len(outcomes) >= lane_runs() or spent >= lane_seconds():
                break
            if not claimed:
                claimed = runs_claim_next(
                    account_id=account_id,
                    count=_lane_claim_count(
                        runs_left=lane_runs() - len(outcomes),
                        seconds_left=lane_seconds() - spent,
                        seconds_per_run=spent / max(1, len(outcomes)),
                    ),
                )
                if not claimed:
                    break
                read_ahead = _persons_read_ahead(claimed, hold=hold)
            outcomes.append(_run_perform(claimed.pop(0), hold=hold, read_ahead=read_ahead))
    finally:
        if claimed:
            _runs_unclaim(claimed)
    if not (outcomes and outcomes[-1].status == RunStatus.PENDING):
        runs_top_up(account_id=account_id)
    return outcomes


# Accounts whose SuperOffice refused a read ahead, until when none is tried for them (a
# tenant whose WSDL lacks GetPersonList, say): by account id, time.monotonic().
_read_ahead_refused_until: dict[int, float] = {}
_READ_AHEAD_REFUSED_SECONDS = 600.0


def _persons_read_ahead(runs: list[Run], *, hold) -> dict:
    """The persons of a lane's claimed runs whose actions read a person only for its
    company (automations.actions.persons_to_read_ahead), read in one Person.GetPersonList
    (crm.types.PersonBrief by id) instead of a Person.GetPersonEntity per run.

    A run uses the company as it was when the lane claimed it, up to a few seconds before
    the run acts (lane_seconds()), not at its own call.

    Logged with the correlation ``read-ahead:<first run's key>``. Nothing when fewer than
    two runs want it (one call either way) or the account's CRM work is paused. When the
    call fails, each run reads its own person, as without this: a failing SuperOffice
    then makes the first run wait and ends the lane, a refused configuration pauses the
    account through that run. After any other refusal no read ahead is tried for the
    account for _READ_AHEAD_REFUSED_SECONDS.
    """
    from crm.errors import ConfigurationCrmError, TransientCrmError

    from . import actions

    account_id = runs[0].account_id if runs else None
    try:
        person_ids = actions.persons_to_read_ahead(runs)
        if len(person_ids) < 2:
            return {}
        if _read_ahead_refused_until.get(account_id, 0.0) > time.monotonic():
            return {}
        account = runs[0].account
        paused = _loaded_settings_of(account)
        if paused is not None and paused.crm_paused_at is not None:
            return {}
        from crm.services import client_for_account

        client = client_for_account(
            account,
            correlation=f"read-ahead:{runs[0].key}",
            connection=_loaded_connection_of(account),
        )
        with client.one_slot(hold):
            return client.get_persons(person_ids=person_ids)
    except TransientCrmError as exc:
        logger.info("Persons not read ahead for account %s: %s", account_id, _error_text(exc))
        return {}
    except Exception as exc:  # the runs read their persons one by one, as without this
        if not isinstance(exc, ConfigurationCrmError):
            _read_ahead_refused_until[account_id] = time.monotonic() + _READ_AHEAD_REFUSED_SECONDS
        logger.warning("Persons not read ahead for account %s: %s", account_id, _error_text(exc))
        return {}


def _lane_claim_count(*, runs_left: int, seconds_left: float, seconds_per_run: float) -> int:
    """How many of its account's next runs a lane claims in one statement: as many as
    its time left holds at the pace of its runs so far (so it seldom has to give claimed
    runs back), within its runs left."""
    if seconds_per_run <= 0:
        return 1
    # A little short of what the pace says, so that a run slower than the others seldom
    # leaves the last ones claimed to be given back.
    return max(1, min(runs_left, int(0.9 * seconds_left / seconds_per_run)))


def runs_sweep(*, limit: int = 2000) -> int:
    """Re-dispatch what a lost message left behind. Returns how many runs were dispatched.

    - pending and due, never published or published long ago (broker down, message lost);
    - running with an expired lease (worker killed mid-run);
    - waiting for a match although the contact now has a person (a match that committed
      while the run was being created).
    """
    now = timezone.now()
    stale = now - timedelta(seconds=redispatch_after_seconds())
    paused_accounts = _paused_accounts_not_fixed(now=now)

    resumed = Run.objects.filter(
        status=RunStatus.WAITING_FOR_MATCH, contact__superoffice_person_id__isnull=False
    ).values_list("id", flat=True)[:limit]
    resumed_ids = list(resumed)
    if resumed_ids:
        Run.objects.filter(id__in=resumed_ids, status=RunStatus.WAITING_FOR_MATCH).update(
            status=RunStatus.PENDING, next_attempt_at=now, waiting_since=None
        )

    # Each account's oldest due runs, up to its in-flight limit (automations.admission).
    due = admission.runs_due_per_account(
        base=Run.objects.filter(status=RunStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=stale))
        .exclude(account_id__in=paused_accounts),
        limit=limit,
    )
    expired = list(
        Run.objects.filter(status=RunStatus.RUNNING, lease_expires_at__lt=now)
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=stale))
        .values_list("id", flat=True)[:limit]
    )
    candidates = list(dict.fromkeys([*resumed_ids, *due]))
    admitted = admission.runs_admit(run_ids=candidates)
    free = list(dict.fromkeys([*admitted.free, *expired]))
    run_ids = free + [run_id for ids in admitted.held.values() for run_id in ids]
    if not run_ids:
        return 0
    Run.objects.filter(id__in=run_ids).update(dispatched_at=now)
    return _runs_publish(free=free, held=admitted.held, fan_out=True)


def _paused_accounts_not_fixed(*, now) -> list[int]:
    """Accounts whose CRM work is held. A pause ends early when the admin saved or
    successfully tested the SuperOffice connection after it began."""
    from crm.models import SuperOfficeConnection

    paused = list(
        AutomationSettings.objects.filter(crm_paused_at__isnull=False).select_related("account")
    )
    if not paused:
        return []
    connections = {
        c.account_id: c
        for c in SuperOfficeConnection.objects.filter(account_id__in=[p.account_id for p in paused])
    }
    held = []
    for row in paused:
        conn = connections.get(row.account_id)
        fixed = conn is not None and any(
            when is not None and when > row.crm_paused_at
            for when in (conn.updated_at, conn.last_verified_at)
        )
        if fixed:
            account_crm_resume(account=row.account)
        elif row.crm_paused_until and row.crm_paused_until > now:
            held.append(row.account_id)
    return held


# --- executing a run -----------------------------------------------------------------


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# What executing a run reads besides the run: loaded with the claim, so the run needs no
# other read (the pause lives on the account's settings, the client on its connection).
_CLAIMED_WITH = (
    "account",
    "account__automation_settings",
    "account__superoffice_connection",
    "automation",
    "automation__campaign",
    "event",
    "event__campaign",
    "event__link",
    "event__form",
    "contact",
)


def _claim_by_id(*, run_id, now, lease, worker):
    """The claim of one run: (claimable rows, their new values, the select of the run)."""
    claimable = Run.objects.filter(
        Q(status=RunStatus.PENDING, next_attempt_at__lte=now)
        | Q(status=RunStatus.RUNNING, lease_expires_at__lt=now),
        id=run_id,
    )
    claim = {
        "status": RunStatus.RUNNING,
        "attempts": F("attempts") + 1,
        "lease_expires_at": lease,
        "claimed_by": worker,
        "started_at": now,
    }
    return claimable, claim, Run.objects.select_related(*_CLAIMED_WITH).filter(id=run_id)


def _claim_next_of_account(*, account_id, now, lease, worker, count):
    """The claim of an account's ``count`` oldest held-back runs (PostgreSQL; see
    runs_claim_next)."""
    held = Run.objects.filter(
        account_id=account_id,
        status=RunStatus.PENDING,
        next_attempt_at__lte=now,
        dispatched_at__isnull=True,
    )
    table = connections[held.db].ops.quote_name(Run._meta.db_table)
    pick_sql, pick_params = (
        held.order_by("next_attempt_at", "id").values("id")[:count].query.sql_with_params()
    )
    # "id = ANY(ARRAY(subquery))": the subquery is evaluated once. As "id IN (subquery)"
    # the planner may scan it again for every row, and with SKIP LOCKED each scan returns
    # the next rows, so one claim would take the whole backlog. The conditions are
    # repeated outside, where a row another claimer changed meanwhile is checked again.
    claimable = held.filter(
        # Django's own compiled SQL, its parameters passed apart.
        RawSQL(  # noqa: S611
            f"{table}.id = ANY(ARRAY({pick_sql} FOR UPDATE OF {table} SKIP LOCKED))",
            pick_params,
            output_field=BooleanField(),
        )
    )
    claim = {
        "status": RunStatus.RUNNING,
        "attempts": F("attempts") + 1,
        "lease_expires_at": lease,
        "claimed_by": worker,
        "started_at": now,
        "dispatched_at": now,
    }
    select = Run.objects.select_related(*_CLAIMED_WITH).order_by("next_attempt_at", "id")
    return claimable, claim, select


def run_claim(*, run_id: int) -> Run | None:
    """Take the run with one conditional UPDATE; None when another worker has it or it is
    not due. Holds on SQLite (no FOR UPDATE) and PostgreSQL alike.

    On PostgreSQL the UPDATE and the read of the run with everything it needs are one
    statement (UPDATE ... RETURNING in a WITH); elsewhere they are two.
    """
    now = timezone.now()
    values = {
        "run_id": run_id,
        "now": now,
        "lease": now + timedelta(seconds=lease_seconds()),
        "worker": _worker_name(),
    }
    if connections[Run.objects.db].vendor == "postgresql":
        return _claim_statement(_claim_by_id, values)
    claimable, claim, claimed_run = _claim_by_id(**values)
    if not claimable.update(**claim):
        return None
    return claimed_run.get()


# The most runs one claim of an account's next runs takes.
_MOST_CLAIMED = 32


def runs_claim_next(*, account_id: int, count: int) -> list[Run]:
    """Claim up to ``count`` of the account's oldest due runs that are held back (pending,
    no wake-up out), oldest first, and read each with everything it needs; [] when none
    is left. ``count`` is taken as 1 to _MOST_CLAIMED.

    On PostgreSQL one statement: the UPDATE takes the rows a subquery picks with FOR
    UPDATE SKIP LOCKED, so two workers doing this for one account take different runs
    instead of waiting on each other, and reads them back (RETURNING). Elsewhere the
    oldest few are read and claimed one by one with run_claim's conditional UPDATE, which
    one claimer wins.
    """
    count = min(_MOST_CLAIMED, max(1, count))
    now = timezone.now()
    if connections[Run.objects.db].vendor != "postgresql":
        held = Run.objects.filter(
            account_id=account_id,
            status=RunStatus.PENDING,
            next_attempt_at__lte=now,
            dispatched_at__isnull=True,
        )
        claimed = []
        for run_id in held.order_by("next_attempt_at", "id").values_list("id", flat=True)[
            : count + 2
        ]:
            run = run_claim(run_id=run_id)
            if run is not None:
                claimed.append(run)
                if len(claimed) == count:
                    break
        return claimed
    values = {
        "account_id": account_id,
        "now": now,
        "lease": now + timedelta(seconds=lease_seconds()),
        "worker": _worker_name(),
    }
    return _claim_statement(_claim_next_of_account, {**values, "count": count}, many=True)


def _runs_unclaim(runs: list[Run]) -> None:
    """Give back runs this worker claimed and did not start: pending again, their claim
    not counted as an attempt, no wake-up out (the next top-up or sweep takes them).
    Never raises: a run not given back is taken again when its lease ends."""
    try:
        # One statement: the runs of one claim share its worker and its lease's end,
        # which no later claim of them has.
        for lease in {run.lease_expires_at for run in runs}:
            Run.objects.filter(
                id__in=[run.id for run in runs if run.lease_expires_at == lease],
                status=RunStatus.RUNNING,
                claimed_by=runs[0].claimed_by,
                lease_expires_at=lease,
            ).update(
                status=RunStatus.PENDING,
                attempts=F("attempts") - 1,
                lease_expires_at=None,
                dispatched_at=None,
            )
    except Exception:
        logger.warning("Could not give back %d claimed runs", len(runs), exc_info=True)


# Stand-ins for a claim's values while its statement is compiled: of their own type, and
# values no claim has, so each is found again in the statement's parameters.
_STAND_INS = {
    "run_id": -900_000_000_001,
    "account_id": -900_000_000_002,
    "now": datetime(1901, 2, 3, 4, 5, 6, 1, tzinfo=UTC),
    "lease": datetime(1901, 2, 3, 4, 5, 6, 2, tzinfo=UTC),
    "worker": "\x1fclaimed-by\x1f",
    "count": 900_000_003,
}


def _claim_statement(build, values: dict, *, many: bool = False):
    """Run a PostgreSQL claim statement (see _select_after_update) with these values.

    Compiling the statement costs more than running it: it reads the run with ten
    related rows, and Django builds such a select anew each time (about as much CPU as
    the rest of the run's queries together). So each connection compiles a claim once,
    with stand-ins for the values that change, and runs that SQL again with this claim's
    values in their places. The compiler kept with it turns the rows into the run and its
    related objects as Django's own does.
    """
    connection = connections[Run.objects.db]
    statements = connection.__dict__.setdefault("_automations_claims", {})
    statement = statements.get(build)
    if statement is None:
        stand_ins = {name: _STAND_INS[name] for name in values}
        claimable, claim, select = build(**stand_ins)
        compiler = _compiler_of(_select_after_update(select, update=claimable, values=claim))
        sql, params = compiler.as_sql()
        if "count" in stand_ins:
            sql, params = _limit_as_parameter(sql, params, stand_ins["count"])
        places = [
            next((n for n, v in stand_ins.items() if type(p) is type(v) and p == v), None)
            for p in params
        ]
        if set(places) - {None} != set(stand_ins):
            statement = False  # a value not passed as it was given: compile every time
        else:
            kept: dict = {}
            name = f"automations_{build.__name__.strip('_')}"
            compiler.as_sql = lambda *args, **kwargs: (kept["sql"], kept["params"])
            # The converters of the select's columns (some 90, of ten tables) are the same
            # for every execution; Django works them out anew each time it reads rows.
            compiler.get_converters = _converters_once(compiler.get_converters)
            statement = (compiler, places, params, kept, name, sql)
        statements[build] = statement
    if statement is False:
        claimable, claim, select = build(**values)
        claimed = list(_select_after_update(select, update=claimable, values=claim))
        return claimed if many else next(iter(claimed), None)
    compiler, places, params, kept, name, sql = statement
    if prepared_claims():
        _prepare(connection, name, sql)
        kept["sql"] = f"EXECUTE {name}({', '.join(['%s'] * len(params))})"
    else:
        kept["sql"] = sql
    kept["params"] = tuple(
        p if n is None else values[n] for n, p in zip(places, params, strict=True)
    )
    runs = Run.objects.all()
    runs.query.get_compiler = lambda *args, **kwargs: compiler
    return list(runs) if many else next(iter(runs), None)


def _limit_as_parameter(sql: str, params, count: int) -> tuple[str, tuple]:
    """The statement with its ``LIMIT <count>`` (Django writes a limit into the text) as
    a parameter instead, so one statement, prepared once, serves every number of runs a
    claim takes. Unchanged where the limit is not found exactly once (the values then do
    not all have places, and the claim is compiled every time)."""
    literal = f"LIMIT {count}"
    if sql.count(literal) != 1:
        return sql, params
    before, after = sql.split(literal)
    place = before.count("%s")
    return f"{before}LIMIT %s{after}", (*params[:place], count, *params[place:])


def _converters_once(get_converters):
    """``get_converters``, worked out once for each list of expressions (the kept
    compiler's own, which live as long as it)."""
    kept: dict = {}

    def converters(expressions):
        key = tuple(map(id, expressions))
        found = kept.get(key)
        if found is None:
            found = kept[key] = (get_converters(expressions), expressions)
        return found[0]

    return converters


def prepared_claims() -> bool:
    """Whether claims run as prepared statements (see _prepare)."""
    return _setting("AUTOMATIONS_PREPARED_CLAIMS", True)


# The claims prepared on each database session (a psycopg connection: Django opens a new
# one after closing the old, and the new one has none of the old one's statements).
_prepared_on: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _prepare(connection, name: str, sql: str) -> None:
    """PREPARE the claim on this connection's session, once.

    Planning the claim (an UPDATE and a select of the run joined to ten related tables)
    cost PostgreSQL several times what executing it does (1.8 ms against 0.25 ms, measured
    with EXPLAIN ANALYZE), on every claim, as Django sends each statement as new text. A
    prepared statement is planned for its first few executions and then runs a plan kept
    for the session. Behind a pooler that hands a session's statements to other server
    connections (PgBouncer in transaction mode before 1.21), AUTOMATIONS_PREPARED_CLAIMS
    must be off.
    """
    connection.ensure_connection()
    names = _prepared_on.setdefault(connection.connection, set())
    if name in names:
        return
    numbered = iter(range(1, 10_000))
    # Django's %s placeholders become $1, $2, ...; its %% (a literal %) becomes %, as the
    # PREPARE is sent without parameters and so is not %-formatted.
    body = re.sub(r"%%|%s", lambda m: "%" if m[0] == "%%" else f"${next(numbered)}", sql)
    with connection.cursor() as cursor:
        cursor.execute(f"PREPARE {name} AS {body}")
    names.add(name)


def _compiler_of(queryset: QuerySet):
    return queryset.query.get_compiler(queryset.db)


def _select_after_update(select: QuerySet, *, update: QuerySet, values: dict) -> QuerySet:
    """``select``, run on the rows ``update`` changed, as they are after the change, in one
    PostgreSQL statement: ``WITH changed AS (UPDATE ... RETURNING *) SELECT ... FROM changed``.

    Django has no UPDATE ... RETURNING; the statement is Django's own two, compiled, with
    the select reading the changed rows under the table's name (the main query of a WITH
    does not see the UPDATE's effect on the table itself, only what it returns).
    """
    update_query = update.query.chain(UpdateQuery)
    update_query.add_update_values(values)
    update_sql, update_params = update_query.get_compiler(update.db).as_sql()
    table = connections[update.db].ops.quote_name(select.model._meta.db_table)
    select = select._chain()
    make_compiler = select.query.get_compiler

    def get_compiler(*args, **kwargs):
        compiler = make_compiler(*args, **kwargs)
        select_as_sql = compiler.as_sql

        def as_sql(*args, **kwargs):
            sql, params = select_as_sql(*args, **kwargs)
            from_table = f" FROM {table} "
            if from_table not in sql:
                raise ValueError(f"Unexpected query shape: {sql}")
            sql = sql.replace(from_table, f" FROM changed AS {table} ", 1)
            return (
                f"WITH changed AS ({update_sql} RETURNING {table}.*) {sql}",
                (*update_params, *params),
            )

        compiler.as_sql = as_sql
        return compiler

    # The query's compiler is asked for when the queryset is evaluated; this one writes
    # the combined statement.
    select.query.get_compiler = get_compiler
    return select


def runs_claim_batch(*, limit: int = 100) -> list[Run]:
    """PostgreSQL path for a polling worker: claim due runs without waiting on rows other
    workers are claiming (FOR UPDATE SKIP LOCKED), then mark them running in one UPDATE."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Run.objects.select_for_update(skip_locked=True)
            .filter(status=RunStatus.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("id", flat=True)[:limit]
        )
        if ids:
            Run.objects.filter(id__in=ids).update(
                status=RunStatus.RUNNING,
                attempts=F("attempts") + 1,
                lease_expires_at=now + timedelta(seconds=lease_seconds()),
                claimed_by=_worker_name(),
                started_at=now,
            )
    return list(Run.objects.filter(id__in=ids))


def _claim_guard(run: Run):
    """Rows this worker still owns: same attempt, still running."""
    return Run.objects.filter(
        id=run.id, status=RunStatus.RUNNING, attempts=run.attempts, claimed_by=run.claimed_by
    )


def _record(run: Run, **fields) -> bool:
    # The calls this run made are written with the outcome or before it, outside any
    # transaction: an outcome is never stored without them, and nothing that fails
    # afterwards can take them back.
    from crm.call_log import call_log_flush_with

    fields.setdefault("lease_expires_at", None)
    updated = call_log_flush_with(
        lambda: _claim_guard(run),
        fields,
        statement=_guarded_update_statement(run, fields),
        using=Run.objects.db,
    )
    if not updated:
        logger.warning("Run %s was taken over before its outcome was recorded", run.key)
    return bool(updated)


def _guarded_update_statement(run: Run, fields: dict) -> tuple[str, list] | None:
    """``_claim_guard(run).update(**fields)`` as SQL and parameters, each value prepared
    by its field as Django prepares it, for fields of plain values (None where an
    expression such as F() is among them: Django compiles that one). Django's compiler
    builds the UPDATE and its WHERE anew at every outcome, at more CPU than its execution
    costs this process."""
    connection = connections[Run.objects.db]
    if connection.vendor != "postgresql" or any(
        hasattr(value, "resolve_expression") for value in fields.values()
    ):
        return None  # only PostgreSQL writes the outcome with its calls (crm.call_log)
    names = tuple(fields)
    sql = _outcome_sql.get((connection.alias, names))
    if sql is None:
        quote = connection.ops.quote_name
        columns = ", ".join(f"{quote(_RUN_FIELDS[name].column)} = %s" for name in names)
        sql = _outcome_sql[(connection.alias, names)] = (
            f"UPDATE {quote(Run._meta.db_table)} SET {columns} "  # noqa: S608 - the model's own names
            "WHERE "
            + " AND ".join(
                f"{quote(_RUN_FIELDS[name].column)} = %s" for name in _CLAIM_GUARD_FIELDS
            )
        )
    params = [
        _RUN_FIELDS[name].get_db_prep_save(value, connection) for name, value in fields.items()
    ]
    return sql, [*params, run.id, RunStatus.RUNNING.value, run.attempts, run.claimed_by]


# The columns of _claim_guard, in the order of the parameters above.
_CLAIM_GUARD_FIELDS = ("id", "status", "attempts", "claimed_by")
_RUN_FIELDS = {f.name: f for f in Run._meta.concrete_fields}
_outcome_sql: dict[tuple, str] = {}


def backoff_seconds(*, attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with equal jitter, capped; never sooner than the CRM asked."""
    ceiling = min(retry_cap_seconds(), retry_base_seconds() * (2 ** max(attempt - 1, 0)))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after:
        delay = max(delay, float(retry_after))
    return delay


@dataclass
class RunOutcome:
    status: str
    detail: str = ""


def run_execute(*, run_id: int, hold=None) -> RunOutcome:
    """Claim, act in SuperOffice, record. Safe to call any number of times for one run.
    ``hold``: a crm.client.slots.SlotHold that keeps the slot of the tenant's cap the run
    took, for the caller's next run (the caller gives it back)."""
    run = run_claim(run_id=run_id)
    if run is None:
        return RunOutcome("skipped", "not claimable")
    return _run_perform(run, hold=hold)


def _run_perform(run: Run, *, hold=None, read_ahead=None) -> RunOutcome:
    """Act in SuperOffice for a claimed run and record the outcome. ``read_ahead``: persons
    read with other runs' (_persons_read_ahead)."""
    from crm.errors import (
        ConfigurationCrmError,
        PermanentCrmError,
        TransientCrmError,
    )

    now = timezone.now()

    automation_settings = _loaded_settings_of(run.account)
    paused_until = (
        automation_settings.crm_paused_until
        if automation_settings is not None and automation_settings.crm_paused_at is not None
        else None
    )
    if paused_until is not None and paused_until > now:
        # Hold: the attempt did not happen, so it does not count.
        _record(
            run,
            status=RunStatus.PENDING,
            next_attempt_at=paused_until,
            attempts=F("attempts") - 1,
            dispatched_at=None,
        )
        return RunOutcome(RunStatus.PENDING, "account paused")

    if run.automation.deleted_at is not None:
        _record(
            run, status=RunStatus.CANCELLED, cancel_reason="Automation deleted", finished_at=now
        )
        return RunOutcome(RunStatus.CANCELLED)

    from . import actions

    try:
        from crm.services import client_for_account

        client = client_for_account(
            run.account, correlation=run.key, connection=_loaded_connection_of(run.account)
        )
        # The run's calls follow one another: one slot of the tenant's cap carries them.
        with client.one_slot(hold):
            person_id = actions.person_id_resolve(run=run, client=client)
            result = (
                None
                if person_id is None
                else actions.perform(
                    run=run, client=client, person_id=person_id, read_ahead=read_ahead
                )
            )
        if result is None:
            _record(
                run,
                status=RunStatus.WAITING_FOR_MATCH,
                waiting_since=timezone.now(),
                dispatched_at=None,
            )
            return RunOutcome(RunStatus.WAITING_FOR_MATCH)
    except ConfigurationCrmError as exc:
        paused = account_crm_pause(account=run.account, reason=str(exc) or exc.__class__.__name__)
        paused_until = paused.crm_paused_until or timezone.now()
        _record(
            run,
            status=RunStatus.PENDING,
            next_attempt_at=paused_until,
            attempts=F("attempts") - 1,
            dispatched_at=None,
            last_error=_error_text(exc),
            error_kind=ErrorKind.CONFIGURATION,
        )
        return RunOutcome(RunStatus.PENDING, "configuration")
    except TransientCrmError as exc:
        return _record_transient(run, exc, getattr(exc, "retry_after", None))
    except (PermanentCrmError, actions.UnknownActionError) as exc:
        _record(
            run,
            status=RunStatus.FAILED,
            finished_at=timezone.now(),
            last_error=_error_text(exc),
            error_kind=ErrorKind.PERMANENT,
        )
        return RunOutcome(RunStatus.FAILED, "permanent")
    except Exception as exc:  # a bug or a database hiccup: retry like a transient error
        logger.exception("Run %s raised", run.key)
        return _record_transient(run, exc, None, kind=ErrorKind.INTERNAL)

    if paused_until is not None:
        # A probe run got through after a configuration pause: the admin fixed it.
        account_crm_resume(account=run.account)
    _record(
        run,
        status=RunStatus.DONE,
        finished_at=timezone.now(),
        crm_object_type=result.object_type,
        crm_object_id=result.object_id,
        output=result.output[:20000],
        last_error="",
        error_kind="",
    )
    return RunOutcome(RunStatus.DONE)


def _loaded_settings_of(account) -> AutomationSettings | None:
    """The account's automation settings loaded with the claimed run; None if it has none."""
    try:
        return account.automation_settings
    except AutomationSettings.DoesNotExist:
        return None


def _loaded_connection_of(account):
    """The account's SuperOffice connection loaded with the claimed run, or None."""
    from crm.models import SuperOfficeConnection

    try:
        return account.superoffice_connection
    except SuperOfficeConnection.DoesNotExist:
        return None


def _error_text(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc}"[:2000]


def _record_transient(
    run: Run, exc: BaseException, retry_after, *, kind: str = ErrorKind.TRANSIENT
) -> RunOutcome:
    if run.attempts >= max_attempts():
        _record(
            run,
            status=RunStatus.FAILED,
            finished_at=timezone.now(),
            last_error=_error_text(exc),
            error_kind=kind,
        )
        return RunOutcome(RunStatus.FAILED, "gave up")
    delay = backoff_seconds(attempt=run.attempts, retry_after=retry_after)
    next_at = timezone.now() + timedelta(seconds=delay)
    if _record(
        run,
        status=RunStatus.PENDING,
        next_attempt_at=next_at,
        dispatched_at=None,
        last_error=_error_text(exc),
        error_kind=kind,
    ):
        _schedule_wakeup(run.id, delay)
    return RunOutcome(RunStatus.PENDING, f"retry in {delay:.1f}s")


def _schedule_wakeup(run_id: int, delay: float) -> None:
    """A countdown message makes short retries prompt; long ones are left to the sweeper
    (a Redis countdown longer than the visibility timeout is delivered more than once)."""
    if delay > redispatch_after_seconds() * 10:
        return
    from .tasks import execute_run

    try:
        execute_run.apply_async(
            (run_id,),
            countdown=delay,
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0},
        )
        Run.objects.filter(id=run_id, status=RunStatus.PENDING).update(
            dispatched_at=timezone.now() + timedelta(seconds=delay)
        )
    except Exception:
        logger.warning(
            "Could not schedule the retry of run %s; the sweeper will", run_id, exc_info=True
        )


def run_retry(*, run: Run) -> Run:
    """A failed run, again from the start of its attempts (the page's Retry button)."""
    now = timezone.now()
    updated = Run.objects.filter(id=run.id, status=RunStatus.FAILED).update(
        status=RunStatus.PENDING,
        next_attempt_at=now,
        finished_at=None,
        # Keep one attempt on the count: a failed earlier attempt may have created the
        # object, so the next one looks for the marker first.
        attempts=1 if run.attempts else 0,
        dispatched_at=now,
    )
    if updated:
        logger.info("Run %s retried after %s attempt(s)", run.key, run.attempts)
        transaction.on_commit(lambda: runs_dispatch(run_ids=[run.id]))
    run.refresh_from_db()
    return run


class RunNotRematchable(ValueError):
    """Only a failed run whose contact has a SuperOffice person can be matched again."""


def run_contact_rematch(*, run: Run, person_id: int, by: str) -> Run:
    """A run that failed after a wrong match: its contact is this other SuperOffice person.

    The run stays failed until it is retried (``run_retry``), so the marketer decides when
    it acts again; the contact's other runs use the new person from now on. Raises
    RunNotRematchable when the run is not failed or its contact has no person (then it is
    a match for the queue, not a re-match)."""
    with transaction.atomic():
        locked = (
            Run.objects.select_for_update()
            .select_related("contact")
            .get(id=run.id, account_id=run.account_id)
        )
        previous = locked.contact.superoffice_person_id
        if locked.status != RunStatus.FAILED or previous is None:
            raise RunNotRematchable("Only a failed run of a matched contact can be re-matched")
        if previous != person_id:
            contact_person_set(contact=locked.contact, person_id=person_id)
    # Who moved a contact from one person to another, for the operator reading the logs.
    logger.info(
        "Run %s: contact %s re-matched from person %s to %s by %s",
        run.key,
        locked.contact_id,
        previous,
        person_id,
        by,
    )
    run.refresh_from_db()
    run.contact.refresh_from_db()
    return run


# --- the paused queue ------------------------------------------------------------------


def contact_person_set(*, contact: Contact, person_id: int, hold_seconds: float = 0) -> int:
    """Match a contact to a SuperOffice person and resume all its waiting runs.

    With ``hold_seconds`` the runs are pending but not due until then (the sweeper takes
    them when due), so the match can still be undone. Returns how many runs resumed.
    """
    now = timezone.now()
    with transaction.atomic():
        Contact.objects.filter(pk=contact.pk, account_id=contact.account_id).update(
            superoffice_person_id=person_id, updated_at=now
        )
        contact.superoffice_person_id = person_id
        if hold_seconds <= 0:
            return len(runs_resume_for_contact(contact=contact))
        return Run.objects.filter(
            account_id=contact.account_id,
            contact_id=contact.pk,
            status=RunStatus.WAITING_FOR_MATCH,
        ).update(
            status=RunStatus.PENDING,
            next_attempt_at=now + timedelta(seconds=hold_seconds),
            waiting_since=None,
            dispatched_at=None,
        )


def _held_runs(contact: Contact):
    # Held by a match and not yet acted: pending, never attempted, not yet due.
    return Run.objects.filter(
        account_id=contact.account_id,
        contact_id=contact.pk,
        status=RunStatus.PENDING,
        attempts=0,
        next_attempt_at__gt=timezone.now(),
    )


def contact_match_undo(*, contact: Contact) -> int | None:
    """Take a match back while its runs are held: the contact loses its person and the runs
    wait for a match again. None when a run has already acted (too late to undo)."""
    now = timezone.now()
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(
            pk=contact.pk, account_id=contact.account_id
        )
        if locked.superoffice_person_id is None:
            return None
        held = list(_held_runs(contact).select_for_update().values_list("id", flat=True))
        if not held:
            return None
        Run.objects.filter(id__in=held).update(
            status=RunStatus.WAITING_FOR_MATCH, waiting_since=now, next_attempt_at=now
        )
        Contact.objects.filter(pk=contact.pk).update(superoffice_person_id=None, updated_at=now)
        contact.superoffice_person_id = None
    return len(held)


def contact_match_release(*, contact: Contact) -> int:
    """Let the runs a match holds go now instead of at the end of the undo window."""
    now = timezone.now()
    with transaction.atomic():
        run_ids = list(_held_runs(contact).values_list("id", flat=True))
        Run.objects.filter(id__in=run_ids).update(next_attempt_at=now, dispatched_at=now)
        transaction.on_commit(lambda: runs_dispatch(run_ids=run_ids))
    return len(run_ids)


def runs_resume_for_contact(*, contact: Contact) -> list[int]:
    """Waiting runs of a contact back to pending, dispatched after commit."""
    return runs_resume_for_contacts(account_id=contact.account_id, contact_ids=[contact.pk])


def runs_resume_for_contacts(*, account_id: int, contact_ids: list[int]) -> list[int]:
    """Waiting runs of many contacts (e.g. an import that linked them) back to pending.

    Only contacts that now have a SuperOffice person resume; one query finds them all.
    """
    now = timezone.now()
    run_ids = list(
        Run.objects.filter(
            account_id=account_id,
            contact_id__in=contact_ids,
            contact__superoffice_person_id__isnull=False,
            status=RunStatus.WAITING_FOR_MATCH,
        ).values_list("id", flat=True)
    )
    if run_ids:
        Run.objects.filter(id__in=run_ids, status=RunStatus.WAITING_FOR_MATCH).update(
            status=RunStatus.PENDING, next_attempt_at=now, waiting_since=None, dispatched_at=now
        )
        transaction.on_commit(lambda: runs_dispatch(run_ids=run_ids))
    return run_ids


def runs_dismiss_for_contact(*, contact: Contact, reason: str) -> int:
    """Cancel a contact's waiting runs (the rep decided nobody in SuperOffice is them)."""
    return Run.objects.filter(
        account_id=contact.account_id, contact=contact, status=RunStatus.WAITING_FOR_MATCH
    ).update(
        status=RunStatus.CANCELLED,
        cancel_reason=reason[:300] or "Dismissed",
        finished_at=timezone.now(),
    )


def contact_person_set_automatically(*, contact: Contact, person_id: int) -> None:
    """The auto-match of a worker: set the person unless someone set one meanwhile."""
    try:
        Contact.objects.filter(
            pk=contact.pk, account_id=contact.account_id, superoffice_person_id__isnull=True
        ).update(superoffice_person_id=person_id, updated_at=timezone.now())
    except IntegrityError:
        logger.warning("Could not set person %s on contact %s", person_id, contact.pk)
