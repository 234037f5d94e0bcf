"""Checks of text and JSON that come from outside, shared by every door (the API, the
public forms, the tracked links), so bad input is refused with a message, never a 500.

PostgreSQL cannot store a NUL character in text or JSON, and no database driver can
encode a lone UTF-16 surrogate (JSON's "\\ud800" escape) as UTF-8; deeply nested JSON
exhausts Python's recursion when it is decoded or encoded.
"""

import re
from datetime import UTC, datetime, timedelta

from django.utils import timezone

# The largest id a row can have (a 64-bit signed integer, on PostgreSQL and SQLite alike).
ID_MAX = 2**63 - 1
# A request body nests at most this deep; an event's `data` at most DATA_MAX_DEPTH.
JSON_MAX_DEPTH = 64
DATA_MAX_DEPTH = 16
_SURROGATE = re.compile("[\ud800-\udfff]")

# Events and consents happen in the hub's lifetime, not in year 1 or 9999 (which break
# time-zone conversion on the pages that show them). A little ahead is a sender's clock.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(days=1)
OUT_OF_RANGE = f"Send a time between {EARLIEST:%Y-%m-%d} and one day from now."


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None."""
    if "\x00" in value:
        return "Remove the NUL character (\\u0000): text cannot hold it."
    if _SURROGATE.search(value):
        return "Remove the lone surrogate (\\ud800-\\udfff): it is not a character."
    return None


def json_depth(value) -> int:
    """How deeply objects and arrays nest in `value` (0 for a plain value), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def json_problem(value, *, max_depth: int) -> str | None:
    """Why `value` (decoded JSON) cannot be stored, or None: too deep, or a key or string
    that text cannot hold. Walks without recursion, however deep `value` is."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return problem
            continue
        if isinstance(item, dict):
            if depth > max_depth:
                return f"Nest objects and arrays at most {max_depth} levels deep."
            for key, child in item.items():
                problem = text_problem(str(key))
                if problem:
                    return f"A key: {problem}"
                stack.append((child, depth + 1))
        elif isinstance(item, list | tuple):
            if depth > max_depth:
                return f"Nest objects and arrays at most {max_depth} levels deep."
            stack.extend((child, depth + 1) for child in item)
    return None


def datetime_problem(value: datetime) -> str | None:
    """Why `value` (aware) is no plausible time of an event or a change, or None."""
    latest = timezone.now() + FUTURE_TOLERANCE
    try:
        if value < EARLIEST or value > latest:
            return OUT_OF_RANGE
    except (OverflowError, TypeError):
        return "Send a date and time with a time zone, for example 2025-05-01T09:30:00Z."
    return None
