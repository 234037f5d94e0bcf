"""Settings of the subprocess workers in the fault tests: the test settings, with short
retry, lease and pause times so a killed worker's runs come back within the test."""

import importlib
import os

# The test process's own settings module (PostgreSQL, or the SQLite pass's).
_base = importlib.import_module(os.environ.get("EMHUB_WORKER_BASE_SETTINGS", "emhub.settings.test"))
globals().update({name: value for name, value in vars(_base).items() if name.isupper()})
env = _base.env

AUTOMATIONS_RETRY_BASE_SECONDS = env.float("AUTOMATIONS_RETRY_BASE_SECONDS", default=0.5)
AUTOMATIONS_RETRY_CAP_SECONDS = env.float("AUTOMATIONS_RETRY_CAP_SECONDS", default=5.0)
AUTOMATIONS_LEASE_SECONDS = env.float("AUTOMATIONS_LEASE_SECONDS", default=20.0)
AUTOMATIONS_REDISPATCH_AFTER_SECONDS = env.float(
    "AUTOMATIONS_REDISPATCH_AFTER_SECONDS", default=2.0
)
AUTOMATIONS_CONFIG_PAUSE_SECONDS = env.float("AUTOMATIONS_CONFIG_PAUSE_SECONDS", default=2.0)
AUTOMATIONS_MAX_ATTEMPTS = env.int("AUTOMATIONS_MAX_ATTEMPTS", default=30)
# The fault test of the call cap's leases makes calls short, to make the leases short.
CRM_TIMEOUT_SECONDS = env.float("CRM_TIMEOUT_SECONDS", default=_base.CRM_TIMEOUT_SECONDS)
