"""The Celery entry points: one message per account with sync on, one cycle per message."""

import base64
import json

import pytest
import redis
from django.conf import settings

from consent.models import ConsentSyncCycle
from consent.tasks import reconcile_all_accounts, sync_account, sync_all_accounts
from crm.models import SuperOfficeConnection
from tests.factories import AccountFactory

QUEUE = "celery"


@pytest.fixture
def broker():
    connection = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    connection.delete(QUEUE)
    yield connection
    connection.delete(QUEUE)


def queued(broker):
    messages = [json.loads(raw) for raw in broker.lrange(QUEUE, 0, -1)]
    return [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[0]) for m in messages]


def connect(account, *, sync):
    return SuperOfficeConnection.objects.create(
        account=account,
        base_url="https://sod.superoffice.com/Cust1/Remote/Services88/",
        legal_basis_sync_enabled=sync,
    )


def test_the_half_hourly_task_queues_one_incremental_cycle_per_account_with_sync_on(
    account, other_account, broker
):
    connect(account, sync=True)
    connect(other_account, sync=False)
    third = AccountFactory(slug="initech")
    connect(third, sync=True)

    sync_all_accounts()

    assert sorted(queued(broker)) == [
        ("consent.sync_account", [account.pk, "incremental"]),
        ("consent.sync_account", [third.pk, "incremental"]),
    ]


def test_the_nightly_task_queues_full_reconciliations(account, broker):
    connect(account, sync=True)
    reconcile_all_accounts()
    assert queued(broker) == [("consent.sync_account", [account.pk, "full"])]


def test_a_cycle_message_for_an_account_with_sync_off_or_gone_does_nothing(account):
    connect(account, sync=False)
    sync_account.run(account.pk, "full")
    sync_account.run(999999, "full")
    assert not ConsentSyncCycle.objects.exists()


def test_a_cycle_message_runs_a_cycle_of_that_account(account, connection):
    sync_account.run(account.pk, "full")
    assert ConsentSyncCycle.objects.get().account == account
