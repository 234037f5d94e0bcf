"""Settings of the hub when a browser test runs it under gunicorn, as both run modes do:
the test settings, with static files served from the project's folders."""

from emhub.settings.test import *  # noqa: F403

WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
