"""Celery entry points of the panels: they take ids and call one service."""

from celery import shared_task

from . import services


@shared_task(name="leads.run_bulk_match", acks_late=True, ignore_result=True)
def run_bulk_match(bulk_match_id: int) -> None:
    # Safe to deliver twice: the service claims the row, and a contact already matched
    # is not matched again.
    services.bulk_match_run(bulk_match_id=bulk_match_id)
