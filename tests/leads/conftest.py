"""Until the root conftest registers ``tests.crm_fixtures`` as a plugin, load it here."""

import pytest

from tests import conftest as root_conftest

if "tests.crm_fixtures" not in getattr(root_conftest, "pytest_plugins", []):
    from tests.crm_fixtures import (  # noqa: F401
        crm_account,
        crm_online_account,
        netserver_simulator,
        simulator,
    )


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Discovery documents and keys are cached; each test meets its own identity provider.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
