"""SQLite made to match what PostgreSQL does where the hub relies on it.

SQLite's LIKE (Django's icontains, iexact, istartswith on SQLite) folds the case of ASCII
letters only, so a search for "ÅSA" misses "Åsa" there while PostgreSQL finds it. Each new
SQLite connection gets a LIKE that folds case as Python does, for every letter.
"""

import re
from functools import lru_cache

from django.db.backends.signals import connection_created


@lru_cache(maxsize=256)
def _like_pattern(pattern: str, escape: str | None) -> re.Pattern:
    parts, chars = [], iter(pattern)
    for char in chars:
        if escape and char == escape:
            parts.append(re.escape(next(chars, "")))
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL | re.IGNORECASE)


def like(pattern, value, escape=None):
    """SQL's `value LIKE pattern [ESCAPE escape]`, case folded as Python folds it."""
    if pattern is None or value is None:
        return None
    return _like_pattern(str(pattern), escape).fullmatch(str(value)) is not None


def _on_connection(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        connection.connection.create_function("like", 2, like, deterministic=True)
        connection.connection.create_function("like", 3, like, deterministic=True)


def install() -> None:
    connection_created.connect(_on_connection, dispatch_uid="emhub.sqlite.like")
