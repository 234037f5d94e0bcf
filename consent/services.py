"""Writes of the consent app: recording a change, and the sync engine.

The sync engine compares, per contact linked to a SuperOffice person and per
purpose, the hub's latest change with SuperOffice's (see `rules.py`) and updates
the side that is behind. Writes to SuperOffice happen first and outside any
database transaction; the hub-side writes for one contact then commit in their
own small transaction, so an outage in the middle of a cycle leaves every contact
either fully handled or untouched, and the next cycle picks up the rest.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from campaigns.models import Contact
from crm.call_log import call_log_flush
from crm.errors import ConfigurationCrmError, NotFoundCrmError, PermanentCrmError, TransientCrmError
from crm.models import CrmCall
from crm.selectors import crm_ready
from crm.services import client_for_account
from crm.types import ConsentChangeRow
from emhub.models import Account

from .models import (
    ConsentChange,
    ConsentDecision,
    ConsentSyncCycle,
    ConsentSyncLease,
    CurrentConsent,
    Origin,
    Purpose,
)
from .rules import (
    WITHDRAWN,
    Action,
    ConsentState,
    Decision,
    PersonConsent,
    counting_person,
    decide_for_contact,
)
from .selectors import consent_sync_enabled, consent_sync_last_watermark
from .superoffice import ConsentPort

logger = logging.getLogger(__name__)

# Changes are read from (last watermark - overlap): covers clock skew between the hub
# and SuperOffice, and changes committed while the last cycle read. SuperOffice's side
# is listed to the day (consentPerson/updatedDate is a date): the client widens the
# window to whole days, and _changes_not_yet_seen drops what earlier cycles took.
WATERMARK_OVERLAP = timedelta(minutes=10)
# A cycle renews its lease after every batch; a worker that dies lets it expire.
LEASE_TTL = timedelta(minutes=10)
LEASE_RENEW_SECONDS = 60
BATCH_SIZE = 200

LEGAL_BASIS_MAX = 40
# The source of a withdrawal the hub inferred from a consent gone from SuperOffice.
REMOVED_SOURCE = "REMOVED"
PURPOSES = frozenset(Purpose.values)


def _normalise_legal_basis(value: str) -> str:
    return (value or "").strip().upper()


# -- recording a change ---------------------------------------------------------


def _is_newer(*, new_at: datetime, new_basis: str, cur_at: datetime, cur_basis: str) -> bool:
    """Whether a change replaces the current one. An older change that arrives late
    goes to the history only; at equal times a withdrawal wins, as in the sync rule."""
    if new_at != cur_at:
        return new_at > cur_at
    return new_basis == WITHDRAWN or cur_basis != WITHDRAWN


def consent_record(
    *,
    account: Account,
    contact: Contact,
    purpose: str,
    legal_basis: str,
    source: str = "",
    changed_at: datetime | None = None,
    origin: str = Origin.HUB,
    reason: str = "",
    superoffice_person_id: int | None = None,
    cycle: ConsentSyncCycle | None = None,
    push: bool = True,
) -> ConsentChange:
    """Record a consent or a withdrawal: the one entry point of every recorder (the
    consent API, a form's consent box, an import, an unsubscribe link).

    Appends the change to the contact's history and moves its current state when the
    change is the newest. A newest change made on the hub's side (any origin but
    SuperOffice) of a contact linked to a SuperOffice person is queued, in the same
    transaction, to be written to SuperOffice within seconds while legal-basis sync is
    on (see ``push``); ``push=False`` leaves that to the caller (a bulk merge queues
    once for all). Raises ValidationError with field messages on bad input."""
    errors: dict[str, list[str]] = {}
    if contact.account_id != account.pk:
        # Never write across accounts, whatever the caller passed.
        errors["contact"] = ["This contact belongs to another account."]
    if purpose not in Purpose.values:
        errors["purpose"] = [f"Choose one of {', '.join(Purpose.values)}."]
    legal_basis = _normalise_legal_basis(legal_basis)
    if not legal_basis:
        errors["legal_basis"] = ["Give a legal-basis key such as 61A, 61F or WITHDRAWN."]
    elif len(legal_basis) > LEGAL_BASIS_MAX:
        errors["legal_basis"] = [f"At most {LEGAL_BASIS_MAX} characters."]
    if origin not in Origin.values:
        errors["origin"] = [f"Choose one of {', '.join(Origin.values)}."]
    if changed_at is not None and timezone.is_naive(changed_at):
        errors["changed_at"] = ["Give a time zone with the time."]
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    changed_at = changed_at or now

    with transaction.atomic():
        # Serialise changes per contact, so two writers cannot both believe they are newest;
        # the locked row tells whether the contact is linked to a SuperOffice person now.
        person_id = (
            Contact.objects.select_for_update()
            .filter(pk=contact.pk)
            .values_list("superoffice_person_id", flat=True)
            .first()
        )
        change = ConsentChange.objects.create(
            account=account,
            contact=contact,
            purpose=purpose,
            legal_basis=legal_basis,
            source=(source or "")[:60],
            changed_at=changed_at,
            recorded_at=now,
            origin=origin,
            reason=reason,
            superoffice_person_id=superoffice_person_id,
            cycle=cycle,
        )
        current = CurrentConsent.objects.filter(contact=contact, purpose=purpose).first()
        fields = {
            "change": change,
            "legal_basis": change.legal_basis,
            "source": change.source,
            "changed_at": change.changed_at,
            "origin": change.origin,
            "updated_at": now,
        }
        moved = True
        if current is None:
            CurrentConsent.objects.create(
                account=account, contact=contact, purpose=purpose, **fields
            )
        elif _is_newer(
            new_at=changed_at,
            new_basis=legal_basis,
            cur_at=current.changed_at,
            cur_basis=current.legal_basis,
        ):
            CurrentConsent.objects.filter(pk=current.pk).update(**fields)
        else:
            moved = False
        if push and moved and origin != Origin.SUPEROFFICE and person_id:
            from .push import consent_push_enqueue

            # The contact's row is locked above and it is linked: no need to look again.
            consent_push_enqueue(
                account=account, contact_ids=[contact.pk], change=change, linked=True
            )
    return change


# -- the lease: one cycle per account at a time ---------------------------------


def consent_lease_acquire(*, account: Account, ttl: timedelta = LEASE_TTL) -> str | None:
    """Take the account's sync lease; returns the holder token, or None when another
    cycle holds an unexpired lease. The conditional UPDATE is atomic on PostgreSQL
    (the second writer re-checks the row after the first commits) and on SQLite."""
    ConsentSyncLease.objects.get_or_create(account=account)
    holder = uuid.uuid4().hex
    now = timezone.now()
    taken = (
        ConsentSyncLease.objects.filter(account=account)
        .filter(Q(holder="") | Q(expires_at__isnull=True) | Q(expires_at__lt=now))
        .update(holder=holder, expires_at=now + ttl, acquired_at=now)
    )
    return holder if taken else None


def consent_lease_renew(*, account: Account, holder: str, ttl: timedelta = LEASE_TTL) -> bool:
    return bool(
        ConsentSyncLease.objects.filter(account=account, holder=holder).update(
            expires_at=timezone.now() + ttl
        )
    )


def consent_lease_release(*, account: Account, holder: str) -> None:
    ConsentSyncLease.objects.filter(account=account, holder=holder).update(
        holder="", expires_at=None
    )


# -- the sync engine ----------------------------------------------------------------


class CycleAborted(Exception):
    """SuperOffice cannot be reached or refuses the account: stop the cycle here."""


@dataclass(frozen=True)
class SyncScope:
    """Who decides for a contact: a cycle, or a push between cycles (then ``cycle`` is
    None), and what the decision's reason starts with."""

    account: Account
    cycle: ConsentSyncCycle | None = None
    trigger: str = ConsentDecision.Trigger.CYCLE
    note: str = ""

    @property
    def account_id(self) -> int:
        return self.account.pk

    def reason(self, text: str) -> str:
        return f"{self.note}{text}" if self.note else text


@dataclass
class _Figures:
    checked: int = 0
    to_superoffice: int = 0
    to_hub: int = 0
    conflicts: int = 0
    errors: int = 0
    pending_decisions: list[ConsentDecision] = field(default_factory=list)


def _hub_states(
    account_id: int, contact_ids: list[int]
) -> dict[tuple[int, str], tuple[ConsentState, str]]:
    rows = CurrentConsent.objects.filter(
        account_id=account_id, contact_id__in=contact_ids
    ).values_list("contact_id", "purpose", "legal_basis", "changed_at", "source", "origin")
    return {(c, p): (ConsentState(b, at, s), o) for c, p, b, at, s, o in rows}


def _decision_row(*, scope, contact, purpose, decision, hub, person, **extra) -> ConsentDecision:
    so_state = person.state if person else None
    return ConsentDecision(
        account_id=scope.account_id,
        cycle=scope.cycle,
        trigger=scope.trigger,
        contact=contact,
        purpose=purpose,
        action=decision.action.value,
        reason=scope.reason(decision.reason),
        hub_legal_basis=hub.legal_basis if hub else "",
        hub_changed_at=hub.changed_at if hub else None,
        superoffice_legal_basis=so_state.legal_basis if so_state else "",
        superoffice_changed_at=so_state.changed_at if so_state else None,
        superoffice_person_id=decision.person_id,
        result_legal_basis=decision.result.legal_basis if decision.result else "",
        conflict=decision.conflict,
        **extra,
    )


def _vanished_as_withdrawn(*, scope, contact, purpose, hub, persons) -> list[PersonConsent]:
    """A consent SuperOffice held and no longer holds was removed there (a deletion
    carries no time). Pushing the hub's grant back would re-grant what someone took
    away, so it counts as a withdrawal now. SuperOffice held it if the hub's value
    came from that person, or a cycle wrote it there."""
    counting = counting_person(persons)
    if counting is None or counting.state is not None or hub is None or hub.is_withdrawn:
        return persons
    held = (
        ConsentChange.objects.filter(
            account_id=scope.account_id,
            contact=contact,
            purpose=purpose,
            origin=Origin.SUPEROFFICE,
            superoffice_person_id=counting.person_id,
        ).exists()
        or ConsentDecision.objects.filter(
            account_id=scope.account_id,
            contact=contact,
            purpose=purpose,
            superoffice_person_id=counting.person_id,
            action=ConsentDecision.Action.WRITE_SUPEROFFICE,
            outcome=ConsentDecision.Outcome.DONE,
        ).exists()
    )
    if not held:
        return persons
    removed = ConsentState(WITHDRAWN, timezone.now(), REMOVED_SOURCE)
    return [
        PersonConsent(p.person_id, p.registered_at, removed) if p is counting else p
        for p in persons
    ]


def _explain_removal(decision: Decision) -> Decision:
    if decision.result is None or decision.result.source != REMOVED_SOURCE:
        return decision
    return Decision(
        decision.action,
        "SuperOffice no longer holds this consent: it was removed there, and a removal "
        "carries no time, so it counts as a withdrawal now. " + decision.reason,
        decision.result,
        decision.person_id,
        decision.conflict,
    )


def _already_taken(*, contact, purpose, result: ConsentState) -> bool:
    """The hub holds SuperOffice's change already (a cycle and a push both read it): the
    history is not given the same change twice. Call with the contact locked."""
    current = CurrentConsent.objects.filter(contact=contact, purpose=purpose).first()
    return (
        current is not None
        and current.origin == Origin.SUPEROFFICE
        and current.legal_basis == result.legal_basis
        and current.changed_at == result.changed_at
    )


def _sync_contact(*, scope: SyncScope, port: ConsentPort, contact, hub_states, figures: _Figures):
    """Read the contact's SuperOffice persons, decide per purpose and apply."""
    try:
        persons = port.persons_for_contact(contact=contact)
    except (TransientCrmError, ConfigurationCrmError) as exc:
        raise CycleAborted(str(exc)) from exc
    except (PermanentCrmError, NotFoundCrmError) as exc:
        figures.errors += 1
        figures.pending_decisions.append(
            ConsentDecision(
                account_id=scope.account_id,
                cycle=scope.cycle,
                trigger=scope.trigger,
                contact=contact,
                purpose=Purpose.STORE,
                action=Action.NONE.value,
                outcome=ConsentDecision.Outcome.FAILED,
                reason=scope.reason("Could not read the contact's SuperOffice person."),
                superoffice_person_id=contact.superoffice_person_id,
                error=str(exc)[:2000],
            )
        )
        return
    figures.checked += 1
    for purpose in Purpose.values:
        hub, hub_origin = hub_states.get((contact.pk, purpose), (None, Origin.HUB))
        person_consents = [
            PersonConsent(p.person_id, p.registered_at, p.consents.get(purpose)) for p in persons
        ]
        person_consents = _vanished_as_withdrawn(
            scope=scope, contact=contact, purpose=purpose, hub=hub, persons=person_consents
        )
        decision = _explain_removal(decide_for_contact(hub=hub, persons=person_consents))
        if decision.action is Action.WRITE_SUPEROFFICE:
            # The batch read the hub's state a moment ago; a change recorded since
            # (API, form) must not be overwritten in SuperOffice by the older value,
            # whose SuperOffice time would then look newest. Decide again on fresh state.
            fresh = _hub_states(scope.account_id, [contact.pk]).get(
                (contact.pk, purpose), (None, Origin.HUB)
            )
            if fresh[0] != hub:
                hub, hub_origin = fresh
                decision = _explain_removal(decide_for_contact(hub=hub, persons=person_consents))
        counting = next((p for p in person_consents if p.person_id == decision.person_id), None)
        decision_row = partial(
            _decision_row,
            scope=scope,
            contact=contact,
            purpose=purpose,
            decision=decision,
            hub=hub,
            person=counting,
        )
        if decision.conflict:
            figures.conflicts += 1
        if decision.action is Action.NONE:
            nothing = hub is None and (counting is None or counting.state is None)
            if nothing and len(persons) < 2:
                # Nothing on either side: not worth a row per contact and purpose. With
                # duplicates the row is kept: it remembers which person counts, so a
                # later change on that person finds this contact.
                continue
            figures.pending_decisions.append(decision_row())
            continue
        if decision.action is Action.WRITE_SUPEROFFICE:
            try:
                port.consent_write(
                    person_id=decision.person_id,
                    purpose=purpose,
                    legal_basis=decision.result.legal_basis,
                    source=decision.result.source,
                    origin=hub_origin,
                    comment=f"emhub: {decision.reason}"[:250],
                )
            except (TransientCrmError, ConfigurationCrmError) as exc:
                raise CycleAborted(str(exc)) from exc
            except (PermanentCrmError, NotFoundCrmError) as exc:
                figures.errors += 1
                figures.pending_decisions.append(
                    decision_row(
                        outcome=ConsentDecision.Outcome.FAILED,
                        error=str(exc)[:2000],
                    )
                )
                continue
            # The CRM write succeeded: record the decision in its own small transaction.
            decision_row().save()
            figures.to_superoffice += 1
        else:
            with transaction.atomic():
                Contact.objects.select_for_update().filter(pk=contact.pk).first()
                if _already_taken(contact=contact, purpose=purpose, result=decision.result):
                    figures.pending_decisions.append(
                        _decision_row(
                            scope=SyncScope(
                                scope.account,
                                scope.cycle,
                                scope.trigger,
                                scope.note + "The hub holds this change already. ",
                            ),
                            contact=contact,
                            purpose=purpose,
                            decision=Decision(
                                Action.NONE,
                                decision.reason,
                                decision.result,
                                decision.person_id,
                                decision.conflict,
                            ),
                            hub=hub,
                            person=counting,
                        )
                    )
                    continue
                consent_record(
                    account=scope.account,
                    contact=contact,
                    purpose=purpose,
                    legal_basis=decision.result.legal_basis,
                    source=decision.result.source,
                    changed_at=decision.result.changed_at,
                    origin=Origin.SUPEROFFICE,
                    reason=scope.reason(decision.reason),
                    superoffice_person_id=decision.person_id,
                    cycle=scope.cycle,
                )
                decision_row().save()
            figures.to_hub += 1


def _flush(cycle: ConsentSyncCycle, figures: _Figures) -> None:
    if figures.pending_decisions:
        ConsentDecision.objects.bulk_create(figures.pending_decisions, batch_size=1000)
        figures.pending_decisions.clear()
    ConsentSyncCycle.objects.filter(pk=cycle.pk).update(
        contacts_checked=figures.checked,
        written_to_superoffice=figures.to_superoffice,
        written_to_hub=figures.to_hub,
        conflicts=figures.conflicts,
        errors=figures.errors,
    )


def _run(*, cycle: ConsentSyncCycle, port: ConsentPort, contacts, holder: str) -> _Figures:
    figures = _Figures()
    scope = SyncScope(account=cycle.account, cycle=cycle)
    batch: list[Contact] = []
    renewed_at = time.monotonic()

    def keep_lease() -> None:
        nonlocal renewed_at
        if not consent_lease_renew(account=cycle.account, holder=holder):
            # Someone took the lease (ours expired): stop rather than run two cycles.
            raise CycleAborted("The sync lease was lost; another cycle took over.")
        renewed_at = time.monotonic()

    def run_batch() -> None:
        states = _hub_states(cycle.account_id, [c.pk for c in batch])
        try:
            for contact in batch:
                # A slow SuperOffice can stretch a batch past the lease: renew by the clock too.
                if time.monotonic() - renewed_at > LEASE_RENEW_SECONDS:
                    keep_lease()
                _sync_contact(
                    scope=scope, port=port, contact=contact, hub_states=states, figures=figures
                )
        finally:
            _flush(cycle, figures)
        batch.clear()
        keep_lease()

    for contact in contacts.iterator(chunk_size=BATCH_SIZE):
        batch.append(contact)
        if len(batch) >= BATCH_SIZE:
            run_batch()
    if batch:
        run_batch()
    return figures


def _finish(cycle: ConsentSyncCycle, *, port, status: str, error: str = "", watermark=None) -> None:
    cycle.refresh_from_db()
    cycle.status = status
    if error:
        cycle.error = error[:4000]
    # Every SOAP call is logged with the cycle's correlation (pages, ticket renewals
    # included); the port's own count is the fallback. A worker buffers its call log:
    # written first, so the count holds them all.
    call_log_flush()
    logged = CrmCall.objects.filter(
        account_id=cycle.account_id, correlation=f"consent-cycle-{cycle.pk}"
    ).count()
    cycle.crm_calls = logged or (port.calls if port else 0)
    cycle.finished_at = timezone.now()
    cycle.duration_ms = int((cycle.finished_at - cycle.started_at).total_seconds() * 1000)
    cycle.watermark = watermark
    cycle.save(
        update_fields=["status", "error", "crm_calls", "finished_at", "duration_ms", "watermark"]
    )


def _linked_contacts(account: Account):
    return Contact.objects.filter(account=account, superoffice_person_id__isnull=False).order_by(
        "pk"
    )


def _execute(*, account: Account, kind: str, holder: str, contact_ids=None) -> ConsentSyncCycle:
    started = timezone.now()
    since = consent_sync_last_watermark(account=account)
    cycle = ConsentSyncCycle.objects.create(account=account, kind=kind, started_at=started)
    port: ConsentPort | None = None
    clock = time.monotonic()
    if not crm_ready(account=account):
        # The connection has a standing configuration error: CRM work of the account
        # stops until an admin fixes it. The failed cycle shows why on the history page.
        _finish(
            cycle,
            port=None,
            status=ConsentSyncCycle.Status.FAILED,
            error="The SuperOffice connection has a configuration error; an admin fixes it "
            "on the connection page, then cycles resume.",
        )
        return cycle
    try:
        try:
            port = ConsentPort(client_for_account(account, correlation=f"consent-cycle-{cycle.pk}"))
            contacts = _contacts_for(cycle=cycle, port=port, since=since, contact_ids=contact_ids)
        except (TransientCrmError, ConfigurationCrmError, PermanentCrmError) as exc:
            raise CycleAborted(str(exc)) from exc
        figures = _run(cycle=cycle, port=port, contacts=contacts, holder=holder)
    except CycleAborted as exc:
        logger.warning("Consent cycle %s for account %s stopped: %s", cycle.pk, account.pk, exc)
        _finish(cycle, port=port, status=ConsentSyncCycle.Status.FAILED, error=str(exc))
        return cycle
    except Exception as exc:
        logger.exception("Consent cycle %s for account %s crashed", cycle.pk, account.pk)
        _finish(
            cycle,
            port=port,
            status=ConsentSyncCycle.Status.FAILED,
            error=f"Unexpected error: {exc}",
        )
        raise
    logger.info(
        "Consent cycle %s (%s) for account %s: %s checked in %.1fs",
        cycle.pk,
        kind,
        account.pk,
        figures.checked,
        time.monotonic() - clock,
    )
    status = (
        ConsentSyncCycle.Status.PARTIAL if figures.errors else ConsentSyncCycle.Status.SUCCEEDED
    )
    # Only cycles that read SuperOffice's changes move the watermark; an on-demand
    # run for a handful of recipients says nothing about everyone else. A partial
    # cycle moves it too: its failed contacts failed on bad data, which the same
    # request would fail on again; the nightly full reconciliation retries them.
    watermark = None if kind == ConsentSyncCycle.Kind.ON_DEMAND else started
    _finish(cycle, port=port, status=status, watermark=watermark)
    return cycle


def _changes_not_yet_seen(
    *, account: Account, changes: list[ConsentChangeRow], port: ConsentPort
) -> set[int]:
    """The persons with a consent change the hub has not seen yet.

    SuperOffice lists a consent's last change to the day only (consentPerson/updatedDate
    is a date), so every read of the window brings back the changes earlier cycles took
    already. A row is known when the hub's latest decision on that person and purpose,
    taken no earlier than the day before the row's day, left SuperOffice holding the
    legal basis the row shows: then SuperOffice's state is the one the hub last agreed
    with. Anything else (a person never decided on, another legal basis, an older
    decision) is read. So a cycle reads each change once, not each day's changes again
    and again. (A change and its undoing within the same day, ending where the hub last
    saw it, is not read again: both sides already agree on its legal basis.)"""
    changes = [c for c in changes if c.purpose_key in PURPOSES]
    if not changes:
        return set()
    days = [c.updated_on for c in changes if c.updated_on is not None]
    earliest = min(days) if days else None
    decisions = ConsentDecision.objects.filter(
        account=account,
        superoffice_person_id__in={c.person_id for c in changes},
        outcome=ConsentDecision.Outcome.DONE,
    )
    if earliest is not None:
        decisions = decisions.filter(
            decided_at__gte=datetime.combine(earliest - timedelta(days=1), dt_time(), UTC)
        )
    known: dict[tuple[int, str], tuple[str, datetime]] = {}
    for person_id, purpose, action, so_basis, result, decided_at in decisions.order_by(
        "decided_at", "id"
    ).values_list(
        "superoffice_person_id",
        "purpose",
        "action",
        "superoffice_legal_basis",
        "result_legal_basis",
        "decided_at",
    ):
        held = result if action == ConsentDecision.Action.WRITE_SUPEROFFICE else so_basis
        known[(person_id, purpose)] = (held, decided_at)
    unseen: set[int] = set()
    for change in changes:
        seen = known.get((change.person_id, change.purpose_key))
        fresh_enough = (
            seen is not None
            and change.updated_on is not None
            and seen[1].astimezone(UTC).date() >= change.updated_on - timedelta(days=1)
        )
        if not fresh_enough or port.legal_base_key(change.legal_base) != seen[0]:
            unseen.add(change.person_id)
    return unseen


def _contacts_for(*, cycle: ConsentSyncCycle, port: ConsentPort, since, contact_ids):
    contacts = _linked_contacts(cycle.account)
    if cycle.kind == ConsentSyncCycle.Kind.ON_DEMAND:
        return contacts.filter(pk__in=list(contact_ids or []))
    if cycle.kind == ConsentSyncCycle.Kind.FULL or since is None:
        return contacts
    window = since - WATERMARK_OVERLAP
    cycle.watermark_from = window
    cycle.save(update_fields=["watermark_from"])
    changes = port.consent_changes_since(since=window)
    # A current state the sync itself took from SuperOffice agrees with SuperOffice
    # by construction; only the hub's own changes need pushing, and of those in the
    # overlap, not the ones an earlier cycle already decided on after they were made.
    decided_since = ConsentDecision.objects.filter(
        account=cycle.account,
        contact_id=OuterRef("contact_id"),
        purpose=OuterRef("purpose"),
        outcome=ConsentDecision.Outcome.DONE,
        decided_at__gte=OuterRef("updated_at"),
    )
    hub_changed = (
        CurrentConsent.objects.filter(account=cycle.account, updated_at__gte=window)
        .exclude(origin=Origin.SUPEROFFICE)
        .exclude(Exists(decided_since))
        .values("contact_id")
    )
    if changes is None:
        # The client cannot ask SuperOffice which consents changed. Reading every
        # person every 30 minutes is what the watermark exists to avoid, so this
        # cycle handles the hub's changes only; SuperOffice's changes arrive with
        # the nightly full reconciliation and with the on-demand sync before every send.
        cycle.error = (
            "SuperOffice cannot list changed consents through this connection: only the "
            "hub's changes were synced; SuperOffice's arrive with the nightly full "
            "reconciliation and before every send."
        )
        cycle.save(update_fields=["error"])
        return contacts.filter(pk__in=hub_changed)
    changed_persons = sorted(
        _changes_not_yet_seen(account=cycle.account, changes=changes, port=port)
    )
    # A change on another person sharing the contact's email (the oldest one counts)
    # is found through the person earlier cycles decided on.
    counted_before = ConsentDecision.objects.filter(
        account=cycle.account, superoffice_person_id__in=changed_persons
    ).values("contact_id")
    return contacts.filter(
        Q(pk__in=hub_changed)
        | Q(superoffice_person_id__in=changed_persons)
        | Q(pk__in=counted_before)
    )


def consent_sync_cycle(
    *, account: Account, kind: str = ConsentSyncCycle.Kind.INCREMENTAL
) -> ConsentSyncCycle | None:
    """One sync cycle for the account. Returns None when sync is off or another cycle
    holds the account's lease (a duplicate beat or a slow previous cycle)."""
    if kind not in ConsentSyncCycle.Kind.values:
        raise ValueError(f"Unknown cycle kind {kind!r}")
    if not consent_sync_enabled(account=account):
        return None
    holder = consent_lease_acquire(account=account)
    if holder is None:
        logger.info("Consent cycle for account %s skipped: another cycle runs", account.pk)
        return None
    try:
        return _execute(account=account, kind=kind, holder=holder)
    finally:
        consent_lease_release(account=account, holder=holder)


def consent_sync_for_contacts(
    *, account: Account, contact_ids, wait_seconds: float = 30.0
) -> ConsentSyncCycle | None:
    """Sync the given contacts now (the send checklist, a scheduled send at its time).

    Waits up to `wait_seconds` for a running cycle to finish, since a send needs the
    answer. Returns None when sync is off or the lease could not be had in time
    (the caller then decides on the hub's current state alone)."""
    if not consent_sync_enabled(account=account):
        return None
    ids = [int(i) for i in contact_ids]
    deadline = time.monotonic() + wait_seconds
    holder = consent_lease_acquire(account=account)
    while holder is None and time.monotonic() < deadline:
        time.sleep(0.5)
        holder = consent_lease_acquire(account=account)
    if holder is None:
        logger.warning("On-demand consent sync for account %s: lease busy", account.pk)
        return None
    try:
        return _execute(
            account=account, kind=ConsentSyncCycle.Kind.ON_DEMAND, holder=holder, contact_ids=ids
        )
    finally:
        consent_lease_release(account=account, holder=holder)


# -- recording from outside (API, forms) -------------------------------------------

# A caller's clock may run a little ahead; beyond this, a future time would win
# every later comparison, so it is refused.
FUTURE_TOLERANCE = timedelta(minutes=5)


def consent_record_for_email(
    *,
    account: Account,
    email: str,
    purpose: str,
    legal_basis: str,
    source: str = "",
    changed_at: datetime | None = None,
    origin: str = Origin.API,
    reason: str = "",
) -> ConsentChange:
    """Record a consent for an email address (the consent API, a form): the contact is
    created when the account has none with that address."""
    from campaigns.services import contact_upsert

    if changed_at is not None and changed_at > timezone.now() + FUTURE_TOLERANCE:
        raise ValidationError({"changed_at": ["The time of the change lies in the future."]})
    with transaction.atomic():
        contact = contact_upsert(account=account, email=email)
        return consent_record(
            account=account,
            contact=contact,
            purpose=purpose,
            legal_basis=legal_basis,
            source=source,
            changed_at=changed_at,
            origin=origin,
            reason=reason,
        )


# -- bulk merge (imports, and the hub side of large reconciliations) -----------------


@dataclass(frozen=True)
class BulkChange:
    contact_id: int
    purpose: str
    legal_basis: str
    changed_at: datetime
    source: str = ""


@dataclass
class BulkResult:
    recorded: int = 0
    refused: int = 0
    current_moved: int = 0


# On PostgreSQL: the rows are COPYed into a temporary table, then one statement
# appends them to the history and moves each (contact, purpose)'s current state to
# its newest change, only where that change is newer than the one held (at equal
# times a withdrawal wins), the same rule as consent_record.
_MERGE_SQL = """
WITH ins AS (
    INSERT INTO consent_consentchange
        (account_id, contact_id, purpose, legal_basis, source, changed_at, recorded_at,
         origin, reason, superoffice_person_id, cycle_id)
    SELECT %(account)s, s.contact_id, s.purpose, s.legal_basis, s.source, s.changed_at,
           %(now)s, %(origin)s, %(reason)s, NULL, NULL
    FROM consent_stage s
    JOIN campaigns_contact c ON c.id = s.contact_id AND c.account_id = %(account)s
    RETURNING id, contact_id, purpose, legal_basis, source, changed_at, origin
), newest AS (
    SELECT DISTINCT ON (contact_id, purpose) *
    FROM ins
    ORDER BY contact_id, purpose, changed_at DESC, (legal_basis = %(withdrawn)s) DESC, id DESC
), merged AS (
    INSERT INTO consent_currentconsent AS cur
        (account_id, contact_id, purpose, change_id, legal_basis, source, changed_at, origin,
         updated_at)
    SELECT %(account)s, contact_id, purpose, id, legal_basis, source, changed_at, origin, %(now)s
    FROM newest
    ON CONFLICT (contact_id, purpose) DO UPDATE SET
        change_id = EXCLUDED.change_id, legal_basis = EXCLUDED.legal_basis,
        source = EXCLUDED.source, changed_at = EXCLUDED.changed_at, origin = EXCLUDED.origin,
        updated_at = EXCLUDED.updated_at
    WHERE EXCLUDED.changed_at > cur.changed_at
       OR (EXCLUDED.changed_at = cur.changed_at
           AND (EXCLUDED.legal_basis = %(withdrawn)s OR cur.legal_basis <> %(withdrawn)s))
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM merged)
"""


# The merged contacts linked to a SuperOffice person and whose current state this merge
# moved (their CurrentConsent.updated_at is the merge's time), one pending push each.
_PUSH_SQL = """
INSERT INTO consent_consentpush
    (account_id, contact_id, change_id, status, attempts, next_attempt_at, created_at,
     finished_at, last_error)
SELECT DISTINCT %(account)s, cur.contact_id, NULL::bigint, 'pending', 0, %(now)s, %(now)s,
    NULL::timestamptz, ''
FROM consent_currentconsent cur
JOIN consent_stage s ON s.contact_id = cur.contact_id AND s.purpose = cur.purpose
JOIN campaigns_contact c ON c.id = cur.contact_id AND c.superoffice_person_id IS NOT NULL
WHERE cur.account_id = %(account)s AND cur.updated_at = %(now)s
ON CONFLICT DO NOTHING
"""


def _bulk_validate(change: BulkChange) -> BulkChange | None:
    basis = _normalise_legal_basis(change.legal_basis)
    if (
        change.purpose not in PURPOSES
        or not basis
        or len(basis) > LEGAL_BASIS_MAX
        or change.changed_at is None
        or timezone.is_naive(change.changed_at)
    ):
        return None
    return BulkChange(change.contact_id, change.purpose, basis, change.changed_at, change.source)


def consent_bulk_record(
    *, account: Account, changes, origin: str = Origin.IMPORT, reason: str = ""
) -> BulkResult:
    """Record many changes at once (an import of consents). Rows with bad values, or
    for contacts outside the account, are refused and counted, not raised."""
    from django.db import connection

    if origin not in Origin.values:
        raise ValidationError({"origin": [f"Choose one of {', '.join(Origin.values)}."]})
    result = BulkResult()
    valid: list[BulkChange] = []
    for change in changes:
        checked = _bulk_validate(change)
        if checked is None:
            result.refused += 1
        else:
            valid.append(checked)
    if not valid:
        return result
    now = timezone.now()
    if connection.vendor != "postgresql":
        # The embedded SQLite mode: correct, one change at a time.
        owned = set(
            Contact.objects.filter(
                account=account, pk__in={c.contact_id for c in valid}
            ).values_list("pk", flat=True)
        )
        contacts = Contact.objects.in_bulk(owned)

        def current_changes() -> set[tuple[int, str, int]]:
            return set(
                CurrentConsent.objects.filter(contact_id__in=owned).values_list(
                    "contact_id", "purpose", "change_id"
                )
            )

        before = current_changes()
        for change in valid:
            if change.contact_id not in owned:
                result.refused += 1
                continue
            consent_record(
                account=account,
                contact=contacts[change.contact_id],
                purpose=change.purpose,
                legal_basis=change.legal_basis,
                source=change.source,
                changed_at=change.changed_at,
                origin=origin,
                reason=reason,
                push=False,
            )
            result.recorded += 1
        moved = current_changes() - before
        result.current_moved = len(moved)
        if origin != Origin.SUPEROFFICE:
            from .push import consent_push_enqueue

            with transaction.atomic():
                consent_push_enqueue(account=account, contact_ids={c for c, _, _ in moved})
        return result
    with transaction.atomic(), connection.cursor() as cursor:
        # The newest-per-key sort of a large import fits in memory with this much.
        cursor.execute("SET LOCAL work_mem = '256MB'")
        # A caller's own transaction around two merges would still hold the first's table.
        cursor.execute("DROP TABLE IF EXISTS consent_stage")
        cursor.execute(
            "CREATE TEMP TABLE consent_stage (contact_id bigint, purpose varchar(20), "
            "legal_basis varchar(40), source varchar(60), changed_at timestamptz) "
            "ON COMMIT DROP"
        )
        with cursor.copy(
            "COPY consent_stage (contact_id, purpose, legal_basis, source, changed_at) FROM STDIN"
        ) as copy:
            for c in valid:
                copy.write_row(
                    (c.contact_id, c.purpose, c.legal_basis, c.source[:60], c.changed_at)
                )
        cursor.execute(
            _MERGE_SQL,
            {
                "account": account.pk,
                "now": now,
                "origin": origin,
                "reason": reason,
                "withdrawn": WITHDRAWN,
            },
        )
        recorded, moved = cursor.fetchone()
        if moved and origin != Origin.SUPEROFFICE and consent_sync_enabled(account=account):
            # The contacts whose current state moved, queued for SuperOffice as one
            # statement (consent_record queues one contact at a time).
            cursor.execute(_PUSH_SQL, {"account": account.pk, "now": now})
            from .push import consent_pushes_wake

            consent_pushes_wake(account_id=account.pk)
    result.recorded = recorded
    result.current_moved = moved
    result.refused += len(valid) - recorded
    return result
