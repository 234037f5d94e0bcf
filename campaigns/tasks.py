"""Celery entry points of imports, sendouts and the click drain: an import or a sendout
task takes an id, and the row's own claim (a conditional update with a lease) makes a
second delivery a no-op; the drain claims its raw clicks itself (campaigns.clicks)."""

from celery import shared_task

from . import clicks, imports, sendouts

# An import or a sendout of tens of thousands runs for minutes; the lease on its row is
# renewed after every page or batch meanwhile.
LONG_SOFT_TIME_LIMIT = 3300
LONG_TIME_LIMIT = 3600


@shared_task(
    name="campaigns.run_import",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=LONG_SOFT_TIME_LIMIT,
    time_limit=LONG_TIME_LIMIT,
)
def run_import(import_id: int) -> None:
    imports.contact_import_run(import_id=import_id)


@shared_task(
    name="campaigns.send_sendout",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=LONG_SOFT_TIME_LIMIT,
    time_limit=LONG_TIME_LIMIT,
)
def send_sendout(sendout_id: int) -> None:
    sendouts.sendout_send(sendout_id=sendout_id)


@shared_task(name="campaigns.send_due_sendouts", ignore_result=True)
def send_due_sendouts() -> int:
    """Every minute (beat): scheduled sendouts whose time has come, and retries."""
    return sendouts.sendouts_dispatch_due()


@shared_task(name="campaigns.resume_stalled_imports", ignore_result=True)
def resume_stalled_imports() -> int:
    """Every few minutes (beat): imports whose message was lost or whose worker died."""
    return imports.imports_resume_stalled()


@shared_task(name="campaigns.drain_clicks", ignore_result=True)
def drain_clicks() -> int:
    """Woken by a click (debounced) and every few seconds by beat: raw clicks and opens
    become events. A second delivery, or two drains at once, find the rows taken."""
    return clicks.raw_clicks_drain()
