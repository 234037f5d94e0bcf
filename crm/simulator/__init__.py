"""A NetServer (SuperOffice SOAP) simulator: the hub's one CRM double, over real HTTP."""

DEFAULT_USERNAME = "sim-admin"
DEFAULT_PASSWORD = "sim-password"  # noqa: S105 - a demo credential of the local simulator
DEFAULT_APP_TOKEN = "sim-app-token"  # noqa: S105
DEFAULT_SYSTEM_USER_TOKEN = "emhub-sim-SYSTEMTOKEN"  # noqa: S105
DEFAULT_CONTEXT_IDENTIFIER = "Cust12345"
