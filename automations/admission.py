"""Fair dispatch: how many of an account's runs may be on their way at once.

The broker's queue is first in, first out. Were every due run published at once, one
account's backlog of 10,000 runs against a slow SuperOffice would sit in the queue ahead
of every other account's fresh runs, for as long as that SuperOffice takes to work it off.
So an account has at most AUTOMATIONS_IN_FLIGHT_PER_ACCOUNT runs in flight (published
and not finished: the cap on its concurrent SuperOffice calls by default, as more could
only wait for a slot); the rest stay in the ledger, due and unpublished. Whenever a
message of an account with runs held back is done, its worker publishes that account's
next runs, oldest first, up to the limit again; the sweeper does the same for every
account on its round, as the backstop. Another account's fresh run therefore waits
behind at most the limit's worth of the first account's runs, whatever its backlog.

Runs of an account with runs held back go one per message, so that each may take a
call slot of its own. Claiming and recording are unchanged, so a run published twice
(two workers topping up at once) is still executed once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Count, F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from .models import Run, RunStatus


def in_flight_limit() -> int:
    """Runs per account in flight at once; 0 publishes every run at once (no limit)."""
    default = getattr(settings, "CRM_MAX_CONCURRENT_CALLS_PER_ACCOUNT", 4)
    return int(getattr(settings, "AUTOMATIONS_IN_FLIGHT_PER_ACCOUNT", default))


def _redispatch_after() -> float:
    return getattr(settings, "AUTOMATIONS_REDISPATCH_AFTER_SECONDS", 60.0)


def _in_flight_q(now) -> Q:
    """Published and not finished: running, or pending with a recent wake-up (or one
    scheduled for later: a retry's countdown)."""
    stale = now - timedelta(seconds=_redispatch_after())
    return Q(status=RunStatus.RUNNING) | Q(status=RunStatus.PENDING, dispatched_at__gte=stale)


@dataclass
class Admitted:
    """Runs to publish now: of accounts with room for all their runs (``free``), and of
    accounts with runs held back (``held``: account id -> runs, one per message)."""

    free: list[int] = field(default_factory=list)
    held: dict[int, list[int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.free) + sum(len(ids) for ids in self.held.values())


def _room(*, account_ids: list[int], excluding: list[int], now) -> dict[int, int]:
    limit = in_flight_limit()
    counts = dict(
        Run.objects.filter(_in_flight_q(now), account_id__in=account_ids)
        .exclude(id__in=excluding)
        .values("account_id")
        .annotate(n=Count("id"))
        .values_list("account_id", "n")
    )
    return {a: max(0, limit - counts.get(a, 0)) for a in account_ids}


def runs_admit(*, run_ids: list[int], account_id: int | None = None) -> Admitted:
    """Which of these pending runs go out now (in their order); the others are marked
    unpublished, for the next top-up or sweep. ``account_id``: all runs are that
    account's (saves looking it up)."""
    if in_flight_limit() <= 0 or not run_ids:
        return Admitted(free=list(run_ids))
    now = timezone.now()
    by_account: dict[int, list[int]] = {}
    if account_id is not None:
        by_account[account_id] = list(run_ids)
    else:
        accounts = dict(Run.objects.filter(id__in=run_ids).values_list("id", "account_id"))
        for run_id in run_ids:
            if run_id in accounts:
                by_account.setdefault(accounts[run_id], []).append(run_id)
    room = _room(account_ids=list(by_account), excluding=run_ids, now=now)
    admitted = Admitted()
    held_back: list[int] = []
    for account, ids in by_account.items():
        if len(ids) <= room[account]:
            admitted.free.extend(ids)
            continue
        if room[account]:
            admitted.held[account] = ids[: room[account]]
        held_back.extend(ids[room[account] :])
    if held_back:
        Run.objects.filter(id__in=held_back, status=RunStatus.PENDING).update(dispatched_at=None)
    return admitted


def runs_next_of_account(*, account_id: int) -> list[int]:
    """The account's next due, unpublished runs, oldest first, up to its room; marked
    published. Another worker topping up at the same moment skips these rows (PostgreSQL;
    on SQLite both may publish a run, and its claim runs it once)."""
    if in_flight_limit() <= 0:
        return []
    now = timezone.now()
    room = _room(account_ids=[account_id], excluding=[], now=now)[account_id]
    if not room:
        return []
    held = Run.objects.filter(
        account_id=account_id,
        status=RunStatus.PENDING,
        next_attempt_at__lte=now,
        dispatched_at__isnull=True,
    ).order_by("next_attempt_at", "id")
    if connections[held.db].vendor == "postgresql":
        return _mark_published(held, room=room, now=now)
    with transaction.atomic():
        ids = list(held.select_for_update(skip_locked=True).values_list("id", flat=True)[:room])
        if ids:
            Run.objects.filter(id__in=ids).update(dispatched_at=now)
    return ids


def _mark_published(held, *, room: int, now) -> list[int]:
    """PostgreSQL: pick and mark the runs in one statement (UPDATE ... RETURNING), oldest
    first. ``= ANY(ARRAY(subquery))`` evaluates the subquery once; ``IN (subquery)`` may
    rescan it per row, and with SKIP LOCKED each rescan would pick further runs."""
    connection = connections[held.db]
    table = connection.ops.quote_name(Run._meta.db_table)
    pick_sql, pick_params = held.values("id")[:room].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET dispatched_at = %s WHERE id = ANY(ARRAY({pick_sql} "  # noqa: S608 - Django's compiled SQL
            f"FOR UPDATE OF {table} SKIP LOCKED)) AND dispatched_at IS NULL "
            "RETURNING id, next_attempt_at",
            (now, *pick_params),
        )
        rows = cursor.fetchall()
    return [run_id for run_id, _ in sorted(rows, key=lambda row: (row[1], row[0]))]


def runs_due_per_account(*, base, limit: int) -> list[int]:
    """Of the due runs in ``base``, each account's oldest, up to the in-flight limit (and
    ``limit`` in all): the sweeper's candidates, so one account's backlog does not crowd
    the others out of them."""
    per_account = in_flight_limit()
    if per_account <= 0:
        return list(base.order_by("next_attempt_at").values_list("id", flat=True)[:limit])
    ranked = base.annotate(
        place=Window(
            RowNumber(), partition_by=[F("account_id")], order_by=[F("next_attempt_at"), F("id")]
        )
    ).filter(place__lte=per_account)
    return list(ranked.order_by("place", "next_attempt_at").values_list("id", flat=True)[:limit])
