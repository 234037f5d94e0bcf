"""Fairness between accounts on one broker and one set of workers, measured in one run.

    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... \
        .venv/bin/python bench/fairness.py [--backlog 10000] [--paced 40] [--quick] [--json PATH]

``--quick`` uses a backlog of 1,000 runs and 20 paced events (under two minutes); ``--json
PATH`` also writes the figures to PATH as ``{"rows": [{"figure", "value", "unit",
"target", "met"}]}``.

Builds a throwaway PostgreSQL database (the test database name of DATABASE_URL with a
``_bench_fairness`` suffix), starts two NetServer simulators (one SuperOffice tenant per
account, each answering every call after 500 ms) and two Celery worker processes
(``--concurrency 4`` each) on the broker of CELERY_BROKER_URL; this process plays beat
(the sweeper every 15 s). Then:

1. alone: account B receives ``--paced`` events one a second, each starting a create-task
   run; event received -> CRM object recorded: p50 / p95;
2. beside a backlog: account A takes in ``--backlog`` events at once (batches of 1,000,
   one create-task run each), then B receives the same paced events again: p50 / p95,
   and how many of A's runs were done meanwhile (A is capped at
   CRM_MAX_CONCURRENT_CALLS_PER_ACCOUNT calls at once).

Target: B's p95 beside the backlog under 2x its p95 alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emhub.settings.test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from automations import services as automation_services  # noqa: E402
from automations.models import Automation, AutomationType, Run, RunStatus  # noqa: E402
from bench.harness import (  # noqa: E402
    connect_account,
    make_contacts,
    purge,
    start_simulator,
    start_workers,
    stop_processes,
    throwaway_database,
    wait_for,
)
from campaigns.models import Campaign, Contact, EventType  # noqa: E402
from campaigns.services import events_ingest  # noqa: E402
from emhub.models import Account  # noqa: E402

CALL_SECONDS = 0.5
PERSONS = 500
SWEEP_SECONDS = 15.0


def sweep_every(seconds: float):
    """A `between` for wait_for: this process plays beat, the sweeper every `seconds`."""
    next_sweep = time.monotonic() + seconds

    def tick() -> None:
        nonlocal next_sweep
        if time.monotonic() > next_sweep:
            automation_services.runs_sweep()
            next_sweep = time.monotonic() + seconds

    return tick


def account_with_task_automation(slug: str, port: int) -> tuple[Account, Campaign, Automation]:
    account = Account.objects.create(slug=slug, name=slug.title())
    connect_account(account, port)
    campaign = Campaign.objects.create(account=account, name="Fairness")
    automation = Automation.objects.create(
        account=account,
        campaign=campaign,
        name="Task",
        type=AutomationType.CREATE_TASK,
        trigger_event_type=EventType.EMAIL_OPENED,
        settings={"activity_type_id": 1, "owner_id": 2, "description": "Call {email}"},
    )
    return account, campaign, automation


def ingest(account: Account, campaign: Campaign, contacts: list[Contact], prefix: str) -> None:
    for start in range(0, len(contacts), 1000):
        events_ingest(
            account=account,
            events=[
                {
                    "event_id": f"{prefix}-{start + i}",
                    "type": EventType.EMAIL_OPENED,
                    "campaign": campaign,
                    "email": c.email,
                }
                for i, c in enumerate(contacts[start : start + 1000])
            ],
        )


def paced_latencies(
    account: Account, campaign: Campaign, automation: Automation, n: int, prefix: str
) -> list[float]:
    """n events one a second; seconds from each event received to its run's CRM object."""
    contacts = make_contacts(account, n, PERSONS, prefix)
    started = time.perf_counter()
    sweep = sweep_every(SWEEP_SECONDS)
    for i, contact in enumerate(contacts):
        ingest(account, campaign, [contact], prefix=f"{prefix}{i}")
        sweep()
        time.sleep(max(0.0, started + (i + 1) - time.perf_counter()))
    runs = Run.objects.filter(automation=automation, contact__in=contacts)
    wait_for(
        lambda: runs.filter(status=RunStatus.DONE).count() >= n,
        300,
        f"{prefix} runs",
        between=sweep_every(SWEEP_SECONDS),
    )
    return sorted(
        (r.finished_at - r.event.received_at).total_seconds() for r in runs.select_related("event")
    )


def p95(values: list[float]) -> float:
    return values[int(0.95 * (len(values) - 1))]


def row(figure: str, value: float, unit: str, target: str = "", met: bool | None = None) -> dict:
    """One figure in the shape the one-table bench reads."""
    return {"figure": figure, "value": float(value), "unit": unit, "target": target, "met": met}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--paced", type=int, default=40)
    parser.add_argument(
        "--quick", action="store_true", help="a smaller backlog, for the one-table bench"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures here as rows")
    args = parser.parse_args()
    if args.quick:
        args.backlog, args.paced = 1000, 20

    with throwaway_database("_bench_fairness"):
        measure(args)


def measure(args) -> None:
    simulators = [start_simulator(PERSONS, delay=CALL_SECONDS) for _ in range(2)]
    workers: list[subprocess.Popen] = []
    try:
        account_a, campaign_a, automation_a = account_with_task_automation(
            "backlogged", simulators[0][1]
        )
        account_b, campaign_b, automation_b = account_with_task_automation(
            "fresh", simulators[1][1]
        )
        purge()
        workers = start_workers(2, concurrency=4, name="fair")
        time.sleep(3)  # let both workers connect
        # Each account signs in once before anything is timed.
        paced_latencies(account_a, campaign_a, automation_a, 1, "warm-a")
        paced_latencies(account_b, campaign_b, automation_b, 1, "warm-b")

        alone = paced_latencies(account_b, campaign_b, automation_b, args.paced, "alone")

        backlog_contacts = make_contacts(account_a, args.backlog, PERSONS, "backlog")
        ingest(account_a, campaign_a, backlog_contacts, "backlog")
        backlog_runs = Run.objects.filter(automation=automation_a, contact__in=backlog_contacts)
        beside_started = time.perf_counter()
        beside = paced_latencies(account_b, campaign_b, automation_b, args.paced, "beside")
        beside_seconds = time.perf_counter() - beside_started
        a_done = backlog_runs.filter(status=RunStatus.DONE).count()

        ratio = p95(beside) / p95(alone)
        cap = settings.CRM_MAX_CONCURRENT_CALLS_PER_ACCOUNT
        print("emhub fairness between accounts — one run")
        print(
            f"  SuperOffice answers every call after {CALL_SECONDS * 1000:.0f} ms; "
            f"2 worker processes x 4; cap {cap} calls per account"
        )
        print(
            f"  account B alone:                     p50 {statistics.median(alone) * 1000:6.0f} ms,"
            f" p95 {p95(alone) * 1000:6.0f} ms ({args.paced} events, one a second)"
        )
        print(
            f"  account B beside A's {args.backlog:>6,} backlog: "
            f"p50 {statistics.median(beside) * 1000:6.0f} ms, p95 {p95(beside) * 1000:6.0f} ms"
        )
        print(f"  p95 beside / alone:                  {ratio:6.2f} (target < 2)")
        print(
            f"  account A meanwhile: {a_done} of {args.backlog} backlog runs done in "
            f"{beside_seconds:.0f} s ({a_done / beside_seconds:.1f} runs/s)"
        )
        if args.json:
            backlog = f"{args.backlog:,}-run backlog"
            rows = [
                row("fairness: account B latency p50 alone", statistics.median(alone) * 1000, "ms"),
                row("fairness: account B latency p95 alone", p95(alone) * 1000, "ms"),
                row(
                    f"fairness: account B latency p50 beside A's {backlog}",
                    statistics.median(beside) * 1000,
                    "ms",
                ),
                row(
                    f"fairness: account B latency p95 beside A's {backlog}",
                    p95(beside) * 1000,
                    "ms",
                ),
                row(
                    f"fairness: account B p95 beside A's {backlog} / alone",
                    ratio,
                    "ratio",
                    "< 2",
                    ratio < 2,
                ),
                row(
                    f"fairness: account A's backlog runs meanwhile ({cap} calls at once)",
                    a_done / beside_seconds,
                    "runs/s",
                ),
            ]
            Path(args.json).write_text(json.dumps({"rows": rows}, indent=2))
    finally:
        stop_processes(workers)
        stop_processes([proc for proc, _port in simulators], timeout=10)
        purge()


if __name__ == "__main__":
    main()
