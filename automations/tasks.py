"""Celery tasks: thin wake-ups. The run ledger holds the work; see automations.services."""

from celery import shared_task

from . import services


# acks_late: a message whose worker died is delivered again; the claim in run_execute
# makes a second delivery a no-op when the first one finished.
@shared_task(name="automations.execute_run", acks_late=True, ignore_result=True)
def execute_run(run_id: int) -> str:
    return services.run_execute(run_id=run_id).status


# One wake-up for a few runs (a click's actions, a small batch); acks_late as above.
# account_id: the runs' account has runs held back; its next ones go out after these.
@shared_task(name="automations.execute_runs", acks_late=True, ignore_result=True)
def execute_runs(run_ids: list[int], account_id: int | None = None) -> list[str]:
    outcomes = services.runs_execute(run_ids=run_ids, account_id=account_id)
    return [outcome.status for outcome in outcomes]


@shared_task(name="automations.dispatch_runs", ignore_result=True)
def dispatch_runs(run_ids: list[int]) -> int:
    """Fan-out: one message from the API request becomes the runs' wake-ups here."""
    return services.runs_dispatch(run_ids=run_ids, fan_out=False)


@shared_task(name="automations.sweep_runs", ignore_result=True)
def sweep_runs() -> int:
    return services.runs_sweep()
