"""Settings for bench/clicks.py's server: the test settings plus a static redirect to
compare the tracked-link endpoint with (see clicks_urls), and the database connection's
lifetime under test (`--conn-max-age`; 0, the default, opens a connection per request)."""

import os

from emhub.settings.test import *  # noqa: F403

ROOT_URLCONF = "bench.clicks_urls"
DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("BENCH_CONN_MAX_AGE", "0"))  # noqa: F405
