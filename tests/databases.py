"""What differs between the suite's two databases, for the tests that run on both."""

from django.db import connection


def on_sqlite() -> bool:
    return connection.vendor == "sqlite"


def per_database(*, postgresql, sqlite):
    """`sqlite` on SQLite, `postgresql` elsewhere. For query-count bounds: SQLite takes at
    most 999 parameters a statement, so Django splits a bulk insert or update of many rows
    into several statements; still a few per batch, never one per row."""
    return sqlite if on_sqlite() else postgresql
