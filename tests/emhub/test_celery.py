"""The Celery app runs real tasks on a real worker over Redis."""

import pytest
from celery.contrib.testing.worker import start_worker

from emhub.celery import app
from emhub.models import WorkerHeartbeat
from emhub.tasks import record_heartbeat


@pytest.mark.django_db(transaction=True)
def test_a_worker_on_redis_runs_the_heartbeat_task():
    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        record_heartbeat.delay()
        for _ in range(100):
            if WorkerHeartbeat.objects.exists():
                break
            import time

            time.sleep(0.1)
    assert WorkerHeartbeat.objects.count() == 1


def test_the_celery_app_only_speaks_json_and_has_time_limits():
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_serializer == "json"
    assert app.conf.task_time_limit and app.conf.task_soft_time_limit
    assert "emhub-heartbeat" in app.conf.beat_schedule
