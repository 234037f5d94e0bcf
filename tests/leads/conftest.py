import pytest


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Discovery documents and keys are cached; each test meets its own identity provider.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
