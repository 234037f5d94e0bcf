"""The call log's writer: one CrmCall row per SuperOffice round trip, written in bulk.

A process writes each call as it happens (write-through, one INSERT per call) unless
buffering is switched on, as every Celery worker process does at start
(emhub.celery). Buffered, the rows and the connection's last verdicts wait in memory and
go to the database together, in one INSERT (no transaction of its own: one round trip) and
at most two UPDATEs per connection:

- when the engine records a run's outcome (automations.services._record flushes first,
  so an outcome is never stored without the calls that led to it);
- when the buffer holds CRM_CALL_LOG_FLUSH_SIZE calls or its oldest call is
  CRM_CALL_LOG_FLUSH_SECONDS old, at the next call made outside a transaction;
- at the end of every Celery task and when a worker process shuts down.

The rows are written outside the transaction of whoever made the calls: a threshold
flush waits until no transaction is open, so work that rolls back (a run, a sync batch)
does not take the record of its calls with it. What a buffered process can lose is
what it had not flushed when it was killed outright (SIGKILL, the machine going down):
the calls of the run it was in the middle of, whose outcome was not recorded either, so
the run is taken again after its lease and its next calls are logged. A flush that
fails (the database unreachable) keeps the rows for the next one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import fields
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db import connection as db_connection
from django.db.models import Q, QuerySet
from django.db.models.sql import UpdateQuery

from .client import CallRecord
from .models import CrmCall, SuperOfficeConnection

logger = logging.getLogger(__name__)

_OUTCOMES_NOT_AN_ERROR = (CrmCall.Outcome.OK, CrmCall.Outcome.TICKET_REFUSED)

# A record's fields are flat values (text, numbers, a datetime): read as they are, not
# deep-copied by dataclasses.asdict, which cost two thirds of taking a call in.
_CALL_FIELDS = tuple(f.name for f in fields(CallRecord))

_lock = threading.Lock()
_rows: list[CrmCall] = []
# The newest verdict per connection id, coalesced: {"config": (text, at), "last": ...}.
_verdicts: dict[int, dict[str, tuple[str, datetime]]] = {}
_oldest_at: float | None = None
_buffered = False


def flush_size() -> int:
    return getattr(settings, "CRM_CALL_LOG_FLUSH_SIZE", 200)


def flush_seconds() -> float:
    return getattr(settings, "CRM_CALL_LOG_FLUSH_SECONDS", 2.0)


def call_log_buffering(*, on: bool) -> None:
    """Switch this process to buffered writes (on) or back to write-through (off).

    Switching off flushes what is buffered. Switching on in a freshly forked process
    forgets rows inherited from its parent: the parent flushes those itself.
    """
    global _buffered, _oldest_at
    if on:
        with _lock:
            _rows.clear()
            _verdicts.clear()
            _oldest_at = None
            _buffered = True
        return
    _buffered = False
    call_log_flush()


def call_log_buffered() -> int:
    """How many calls wait to be written (read by the tests)."""
    return len(_rows)


def call_log_record(*, account_id: int, connection_id: int, call: CallRecord) -> None:
    """Take one call into the log: written now, or buffered (see the module's note)."""
    global _oldest_at
    row = CrmCall(account_id=account_id, **{name: getattr(call, name) for name in _CALL_FIELDS})
    with _lock:
        _rows.append(row)
        if _oldest_at is None:
            _oldest_at = time.monotonic()
        if call.outcome == CrmCall.Outcome.CONFIGURATION:
            _note_verdict(connection_id, "config", call.error or "Configuration error", call)
        elif call.outcome not in _OUTCOMES_NOT_AN_ERROR:
            _note_verdict(
                connection_id, "last", f"{call.agent}.{call.operation}: {call.error}", call
            )
        due = (
            len(_rows) >= flush_size() or time.monotonic() - _oldest_at >= flush_seconds()
        ) and not db_connection.in_atomic_block
    if not _buffered:
        # Write-through keeps what the process did before buffering existed: the row goes
        # in now, in the caller's transaction if it has one, and a failure raises.
        _flush(keep_on_failure=False)
    elif due:
        call_log_flush()


def _note_verdict(connection_id: int, kind: str, text: str, call: CallRecord) -> None:
    kept = _verdicts.setdefault(connection_id, {}).get(kind)
    if kept is None or kept[1] <= call.started_at:
        _verdicts[connection_id][kind] = (text, call.started_at)


def call_log_flush() -> int:
    """Write the buffered calls and verdicts now; returns how many calls. Never raises."""
    return _flush(keep_on_failure=True)


def call_log_flush_with(
    update: Callable[[], QuerySet],
    values: dict[str, Any],
    *,
    statement: tuple[str, list] | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> int:
    """Write the buffered calls and UPDATE the rows of the queryset ``update()`` makes
    with ``values``; returns how many rows the UPDATE changed. Never loses a call: what
    it does not write stays buffered, as with call_log_flush.

    On PostgreSQL both go in one statement, ``WITH logged AS (INSERT ...) UPDATE ...``
    (a data-modifying WITH runs to completion whether or not the UPDATE reads it): the
    engine records every run's outcome this way after its calls, one round trip instead
    of two. Elsewhere, with verdicts to write or more calls than one INSERT takes, or if
    the one statement fails, the calls are flushed first and the UPDATE follows.

    ``statement``: that UPDATE as SQL and parameters already, for a caller that writes it
    more cheaply than Django compiles it; ``update`` is then called only where the
    statement is not used. ``using``: the database of the queryset.
    """
    global _oldest_at
    connection = connections[using]
    with _lock:
        together = (
            connection.vendor == "postgresql" and 0 < len(_rows) <= _INSERT_ROWS and not _verdicts
        )
        rows, oldest_at = (list(_rows), _oldest_at) if together else ([], None)
        if together:
            _rows.clear()
            _oldest_at = None
    if together:
        try:
            return _insert_then_update(rows, update, values, statement, connection)
        except Exception:
            logger.warning(
                "Could not write %d SuperOffice calls with the outcome; writing them apart",
                len(rows),
                exc_info=True,
            )
            _keep(rows, {}, oldest_at)
    call_log_flush()
    return update().update(**values)


def _insert_then_update(
    rows: list[CrmCall],
    update: Callable[[], QuerySet],
    values: dict[str, Any],
    statement,
    connection,
) -> int:
    insert_sql, insert_params = _values_insert(rows, connection)
    if statement is None:
        queryset = update()
        update_query = queryset.query.chain(UpdateQuery)
        update_query.add_update_values(values)
        statement = update_query.get_compiler(queryset.db).as_sql()
    update_sql, update_params = statement
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH logged AS ({insert_sql}) {update_sql}", (*insert_params, *update_params)
        )
        return cursor.rowcount


def _values_insert(rows: list[CrmCall], connection) -> tuple[str, list]:
    """``INSERT INTO crm_crmcall (...) VALUES (...), ...`` of these rows, each value
    prepared by its field as Django prepares it for a save. The statement's text is
    kept per number of rows: Django's compiler builds it anew, at more CPU than the rest
    of recording a run's outcome."""
    key = (connection.alias, len(rows))
    sql = _insert_sql.get(key)
    if sql is None:
        quote = connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in _INSERT_FIELDS)
        row = "(" + ", ".join(["%s"] * len(_INSERT_FIELDS)) + ")"
        sql = _insert_sql[key] = (
            f"INSERT INTO {quote(CrmCall._meta.db_table)} ({columns}) "  # noqa: S608 - the model's own names
            f"VALUES {', '.join([row] * len(rows))}"
        )
    params = [
        field.get_db_prep_save(field.pre_save(call, True), connection)
        for call in rows
        for field in _INSERT_FIELDS
    ]
    return sql, params


_insert_sql: dict[tuple[str, int], str] = {}


def _flush(*, keep_on_failure: bool) -> int:
    global _oldest_at
    with _lock:
        if not _rows and not _verdicts:
            return 0
        rows, verdicts = list(_rows), dict(_verdicts)
        _rows.clear()
        _verdicts.clear()
        oldest_at, _oldest_at = _oldest_at, None
    written = 0
    try:
        for start in range(0, len(rows), _INSERT_ROWS):
            _insert(rows[start : start + _INSERT_ROWS])
            written = start + len(rows[start : start + _INSERT_ROWS])
        for connection_id in list(verdicts):
            _write_verdicts(connection_id, verdicts[connection_id])
            del verdicts[connection_id]
    except Exception:
        if not keep_on_failure:
            raise
        unwritten = rows[written:]
        logger.warning(
            "Could not write %d SuperOffice calls to the call log; kept for the next flush",
            len(unwritten),
            exc_info=True,
        )
        _keep(unwritten, verdicts, oldest_at)
    return written


# Rows per INSERT statement.
_INSERT_ROWS = 500
_INSERT_FIELDS = [f for f in CrmCall._meta.concrete_fields if not f.primary_key]


def _insert(rows: list[CrmCall]) -> None:
    """One INSERT of these rows, in the caller's transaction if it has one, else on its
    own (autocommit). bulk_create wraps even a single INSERT in a transaction of its own:
    BEGIN, INSERT, COMMIT, three round trips where this is one, for every run's flush."""
    CrmCall.objects._insert(rows, fields=_INSERT_FIELDS)


def _keep(rows: list[CrmCall], verdicts: dict, oldest_at: float | None) -> None:
    """Put back what a failed flush did not write, ahead of what came in meanwhile."""
    global _oldest_at
    for row in rows:
        # Rows are written without reading their ids back; cleared in case one was set.
        row.pk = None
        row._state.adding = True
    with _lock:
        _rows[:0] = rows
        for connection_id, kinds in verdicts.items():
            for kind, (text, at) in kinds.items():
                kept = _verdicts.setdefault(connection_id, {}).get(kind)
                if kept is None or kept[1] < at:
                    _verdicts[connection_id][kind] = (text, at)
        if rows:
            _oldest_at = min(t for t in (_oldest_at, oldest_at) if t is not None)


def _write_verdicts(connection_id: int, kinds: dict[str, tuple[str, datetime]]) -> None:
    connections = SuperOfficeConnection.objects.filter(pk=connection_id)
    if "config" in kinds:
        text, at = kinds["config"]
        # A verdict from before the admin saved or successfully tested the connection is
        # about settings that no longer apply (a buffered call may be older than the fix).
        connections.filter(updated_at__lte=at).filter(
            Q(last_verified_at__isnull=True) | Q(last_verified_at__lte=at)
        ).update(config_error=text, config_error_at=at)
    if "last" in kinds:
        text, at = kinds["last"]
        connections.update(last_error=text, last_error_at=at)
