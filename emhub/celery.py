"""The Celery app. Messages only wake workers up: the database holds the work (see DESIGN)."""

import os

from celery import Celery
from celery.signals import task_postrun, worker_process_init, worker_process_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emhub.settings.local")

app = Celery("emhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# A worker process writes its SuperOffice call log in bulk (crm.call_log): buffered from
# its start, written whenever a run's outcome is recorded, at the end of every task and
# when the process shuts down. The pool's children are where tasks run (prefork, the
# pool the hub runs); a process without them writes each call as it is made.
@worker_process_init.connect
def _call_log_buffered(**_kwargs) -> None:
    from crm.call_log import call_log_buffering

    call_log_buffering(on=True)


@task_postrun.connect
def _call_log_flush_after_task(**_kwargs) -> None:
    from crm.call_log import call_log_flush

    call_log_flush()


@worker_process_shutdown.connect
def _call_log_flush_at_shutdown(**_kwargs) -> None:
    from crm.call_log import call_log_flush

    call_log_flush()
