"""For each URL keyword that names an object, how to make one in a given account.

The isolation sweep (tests/test_account_isolation.py) uses these to request another
account's objects; every app adds a maker when it adds a URL keyword.
"""

from emhub.services import api_key_issue


def _api_key(account):
    return api_key_issue(account=account, name="account b key").api_key.pk


OBJECT_MAKERS = {
    "key_id": _api_key,
}
