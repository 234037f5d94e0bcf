"""Settings shared by every run mode, read from the environment with django-environ.

Every variable is listed in `.env.example`. Override modules (`local`, `test`,
`production`) only change what differs for their mode.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONCE, NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(environ.Env().str("EMHUB_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
# A `.env` file next to manage.py is read when present; real environment variables win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# https://docs.djangoproject.com/en/5.2/ref/settings/#secret-key
SECRET_KEY = env.str("SECRET_KEY", default="")
# https://docs.djangoproject.com/en/5.2/ref/settings/#debug
DEBUG = env.bool("DEBUG", default=False)
# https://docs.djangoproject.com/en/5.2/ref/settings/#allowed-hosts
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Where recipients reach the hub: tracked links, the open pixel and form actions start with it.
EMHUB_PUBLIC_URL = env.str("EMHUB_PUBLIC_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "emhub",
    "crm",
    "campaigns",
    "automations",
    "consent",
    "leads",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "emhub.tenancy.CurrentAccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "emhub.framing.FrameAncestorsMiddleware",
    # Inside FrameAncestorsMiddleware, so its policy is set first and frame-ancestors added.
    # django-csp's, with the policy of a response without a nonce built once.
    "emhub.csp.CSPMiddleware",
    # Recipients and panel users get a branded error page, never a debug page.
    "emhub.errors.PublicErrorPageMiddleware",
    # Last, as django-axes asks: it answers a locked-out sign-in with the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "emhub.urls"
WSGI_APPLICATION = "emhub.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "emhub.tenancy.current_account",
            ],
        },
    },
]

# https://django-environ.readthedocs.io/en/latest/types.html#environ-env-db-url
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'emhub.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))


def sqlite_options() -> dict:
    # WAL lets the web app, the worker and beat read while one of them writes;
    # IMMEDIATE takes the write lock at BEGIN so concurrent writers wait instead of failing.
    return {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }


if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = sqlite_options()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Sign-in throttling (django-axes, see emhub.sign_in): the AxesStandaloneBackend refuses
# a locked-out user or address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("SIGN_IN_FAILURE_LIMIT", default=6)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("SIGN_IN_LOCKOUT_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = "emhub.sign_in.lockout_parameters"
AXES_LOCKOUT_CALLABLE = "emhub.sign_in.lockout_response"
AXES_CLIENT_IP_CALLABLE = "emhub.sign_in.client_ip"
AXES_RESET_ON_SUCCESS = True
# Behind this many proxies that append to X-Forwarded-For (production's TLS proxy: 1),
# the caller's address is read from there; 0 uses the connection's address.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
LOGIN_URL = "emhub:login"
LOGIN_REDIRECT_URL = "emhub:home"
LOGOUT_REDIRECT_URL = "emhub:login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Stored secrets (SuperOffice passwords, tokens) are encrypted with Fernet.
# A comma-separated list: the first key encrypts, every key decrypts, so keys rotate
# by putting a new one first and re-saving (see `python manage.py rotate_secrets`).
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

# --- Content-Security-Policy (django-csp) --------------------------------------------
# Scripts and styles only from the hub's own files (or an element carrying the page's
# nonce): no inline script, handler or style attribute runs, so injected markup cannot
# act. frame-ancestors is added by emhub.framing (the panels name SuperOffice's host).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
    }
}

# --- REST API -----------------------------------------------------------------
# https://www.django-rest-framework.org/api-guide/settings/
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "emhub.api_auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["emhub.api_auth.HasAccount"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "emhub.api_inputs.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "emhub.api_errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # The API speaks JSON (what its schema documents); the pages have their own forms.
    "DEFAULT_PARSER_CLASSES": ["emhub.api_inputs.JSONParser"],
    # \uXXXX escapes for what is not ASCII: an error message that repeats a lone surrogate
    # sent in a request must still encode as UTF-8.
    "UNICODE_JSON": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "emhub API",
    "DESCRIPTION": "Events in, consent out. Authenticate with `Authorization: Bearer <api key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery ---------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
# The default broker needs no server: kombu's filesystem transport in var/broker,
# so the embedded run mode has a real worker and beat. Production sets a redis:// URL.
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")


def filesystem_broker_options(broker_dir: Path) -> dict:
    return {
        "data_folder_in": str(broker_dir / "queue"),
        "data_folder_out": str(broker_dir / "queue"),
        "processed_folder": str(broker_dir / "processed"),
        "control_folder": str(broker_dir / "control"),
        "store_processed": False,
    }


CELERY_BROKER_TRANSPORT_OPTIONS = (
    filesystem_broker_options(BROKER_DIR)
    if CELERY_BROKER_URL.startswith("filesystem")
    else {
        # A task unacknowledged this long is delivered again; the run ledger's
        # lease makes a second delivery harmless (see automations.services).
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    }
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The filesystem transport has no fanout exchange, so remote control (ping,
# inspect) only works on a real broker.
CELERY_WORKER_ENABLE_REMOTE_CONTROL = not CELERY_BROKER_URL.startswith("filesystem")
# Beat schedule lives in code; each app adds its periodic tasks here.
CELERY_BEAT_SCHEDULE = {
    "emhub-heartbeat": {
        "task": "emhub.tasks.record_heartbeat",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    "emhub-prune-heartbeats": {
        "task": "emhub.tasks.prune_heartbeats",
        "schedule": crontab(minute=17),
    },
    # The run ledger is the queue: re-dispatch runs that are due and unclaimed, or
    # whose lease expired (a lost message, a killed worker).
    "automations-sweep-runs": {
        "task": "automations.sweep_runs",
        "schedule": 15.0,
        "options": {"expires": 14},
    },
    # Legal basis, both ways: every 30 minutes incrementally, nightly in full.
    "consent-sync-all-accounts": {
        "task": "consent.sync_all_accounts",
        "schedule": crontab(minute="*/30"),
    },
    # Consent pushes between cycles: wake accounts whose pushes wait with nobody on
    # them; register, remove and check the accounts' SuperOffice webhooks.
    "consent-sweep-pushes": {
        "task": "consent.sweep_pushes",
        "schedule": 15.0,
        "options": {"expires": 14},
    },
    "consent-prune-pushes": {
        "task": "consent.prune_pushes",
        "schedule": crontab(hour=3, minute=10),
    },
    "consent-reconcile-all-accounts": {
        "task": "consent.reconcile_all_accounts",
        "schedule": crontab(hour=2, minute=40),
    },
    # Scheduled sendouts whose time has come (consent is synced again at send time).
    "campaigns-send-due-sendouts": {
        "task": "campaigns.send_due_sendouts",
        "schedule": 30.0,
        "options": {"expires": 29},
    },
    # Raw clicks and opens whose drain was not woken (the broker was down when they came).
    "campaigns-drain-clicks": {
        "task": "campaigns.drain_clicks",
        "schedule": 10.0,
        "options": {"expires": 9},
    },
    "campaigns-resume-stalled-imports": {
        "task": "campaigns.resume_stalled_imports",
        "schedule": 60.0,
        "options": {"expires": 59},
    },
}

# --- SuperOffice ------------------------------------------------------------
# Loopback and private addresses are refused as SuperOffice addresses unless the
# operator allows them (the embedded default and the tests reach the simulator there).
CRM_ALLOW_PRIVATE_ADDRESSES = env.bool("CRM_ALLOW_PRIVATE_ADDRESSES", default=False)
CRM_TIMEOUT_SECONDS = env.float("CRM_TIMEOUT_SECONDS", default=30.0)
# A call to SuperOffice ends at this deadline however slowly its reply trickles in (the
# timeout above applies to each read), and its reply may be at most this large, received
# and once expanded from gzip (crm.http).
CRM_DEADLINE_SECONDS = env.float("CRM_DEADLINE_SECONDS", default=60.0)
CRM_MAX_REPLY_MB = env.int("CRM_MAX_REPLY_MB", default=20)

# The local NetServer simulator's sign-in: the embedded default's demo account and
# ``crm_connect`` connect with these, and the simulator accepts them. They open
# nothing but the simulator on loopback.
NETSERVER_SIMULATOR = {
    "USERNAME": env.str("SIMULATOR_USERNAME", default="sim-admin"),
    "PASSWORD": env.str("SIMULATOR_PASSWORD", default="sim-password"),
    "APP_TOKEN": env.str("SIMULATOR_APP_TOKEN", default="sim-app-token"),
    "SYSTEM_USER_TOKEN": env.str("SIMULATOR_SYSTEM_USER_TOKEN", default="emhub-sim-SYSTEMTOKEN"),
    "CONTEXT_IDENTIFIER": env.str("SIMULATOR_CONTEXT_IDENTIFIER", default="Cust12345"),
    # The application id its identity provider knows the panels by.
    "OIDC_CLIENT_ID": env.str("SIMULATOR_OIDC_CLIENT_ID", default="emhub-panels"),
}

# --- Tuning of the CRM work (defaults suit SuperOffice Online) -------------------
CRM_LIST_TTL_SECONDS = env.int("CRM_LIST_TTL_SECONDS", default=900)
CRM_MAX_CONCURRENT_CALLS_PER_ACCOUNT = env.int("CRM_MAX_CONCURRENT_CALLS_PER_ACCOUNT", default=4)
# A worker process writes its SuperOffice call log in bulk (crm.call_log): at each run's
# outcome and task's end, and in between when this many calls wait or the oldest is this old.
CRM_CALL_LOG_FLUSH_SIZE = env.int("CRM_CALL_LOG_FLUSH_SIZE", default=200)
CRM_CALL_LOG_FLUSH_SECONDS = env.float("CRM_CALL_LOG_FLUSH_SECONDS", default=2.0)
# Where the cap on concurrent calls lives (crm.client.slots). With a Redis URL it holds
# across every worker process and machine: by default the Redis of the broker, where there
# is one. Empty (the embedded default's filesystem broker, one worker process): a
# semaphore per process.
CRM_CALL_SLOTS_URL = env.str(
    "CRM_CALL_SLOTS_URL",
    default=CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "",
)
# A slot in Redis is a lease, so a killed worker's slots come back when it ends. It must
# outlast any call (a call ends at CRM_DEADLINE_SECONDS at the latest; crm.call_cap checks it).
CRM_CALL_SLOT_LEASE_SECONDS = env.float(
    "CRM_CALL_SLOT_LEASE_SECONDS", default=max(CRM_TIMEOUT_SECONDS, CRM_DEADLINE_SECONDS) + 15
)
# How long a call waits for a free slot before it gives up as a transient error (the
# run is retried with backoff).
CRM_CALL_SLOT_WAIT_SECONDS = env.float("CRM_CALL_SLOT_WAIT_SECONDS", default=CRM_TIMEOUT_SECONDS)
# Consent pushes between cycles (consent.push, consent.webhooks).
CONSENT_PUSH_LEASE_SECONDS = env.float("CONSENT_PUSH_LEASE_SECONDS", default=60.0)
CONSENT_PUSH_DRAIN_SECONDS = env.float("CONSENT_PUSH_DRAIN_SECONDS", default=50.0)
CONSENT_PUSH_REDISPATCH_SECONDS = env.float("CONSENT_PUSH_REDISPATCH_SECONDS", default=20.0)
CONSENT_PUSH_THREADS = env.int("CONSENT_PUSH_THREADS", default=CRM_MAX_CONCURRENT_CALLS_PER_ACCOUNT)
CONSENT_WEBHOOK_CHECK_SECONDS = env.float("CONSENT_WEBHOOK_CHECK_SECONDS", default=300.0)
CONSENT_PUSH_KEEP_DAYS = env.int("CONSENT_PUSH_KEEP_DAYS", default=30)
# A rep's match holds its runs this long, so a wrong match can be undone before they act.
AUTOMATIONS_MATCH_UNDO_SECONDS = env.int("AUTOMATIONS_MATCH_UNDO_SECONDS", default=30)
AUTOMATIONS_MAX_ATTEMPTS = env.int("AUTOMATIONS_MAX_ATTEMPTS", default=8)
# An account's runs on their way at once (published, not finished); the rest wait in the
# ledger, so one account's backlog never fills the broker's queue ahead of the others'
# (automations.admission). The call cap by default: more would only wait for a slot.
# 0 publishes every due run at once.
AUTOMATIONS_IN_FLIGHT_PER_ACCOUNT = env.int(
    "AUTOMATIONS_IN_FLIGHT_PER_ACCOUNT", default=CRM_MAX_CONCURRENT_CALLS_PER_ACCOUNT
)
# A message of an account with runs held back keeps its place in flight: its worker claims
# the account's next runs itself for up to this many runs or seconds, then hands the place
# on through the broker, so other accounts' messages are taken in their turn.
AUTOMATIONS_LANE_RUNS = env.int("AUTOMATIONS_LANE_RUNS", default=50)
AUTOMATIONS_LANE_SECONDS = env.float("AUTOMATIONS_LANE_SECONDS", default=0.25)
# Claims run as statements prepared once per database session (PostgreSQL), as planning
# one cost more than running it. Off behind a pooler that does not keep a session's
# prepared statements (PgBouncer in transaction mode before 1.21).
AUTOMATIONS_PREPARED_CLAIMS = env.bool("AUTOMATIONS_PREPARED_CLAIMS", default=True)
AUTOMATIONS_RETRY_BASE_SECONDS = env.float("AUTOMATIONS_RETRY_BASE_SECONDS", default=10.0)
AUTOMATIONS_RETRY_CAP_SECONDS = env.float("AUTOMATIONS_RETRY_CAP_SECONDS", default=900.0)
CAMPAIGNS_IMPORT_PAGE_SIZE = env.int("CAMPAIGNS_IMPORT_PAGE_SIZE", default=500)
CAMPAIGNS_SEND_MAX_ATTEMPTS = env.int("CAMPAIGNS_SEND_MAX_ATTEMPTS", default=5)
# A click this soon after the email was sent to the contact is a mail scanner's, not a
# person's (campaigns.scanners): it is kept, marked filtered, and triggers nothing.
LINK_SCANNER_SECONDS = env.float("LINK_SCANNER_SECONDS", default=10.0)
# A click is answered at once and its event stored by a worker: the first click of this
# window wakes it for the window's end, so a burst of clicks is one batch (campaigns.clicks).
CAMPAIGNS_CLICK_DRAIN_DELAY_SECONDS = env.float("CAMPAIGNS_CLICK_DRAIN_DELAY_SECONDS", default=1.0)
# Public form submissions one address may send, all forms together (django-ratelimit).
FORMS_SUBMISSIONS_RATE = env.str("FORMS_SUBMISSIONS_RATE", default="10/m")

# The cache holds rate-limit counters and discovery documents, so every web process must
# share it: a folder under var/ in the embedded default, Redis in production (CACHE_URL).
CACHES = {"default": env.cache("CACHE_URL", default=f"filecache://{VAR_DIR / 'cache'}")}

# --- Messages -----------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/topics/email/ : SMTP in production, a file
# folder in the embedded default, memory in the tests.
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="emhub@localhost")
# SMS goes through a pluggable backend (a dotted path); the default stores messages.
SMS_BACKEND = env.str("SMS_BACKEND", default="campaigns.sms.StoredSmsBackend")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "zeep": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
    },
}
