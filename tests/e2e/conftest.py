"""Browser tests: the `browser` and `page` fixtures live in tests/conftest.py, shared by all."""
