"""Settings for bench/clicks.py's server: the test settings plus a static redirect to
compare the tracked-link endpoint with (see clicks_urls), and the database connections as
production keeps them (`--conn-max-age`, 60 seconds by default with health checks, as in
emhub/settings/production.py; 0 opens a connection per request)."""

import os

from emhub.settings.test import *  # noqa: F403

ROOT_URLCONF = "bench.clicks_urls"
DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("BENCH_CONN_MAX_AGE", "60"))  # noqa: F405
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # noqa: F405
