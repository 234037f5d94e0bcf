"""Writes of the pushes between sync cycles: both sides agree within seconds, and the
30-minute cycle stays the backstop for whatever a push lost.

SuperOffice → hub. The account's webhook POSTs to the receiver; ``superoffice_event_receive``
checks the signature and stores the delivery once, by its EventId (a redelivery is
acknowledged and ignored), then publishes a wake-up. The payload names only the person,
so the worker reads that person's consents from SuperOffice and decides with the cycle's
rule; out-of-order and repeated deliveries all lead to the same read, and so to the same
state.

Hub → SuperOffice. ``consent_record`` queues the contact in the outbox (``ConsentPush``)
in the same transaction as the change (``consent_push_enqueue``), whoever recorded it:
the consent API, a form, an import, an unsubscribe.

Wake-ups are debounced: a delivery or a push publishes a Celery message only when none is
pending for the account (``ConsentPushLease.wake_requested_at``, set by the row that
publishes, cleared by a drain when it takes the lease and when it lets it go, each time
before it reads the rows). A burst of deliveries costs one message and one drain; a row
that commits while a drain runs is read by that drain's next batch or by its check after
the release.

One worker at a time per account drains both (``consent_pushes_drain``, holding the
account's ``ConsentPushLease``): the contacts behind the pending deliveries and pushes are
each read and decided once, through the same code as the cycle (``_sync_contact``), so
many deliveries for one person cost one read. As in the run ledger (DESIGN, "Reliability")
the rows are the queue: a Celery message only wakes a worker, SuperOffice is called
outside any transaction, a failure puts the rows back with the automations' backoff, a
configuration error pauses the account's CRM work as it pauses runs, and a sweeper
wakes accounts whose message was lost or whose worker died.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from campaigns.models import Contact
from crm.errors import ConfigurationCrmError, TransientCrmError
from crm.selectors import connection_for
from crm.services import client_for_account
from crm.webhooks import BadDelivery, webhook_delivery_parse, webhook_signature_valid
from emhub.models import Account

from .models import (
    ConsentDecision,
    ConsentPush,
    ConsentPushLease,
    PushStatus,
    SuperOfficeEvent,
    SuperOfficeWebhook,
)
from .selectors import consent_sync_enabled
from .superoffice import ConsentPort

logger = logging.getLogger(__name__)


def _setting(name: str, default):
    return getattr(settings, name, default)


def push_lease_seconds() -> float:
    return _setting("CONSENT_PUSH_LEASE_SECONDS", 60.0)


def push_drain_seconds() -> float:
    # One message drains this long, then hands over to a fresh message.
    return _setting("CONSENT_PUSH_DRAIN_SECONDS", 50.0)


def push_redispatch_seconds() -> float:
    # A row due this long without a worker on it is woken again by the sweeper.
    return _setting("CONSENT_PUSH_REDISPATCH_SECONDS", 20.0)


def push_wake_stale_seconds() -> float:
    # A wake-up no drain has answered in this long is taken as lost (its message went
    # missing, or a drain of another account's backlog holds the worker): the next row
    # publishes again rather than wait for the sweeper.
    return _setting("CONSENT_PUSH_WAKE_STALE_SECONDS", 5.0)


BATCH_SIZE = 200
# A delivery body is a few hundred bytes; anything this large is not SuperOffice's.
MAX_BODY_BYTES = 256 * 1024


# -- the lease: one drain per account at a time ------------------------------------------


def push_lease_acquire(*, account_id: int) -> str | None:
    holder = uuid.uuid4().hex

    def take() -> int:
        now = timezone.now()
        return (
            ConsentPushLease.objects.filter(account_id=account_id)
            .filter(Q(holder="") | Q(expires_at__isnull=True) | Q(expires_at__lt=now))
            .update(
                holder=holder,
                expires_at=now + timedelta(seconds=push_lease_seconds()),
                # This drain reads the rows next: whatever committed before is its to take.
                wake_requested_at=None,
            )
        )

    # The row is there once the account had a push or a delivery: one statement then.
    taken = take()
    if not taken and not ConsentPushLease.objects.filter(account_id=account_id).exists():
        ConsentPushLease.objects.get_or_create(account_id=account_id)
        taken = take()
    return holder if taken else None


def push_lease_renew(*, account_id: int, holder: str) -> bool:
    return bool(
        ConsentPushLease.objects.filter(account_id=account_id, holder=holder).update(
            expires_at=timezone.now() + timedelta(seconds=push_lease_seconds())
        )
    )


def push_lease_release(*, account_id: int, holder: str) -> None:
    # The drain checks for due rows after this: a row that committed before is seen
    # then, and one that commits after finds no wake-up pending and publishes its own.
    ConsentPushLease.objects.filter(account_id=account_id, holder=holder).update(
        holder="", expires_at=None, wake_requested_at=None
    )


# -- wake-ups ---------------------------------------------------------------------------

_PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}


def consent_pushes_publish(*, account_id: int, countdown: float | None = None) -> bool:
    """Publish a wake-up for the account's drain now; never raises (a lost wake-up is the
    sweeper's to repeat)."""
    from .tasks import drain_pushes

    try:
        drain_pushes.apply_async(
            (account_id,), countdown=countdown, retry=True, retry_policy=_PUBLISH_RETRY
        )
    except Exception:
        logger.warning(
            "Could not publish the consent push wake-up of account %s; the sweeper will",
            account_id,
            exc_info=True,
        )
        return False
    return True


# Marks the account's wake-up as pending unless one is (and is not stale); a row comes
# back only when this call marked it, so only then is a message published. The lease row
# is made here when the account never had one. One statement on PostgreSQL and SQLite.
_WAKE_SQL = """
INSERT INTO {table} (account_id, holder, expires_at, wake_requested_at)
VALUES (%s, '', NULL, %s)
ON CONFLICT (account_id) DO UPDATE SET wake_requested_at = excluded.wake_requested_at
WHERE {table}.wake_requested_at IS NULL OR {table}.wake_requested_at < %s
RETURNING account_id
"""


def consent_pushes_wake_now(*, account_id: int) -> bool:
    """Wake the account's drain for rows that have committed, unless a wake-up is pending
    already: then the drain it wakes, or the one running, reads these rows too (see the
    module's docstring). Returns whether a message was published."""
    now = timezone.now()
    stale = now - timedelta(seconds=push_wake_stale_seconds())
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            _WAKE_SQL.format(table=ConsentPushLease._meta.db_table),
            [account_id, adapt(now), adapt(stale)],
        )
        marked = cursor.fetchone() is not None
    if not marked:
        return False
    if consent_pushes_publish(account_id=account_id):
        return True
    # No message went out: let the next row try rather than wait for the mark to go stale.
    ConsentPushLease.objects.filter(account_id=account_id, wake_requested_at=now).update(
        wake_requested_at=None
    )
    return False


def consent_pushes_wake(*, account_id: int) -> None:
    """A wake-up once the caller's transaction has committed (the rows are there)."""
    transaction.on_commit(lambda: consent_pushes_wake_now(account_id=account_id))


# -- SuperOffice → hub: the receiver ------------------------------------------------------


@dataclass(frozen=True)
class Received:
    status: int
    message: str


def _count_refusal(hook: SuperOfficeWebhook) -> None:
    SuperOfficeWebhook.objects.filter(pk=hook.pk).update(
        refused=F("refused") + 1, last_refused_at=timezone.now()
    )


def superoffice_event_receive(*, token: str, body: bytes, signature: str | None) -> Received:
    """One POST to the account's receiver address: verified, stored once, acknowledged.

    It costs a read of the webhook's row, the delivery's insert and the wake-up's mark;
    the webhook's figures (deliveries, last delivery) are the drain's to write, once per
    batch, and a burst publishes one wake-up (``consent_pushes_wake_now``).

    404 for an address no account has; 410 Gone for one whose webhook the hub removed
    (SuperOffice disables a webhook on 410, docs/en/automation/webhook/reference/
    state-events.md); 401 without a valid signature; 400 for a body that is not a
    delivery; 200 otherwise (a test event, a redelivery, an event the hub does not use)."""
    hook = (
        SuperOfficeWebhook.objects.filter(token=token)
        .only("account_id", "secret", "state", "events")
        .first()
    )
    if hook is None:
        return Received(404, "No such receiver.")
    if not hook.is_receiving and hook.state not in (
        SuperOfficeWebhook.State.DISABLED,
        SuperOfficeWebhook.State.STOPPED,
    ):
        return Received(410, "This webhook was removed.")
    if len(body) > MAX_BODY_BYTES:
        return Received(413, "Too large for a delivery.")
    if not webhook_signature_valid(secret=hook.secret, body=body, signature=signature):
        _count_refusal(hook)
        return Received(401, "Missing or wrong X-SuperOffice-Signature.")
    try:
        delivery = webhook_delivery_parse(body)
    except BadDelivery as exc:
        return Received(400, str(exc))
    if delivery.is_test:
        return Received(200, "Test event received.")
    if delivery.entity != "person" or delivery.event not in hook.events:
        return Received(200, "Not an event the hub uses.")
    now = timezone.now()
    row = SuperOfficeEvent(
        account_id=hook.account_id,
        event_id=delivery.event_id,
        event=delivery.event,
        person_id=delivery.primary_key,
        occurred_at=delivery.occurred_at,
        received_at=now,
        payload=delivery.payload,
        next_attempt_at=now,
    )
    try:
        if connection.in_atomic_block:
            with transaction.atomic():
                row.save(force_insert=True)
        else:
            # Autocommit: the insert alone, nothing to roll back when the EventId is known.
            row.save(force_insert=True)
    except IntegrityError:
        return Received(200, "Already received.")
    consent_pushes_wake_now(account_id=hook.account_id)
    return Received(200, "Received.")


# -- hub → SuperOffice: the outbox -----------------------------------------------------------


def consent_push_enqueue(*, account: Account, contact_ids, change=None, linked=False) -> int:
    """Queue the contacts' changed legal basis for SuperOffice, in the caller's transaction.

    Only when the admin has legal-basis sync on, and only for contacts linked to a
    SuperOffice person (the others have nobody to write to; ``linked`` when the caller
    holds the contacts' rows and knows they are). A contact already waiting keeps its one
    pending row: the worker decides on the hub's state when it gets there. Returns how
    many contacts were considered."""
    ids = list({int(i) for i in contact_ids})
    if not ids or not consent_sync_enabled(account=account):
        return 0
    linked = (
        ids
        if linked
        else list(
            Contact.objects.filter(
                account=account, pk__in=ids, superoffice_person_id__isnull=False
            ).values_list("pk", flat=True)
        )
    )
    if not linked:
        return 0
    now = timezone.now()
    ConsentPush.objects.bulk_create(
        [
            ConsentPush(
                account=account,
                contact_id=contact_id,
                change=change if len(linked) == 1 else None,
                created_at=now,
                next_attempt_at=now,
            )
            for contact_id in linked
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )
    consent_pushes_wake(account_id=account.pk)
    return len(linked)


# -- the drain ------------------------------------------------------------------------------


@dataclass
class DrainResult:
    contacts: int = 0
    events: int = 0
    pushes: int = 0
    stopped: str = ""


@dataclass
class _Work:
    contact: Contact
    events: list[SuperOfficeEvent] = field(default_factory=list)
    pushes: list[ConsentPush] = field(default_factory=list)

    def scope(self, account: Account):
        from .services import SyncScope

        if self.events:
            names = sorted({e.event for e in self.events})
            people = sorted({e.person_id for e in self.events})
            count = len(self.events)
            note = (
                f"SuperOffice reported {', '.join(names)} for person "
                f"{', '.join(map(str, people))}"
                f"{f' ({count} deliveries)' if count > 1 else ''}; its consents were read "
                "again. "
            )
            if self.pushes:
                note += "The hub's own change was waiting too. "
            return SyncScope(account, None, ConsentDecision.Trigger.SUPEROFFICE_PUSH, note)
        return SyncScope(
            account,
            None,
            ConsentDecision.Trigger.HUB_PUSH,
            "The hub's change, pushed at once. ",
        )


def _contacts_of_persons(*, account: Account, person_ids: list[int]) -> dict[int, list[Contact]]:
    """The contacts a change on these persons concerns, as the cycle finds them: those
    linked to the person, and those whose email the person shares and for which an
    earlier decision counted it (the oldest person sharing an email counts)."""
    if not person_ids:
        return {}
    counted = set(
        ConsentDecision.objects.filter(account=account, superoffice_person_id__in=person_ids)
        .values_list("superoffice_person_id", "contact_id")
        .distinct()
    )
    contacts = Contact.objects.filter(account=account).filter(
        Q(superoffice_person_id__in=person_ids) | Q(pk__in={c for _, c in counted})
    )
    found: dict[int, list[Contact]] = {}
    for contact in contacts.order_by("pk"):
        persons = {p for p, c in counted if c == contact.pk}
        if contact.superoffice_person_id in person_ids:
            persons.add(contact.superoffice_person_id)
        for person_id in persons:
            found.setdefault(person_id, []).append(contact)
    return found


def _due(model, *, account_id: int, now):
    return model.objects.filter(
        account_id=account_id, status=PushStatus.PENDING, next_attempt_at__lte=now
    )


def _count_deliveries(events, finished: int) -> None:
    """The webhook's figures for the connection page, written as deliveries leave the
    queue (the receiver writes the delivery alone): once per batch, not per POST."""
    if not finished:
        return
    last = max(e.received_at for e in events)
    SuperOfficeWebhook.objects.filter(account_id=events[0].account_id).update(
        deliveries=F("deliveries") + finished,
        last_delivery_at=Greatest(Coalesce(F("last_delivery_at"), last), last),
    )


def _finish_rows(events, pushes, *, note: str = "") -> None:
    now = timezone.now()
    if events:
        finished = SuperOfficeEvent.objects.filter(
            pk__in=[e.pk for e in events], status=PushStatus.PENDING
        ).update(status=PushStatus.DONE, processed_at=now, note=note[:2000])
        _count_deliveries(events, finished)
    if pushes:
        ConsentPush.objects.filter(pk__in=[p.pk for p in pushes]).update(
            status=PushStatus.DONE, finished_at=now, last_error=""
        )


def _retry_rows(events, pushes, exc: Exception) -> float | None:
    """Back to waiting after a failure of SuperOffice: later, with the automations'
    backoff, or failed once the attempts are used up (the next cycle still catches the
    change). Returns the earliest retry delay."""
    from automations.services import backoff_seconds, max_attempts

    retry_after = getattr(exc, "retry_after", None)
    error = f"{exc.__class__.__name__}: {exc}"[:2000]
    now = timezone.now()
    soonest: float | None = None
    given_up: list[SuperOfficeEvent] = []
    for model, rows in ((SuperOfficeEvent, events), (ConsentPush, pushes)):
        for row in rows:
            attempts = row.attempts + 1
            fields = {"attempts": attempts}
            if attempts >= max_attempts():
                fields["status"] = PushStatus.FAILED
                if model is SuperOfficeEvent:
                    fields |= {"processed_at": now, "note": f"Gave up: {error}"}
                else:
                    fields |= {"finished_at": now, "last_error": error}
            else:
                delay = backoff_seconds(attempt=attempts, retry_after=retry_after)
                soonest = delay if soonest is None else min(soonest, delay)
                fields["next_attempt_at"] = now + timedelta(seconds=delay)
                if model is ConsentPush:
                    fields["last_error"] = error
                else:
                    fields["note"] = f"Waiting to try again: {error}"
            updated = model.objects.filter(pk=row.pk, status=PushStatus.PENDING).update(**fields)
            if updated and model is SuperOfficeEvent and attempts >= max_attempts():
                given_up.append(row)
    _count_deliveries(given_up, len(given_up))
    return soonest


def _flush_decisions(figures) -> None:
    if figures.pending_decisions:
        ConsentDecision.objects.bulk_create(figures.pending_decisions, batch_size=500)
        figures.pending_decisions.clear()


# A delivery the hub's own write raised comes back within seconds; this much clock skew
# between the hub and SuperOffice is allowed when matching the two.
ECHO_WINDOW = timedelta(minutes=2)


def _echoes(*, account: Account, client, events: list[SuperOfficeEvent]) -> set[int]:
    """The deliveries that only report the hub's own writes: made by the user the hub
    signs in as (ChangedByAssociateId), on a person the hub wrote a consent of at about
    that time. Reading those persons again would only find what the hub wrote. (A person
    working in SuperOffice under the hub's own user, on that person, in that minute, is
    left to the next cycle.)"""
    candidates = [
        e
        for e in events
        if e.occurred_at is not None and e.event in ("person.consented", "person.unconsented")
    ]
    if not candidates:
        return set()
    hub_associate = client.whoami().associate_id
    candidates = [
        e for e in candidates if (e.payload or {}).get("ChangedByAssociateId") == hub_associate
    ]
    if not hub_associate or not candidates:
        return set()
    earliest = min(e.occurred_at for e in candidates) - ECHO_WINDOW
    written: dict[int, list] = {}
    for person_id, decided_at in ConsentDecision.objects.filter(
        account=account,
        superoffice_person_id__in={e.person_id for e in candidates},
        action=ConsentDecision.Action.WRITE_SUPEROFFICE,
        outcome=ConsentDecision.Outcome.DONE,
        decided_at__gte=earliest,
    ).values_list("superoffice_person_id", "decided_at"):
        written.setdefault(person_id, []).append(decided_at)
    return {
        e.pk
        for e in candidates
        if any(abs(at - e.occurred_at) <= ECHO_WINDOW for at in written.get(e.person_id, ()))
    }


def push_threads() -> int:
    # As many contacts at once as the account may have SuperOffice calls in flight.
    return int(
        _setting("CONSENT_PUSH_THREADS", _setting("CRM_MAX_CONCURRENT_CALLS_PER_ACCOUNT", 4))
    )


def push_contacts_per_thread() -> int:
    # A thread costs a database connection of its own (opened and closed per batch, some
    # milliseconds of CPU): worth it only for this many contacts or more. A drain that keeps
    # up with a steady trickle has a few contacts a batch and syncs them in its own thread;
    # behind a slow SuperOffice the rows pile up while it waits, and the next batch is
    # large enough for threads again.
    return max(1, int(_setting("CONSENT_PUSH_CONTACTS_PER_THREAD", 4)))


def _sync_work(
    *,
    account: Account,
    holder: str,
    work: dict[int, _Work],
    result: DrainResult,
    client=None,
    superoffice_connection=None,
) -> tuple[set[int], Exception | None]:
    """Sync each contact of the batch once; returns the contacts done and what stopped
    the rest (SuperOffice failing, or an error of the hub's own).

    The contacts are independent, so a large batch is synced side by side, each thread
    with its own client and database connection, up to ``push_threads()`` threads of at
    least ``push_contacts_per_thread()`` contacts each; a small one (and any inside a
    transaction, the caller's, whose rows another connection would not see) one after
    the other, with ``client`` when the caller has one. ``superoffice_connection`` is the
    account's connection row when the caller has read it (no query per thread)."""
    from django.db import connection, connections

    from .services import CycleAborted, _Figures, _hub_states, _sync_contact

    states = _hub_states(account.pk, list(work))
    pending: queue.SimpleQueue[_Work] = queue.SimpleQueue()
    for item in work.values():
        pending.put(item)
    done: set[int] = set()
    failures: list[Exception] = []
    lock = threading.Lock()

    def run(own_connection: bool) -> None:
        try:
            port = ConsentPort(
                client
                if client is not None and not own_connection
                else client_for_account(
                    account,
                    correlation=f"consent-push-{holder[:12]}",
                    connection=superoffice_connection,
                )
            )
            while not failures:
                try:
                    item = pending.get_nowait()
                except queue.Empty:
                    return
                figures = _Figures()
                try:
                    _sync_contact(
                        scope=item.scope(account),
                        port=port,
                        contact=item.contact,
                        hub_states=states,
                        figures=figures,
                    )
                finally:
                    _flush_decisions(figures)
                with lock:
                    done.add(item.contact.pk)
        except CycleAborted as exc:
            failures.append(exc.__cause__ or exc)
        except (TransientCrmError, ConfigurationCrmError) as exc:
            failures.append(exc)
        except Exception as exc:
            logger.exception("Consent pushes of account %s failed", account.pk)
            failures.append(exc)
        finally:
            if own_connection:
                connections.close_all()

    count = min(push_threads(), len(work) // push_contacts_per_thread())
    if count <= 1 or connection.in_atomic_block:
        run(own_connection=False)
    else:
        threads = [
            threading.Thread(target=run, args=(True,), name=f"consent-push-{i}")
            for i in range(count)
        ]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(push_lease_seconds() / 3)
            if any(t.is_alive() for t in threads) and not push_lease_renew(
                account_id=account.pk, holder=holder
            ):
                result.stopped = "lease lost"
                failures.append(RuntimeError("The push lease was lost"))
    # A configuration error outweighs a transient one: it pauses the account.
    failure = next((f for f in failures if isinstance(f, ConfigurationCrmError)), None)
    return done, failure or (failures[0] if failures else None)


def _drain_batch(*, account: Account, holder: str, result: DrainResult, renew: bool = True) -> bool:
    """Decide once for every contact behind the due rows. True when the batch was full
    (more may wait); False when it took what was due, or stopped (held, or SuperOffice
    failing). ``renew=False`` right after the lease was taken."""
    from automations.selectors import crm_paused_until
    from automations.services import account_crm_pause, account_crm_resume

    now = timezone.now()
    # The rows first: a drain's last look finds none and costs no more than these two.
    events = list(
        _due(SuperOfficeEvent, account_id=account.pk, now=now).order_by("id")[:BATCH_SIZE]
    )
    pushes = list(
        _due(ConsentPush, account_id=account.pk, now=now)
        .select_related("contact")
        .order_by("id")[:BATCH_SIZE]
    )
    if not events and not pushes:
        return False
    # One read of the connection row answers both whether sync is on and whether the CRM
    # is usable, and builds the clients below.
    superoffice_connection = connection_for(account=account)
    if superoffice_connection is None or not superoffice_connection.legal_basis_sync_enabled:
        # Sync was turned off: what waited is not written anywhere.
        _finish_rows(events, pushes, note="Legal-basis sync is off: not applied.")
        return len(events) == BATCH_SIZE or len(pushes) == BATCH_SIZE
    paused = crm_paused_until(account_id=account.pk)
    if (paused is not None and paused > now) or superoffice_connection.config_error:
        # The account's CRM work is held (SuperOffice refused its configuration): the
        # rows stay due and the sweeper wakes the account when the hold ends.
        result.stopped = "paused"
        return False
    if renew and not push_lease_renew(account_id=account.pk, holder=holder):
        result.stopped = "lease lost"
        return False

    early_failure: Exception | None = None
    client = None
    try:
        client = client_for_account(
            account,
            correlation=f"consent-push-{holder[:12]}",
            connection=superoffice_connection,
        )
        echoes = _echoes(account=account, client=client, events=events)
    except (TransientCrmError, ConfigurationCrmError) as exc:
        echoes, early_failure = set(), exc
    _finish_rows(
        [e for e in events if e.pk in echoes],
        [],
        note="The hub's own write to SuperOffice coming back: nothing new to read.",
    )
    events = [e for e in events if e.pk not in echoes]
    result.events += len(echoes)

    by_person = _contacts_of_persons(
        account=account, person_ids=sorted({e.person_id for e in events})
    )
    work: dict[int, _Work] = {}
    orphans = []
    for event in events:
        contacts = by_person.get(event.person_id, [])
        if not contacts:
            orphans.append(event)
        for contact in contacts:
            work.setdefault(contact.pk, _Work(contact)).events.append(event)
    for push in pushes:
        work.setdefault(push.contact_id, _Work(push.contact)).pushes.append(push)
    _finish_rows(orphans, [], note="No contact of the hub is linked to this person.")

    if early_failure is None:
        done, failure = _sync_work(
            account=account,
            holder=holder,
            work=work,
            result=result,
            client=client,
            superoffice_connection=superoffice_connection,
        )
    else:
        done, failure = set(), early_failure

    finished_events = [
        e
        for e in events
        if e not in orphans and all(c.pk in done for c in by_person.get(e.person_id, []))
    ]
    finished_pushes = [p for p in pushes if p.contact_id in done]
    _finish_rows(finished_events, finished_pushes, note="Read again and decided.")
    result.contacts += len(done)
    result.events += len(finished_events) + len(orphans)
    result.pushes += len(finished_pushes)
    if failure is None:
        if paused is not None and done:
            # A pause had run out and this batch got through: SuperOffice takes the
            # account's configuration again, so its held runs resume too.
            account_crm_resume(account=account)
        full = len(events) + len(echoes) == BATCH_SIZE or len(pushes) == BATCH_SIZE
        return full and not result.stopped
    rest_events = [e for e in events if e not in finished_events and e not in orphans]
    rest_pushes = [p for p in pushes if p not in finished_pushes]
    if isinstance(failure, ConfigurationCrmError):
        # As for runs: the account's CRM work waits until the admin fixes the connection
        # or the pause ends; these attempts do not count.
        account_crm_pause(account=account, reason=str(failure) or "Configuration error")
        result.stopped = f"paused: {failure}"
        return False
    soonest = _retry_rows(rest_events, rest_pushes, failure)
    result.stopped = f"SuperOffice failed: {failure}"
    logger.warning("Consent pushes of account %s wait: %s", account.pk, failure)
    if soonest is not None and soonest <= push_redispatch_seconds() * 3:
        consent_pushes_publish(account_id=account.pk, countdown=soonest)
    return False


def consent_pushes_drain(*, account_id: int) -> DrainResult | None:
    """Drain the account's due deliveries and pushes. None when the account is gone or
    another worker drains it now (that worker picks up whatever this wake-up was for)."""
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        return None
    holder = push_lease_acquire(account_id=account_id)
    if holder is None:
        return None
    result = DrainResult()
    deadline = time.monotonic() + push_drain_seconds()
    while True:
        try:
            renew = False
            while _drain_batch(account=account, holder=holder, result=result, renew=renew):
                renew = True
                if time.monotonic() > deadline:
                    break
        finally:
            push_lease_release(account_id=account_id, holder=holder)
        if result.stopped or not _has_due(account_id=account_id):
            return result
        # Rows that committed while this drain held the lease found a wake-up pending
        # (this one): they are taken now, after the release, so none is left behind.
        if time.monotonic() > deadline:
            # Hand over to a fresh message rather than hold one task for ever.
            consent_pushes_publish(account_id=account_id)
            result.stopped = "handed over"
            return result
        holder = push_lease_acquire(account_id=account_id)
        if holder is None:
            # Another drain took the lease, and with it these rows.
            return result


def _has_due(*, account_id: int) -> bool:
    now = timezone.now()
    return (
        _due(SuperOfficeEvent, account_id=account_id, now=now).exists()
        or _due(ConsentPush, account_id=account_id, now=now).exists()
    )


# -- the sweeper ---------------------------------------------------------------------------


def consent_pushes_sweep() -> int:
    """Wake the accounts with pushes due for a while and nobody draining them (a lost
    message, a killed worker, a retry that is due). Returns how many were woken."""
    from automations.models import AutomationSettings

    now = timezone.now()
    stale = now - timedelta(seconds=push_redispatch_seconds())
    accounts: set[int] = set()
    for model in (SuperOfficeEvent, ConsentPush):
        accounts |= set(
            model.objects.filter(status=PushStatus.PENDING, next_attempt_at__lte=stale)
            .values_list("account_id", flat=True)
            .distinct()[:1000]
        )
    if not accounts:
        return 0
    busy = set(
        ConsentPushLease.objects.filter(account_id__in=accounts, expires_at__gt=now)
        .exclude(holder="")
        .values_list("account_id", flat=True)
    )
    held = set(
        AutomationSettings.objects.filter(
            account_id__in=accounts, crm_paused_at__isnull=False, crm_paused_until__gt=now
        ).values_list("account_id", flat=True)
    )
    woken = 0
    for account_id in sorted(accounts - busy - held):
        woken += consent_pushes_publish(account_id=account_id)
    return woken


def consent_pushes_prune(*, keep_days: int | None = None) -> int:
    """Forget deliveries and pushes finished more than ``keep_days`` ago (the decisions
    keep what they led to). SuperOffice repeats a delivery within seconds, so an EventId
    need not be remembered for long to be received once. Returns how many rows went."""
    days = keep_days if keep_days is not None else int(_setting("CONSENT_PUSH_KEEP_DAYS", 30))
    before = timezone.now() - timedelta(days=days)
    finished = [PushStatus.DONE, PushStatus.FAILED]
    events, _ = SuperOfficeEvent.objects.filter(
        status__in=finished, processed_at__lt=before
    ).delete()
    pushes, _ = ConsentPush.objects.filter(status__in=finished, finished_at__lt=before).delete()
    return events + pushes
