"""The test suite: real PostgreSQL and Redis on this machine, the simulator over HTTP."""

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = "test-secret-key-" + "t" * 40
DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/emhub"),
}
# The benches run their workers as production does, with connections kept (bench/harness.py).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
# Fast hashing: the tests sign users in hundreds of times.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
FIELD_ENCRYPTION_KEYS = [
    "eAo1yqQq0v3Bq2BqS9Nq9M6PZ0g3a5cYbq0Kc0y8rK0=",
    "Zm9vYmFyYmF6cXV4cXV1eHh5enp5eHh5enp5eHh5enk=",
]
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/15")
# The cap on SuperOffice calls in the broker's Redis, as in production.
CRM_CALL_SLOTS_URL = env.str("CRM_CALL_SLOTS_URL", default=CELERY_BROKER_URL)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
CRM_ALLOW_PRIVATE_ADDRESSES = True
# One process per test run; tests/conftest.py empties it before every test.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CRM_TIMEOUT_SECONDS = 5.0
CRM_CALL_SLOT_WAIT_SECONDS = CRM_TIMEOUT_SECONDS
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
