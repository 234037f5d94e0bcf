"""The test suite's second pass: the embedded default's SQLite database and kombu's
filesystem broker, for the tests marked `both_databases` (see README).

The database is a file, not SQLite's in-memory one, so the live server's threads and
the worker subprocesses some tests start work in the same database as the test. It
lives under var/ of this checkout, so two checkouts on one machine never share it.
"""

from pathlib import Path

from .base import VAR_DIR, filesystem_broker_options, sqlite_options
from .test import *  # noqa: F403
from .test import env

_RUN_DIR = Path(env.str("EMHUB_TEST_SQLITE_DIR", default=str(VAR_DIR / "test-sqlite")))

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # A worker subprocess is pointed at the test database by EMHUB_SQLITE_PATH.
        "NAME": env.str("EMHUB_SQLITE_PATH", default=str(_RUN_DIR / "emhub.sqlite3")),
        "OPTIONS": sqlite_options(),
        "TEST": {"NAME": str(_RUN_DIR / "test_emhub.sqlite3")},
        "ATOMIC_REQUESTS": False,
        "CONN_MAX_AGE": 0,
    }
}
BROKER_DIR = _RUN_DIR / "broker"
CELERY_BROKER_URL = "filesystem://"
CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker_options(BROKER_DIR)
CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
# As in the embedded default: no Redis, the cap on SuperOffice calls is per process.
CRM_CALL_SLOTS_URL = ""
for _folder in ("queue", "processed", "control"):
    (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
