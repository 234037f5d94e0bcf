"""The automation engine's figures, measured in one run.

    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... \
        .venv/bin/python bench/automations.py [--ingest 5000] [--runs 1000] [--paced 200] \
        [--scale-runs 300] [--quick] [--json PATH]

``--quick`` measures fewer events and runs; ``--json PATH`` also writes the figures to PATH as
``{"rows": [{"figure", "value", "unit", "target", "met"}]}``.

Builds a throwaway PostgreSQL database (the test database name of DATABASE_URL with a
``_bench_automations`` suffix), starts the NetServer simulator and two Celery worker
processes (each ``--concurrency 1``) in subprocesses on the broker of CELERY_BROKER_URL,
and measures:

1. batch ingest: ``events_ingest`` of batches of 1,000 events into a campaign with one
   automation (events, contacts and runs written, wake-ups published): events per second;
2. end to end: ``--runs`` create-task runs executed by the two workers against the
   simulator, from the first event in to the last run done: runs per second;
3. the floor: the same two workers executing as many empty Celery tasks
   (``celery.accumulate``) from the same broker: tasks per second;
4. latency: ``--paced`` events sent at a steady 5 per second, each starting a create-sale
   and a create-task run (below capacity, so no backlog), event
   received -> CRM object recorded: p50 / p95;
5. SOAP calls per run for create sale and create task (authentication excluded: one per
   ticket lifetime);
6. the scale-out curve: ``--scale-runs`` create-task runs end to end with 1, 2 and 4 worker
   processes (each ``--concurrency 1``), each beside the floor of the same workers: runs per
   second and empty tasks per second per point;
7. what a run costs a worker: ``--loop-runs`` create-task runs whose messages this process
   takes from the broker and executes one after another as a worker process does, every
   query captured: queries, call-log inserts, messages, CPU milliseconds (this process
   and the simulator), wall milliseconds and the milliseconds spent in queries per run.

Start-up and shutdown (database, simulator, workers) are bench/harness.py's.
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

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from automations.models import Automation, AutomationType, Run, RunStatus  # noqa: E402
from bench.harness import (  # noqa: E402
    connect_account,
    make_contacts,
    process_cpu_seconds,
    purge,
    queue_length,
    start_simulator,
    start_workers,
    stop_processes,
    throwaway_database,
    wait_for,
)
from campaigns.models import Campaign, Contact, EventType  # noqa: E402
from campaigns.services import events_ingest  # noqa: E402
from crm.models import CrmCall  # noqa: E402
from emhub.celery import app  # noqa: E402
from emhub.models import Account  # noqa: E402

PACED_RATE = 5


def floor_rate_of(tasks: int) -> float:
    """Empty Celery tasks per second through the broker and the workers now running."""
    started = time.perf_counter()
    with app.producer_or_acquire() as producer:
        for _ in range(tasks):
            app.send_task("celery.accumulate", args=(1,), producer=producer)
    wait_for(lambda: queue_length() == 0, 300, "empty tasks")
    return tasks / (time.perf_counter() - started)


def scale_out_point(account: Account, *, workers: int, runs: int, persons: int) -> tuple:
    """(runs/s, floor tasks/s) with `workers` worker processes of concurrency 1."""
    procs = start_workers(workers, name=f"scale{workers}-")
    try:
        time.sleep(3)  # let the workers connect
        campaign = Campaign.objects.create(account=account, name=f"Scale-out {workers}")
        automation = Automation.objects.create(
            account=account,
            campaign=campaign,
            name=f"Task x{workers}",
            type=AutomationType.CREATE_TASK,
            trigger_event_type=EventType.EMAIL_OPENED,
            settings={"activity_type_id": 1, "owner_id": 2, "description": "Call {email}"},
        )
        contacts = make_contacts(account, runs, persons, f"scale{workers}-")
        started = time.perf_counter()
        for start in range(0, runs, 1000):
            events_ingest(
                account=account,
                events=events(campaign, contacts[start : start + 1000], f"scale{workers}-{start}"),
            )
        wait_for(lambda: done_count(automation) >= runs, 900, f"runs with {workers} workers")
        rate = runs / (time.perf_counter() - started)
        return rate, floor_rate_of(runs)
    finally:
        stop_processes(procs)


def worker_loop(
    account: Account, *, runs: int, persons: int, sim_proc, prefix: str = "loop"
) -> dict:
    """What a run costs a worker, measured in this process: `runs` create-task runs of one
    account taken in, then the broker's messages executed here one after another as a
    worker process executes them (call log buffered, flushed after each task), with every
    query captured. Returns queries, call-log inserts, messages and CPU milliseconds (this
    process and the simulator) per run."""
    from crm.call_log import call_log_buffering, call_log_flush

    campaign = Campaign.objects.create(account=account, name="Worker loop")
    automation = Automation.objects.create(
        account=account,
        campaign=campaign,
        name="Task loop",
        type=AutomationType.CREATE_TASK,
        trigger_event_type=EventType.EMAIL_OPENED,
        settings={"activity_type_id": 1, "owner_id": 2, "description": "Call {email}"},
    )
    contacts = make_contacts(account, runs, persons, prefix)
    purge()
    for start in range(0, runs, 1000):
        events_ingest(
            account=account,
            events=events(campaign, contacts[start : start + 1000], f"{prefix}{start}"),
        )
    call_log_buffering(on=True)
    messages = 0
    cpu_started, sim_started = time.process_time(), process_cpu_seconds(sim_proc)
    wall_started = last_done = time.perf_counter()
    try:
        with (
            CaptureQueriesContext(connection) as queries,
            app.connection_for_write() as conn,
        ):
            queue = conn.SimpleQueue("celery", no_ack=True)
            while True:
                try:
                    message = queue.get(timeout=1)
                except queue.Empty:
                    break
                task_args, task_kwargs, _embed = message.decode()
                app.tasks[message.headers["task"]](*task_args, **task_kwargs)
                call_log_flush()
                messages += 1
                last_done = time.perf_counter()
            queue.close()
    finally:
        call_log_buffering(on=False)
    wall = last_done - wall_started  # not the last second's wait for no message
    cpu = time.process_time() - cpu_started
    sim_cpu = process_cpu_seconds(sim_proc) - sim_started
    done = done_count(automation)
    if done < runs:
        raise SystemExit(f"worker loop: {done} of {runs} runs done")
    statements = [q["sql"] for q in queries.captured_queries]
    # On PostgreSQL a run's calls go in with its outcome (WITH logged AS (INSERT ...) ...).
    call_log = sum(1 for sql in statements if 'INSERT INTO "crm_crmcall"' in sql)
    return {
        "queries": len(statements) / runs,
        "call_log_inserts": call_log / runs,
        "messages": messages / runs,
        "cpu_ms": cpu * 1000 / runs,
        "sim_cpu_ms": sim_cpu * 1000 / runs,
        "wall_ms": wall * 1000 / runs,
        "sql_ms": sum(float(q["time"]) for q in queries.captured_queries) * 1000 / runs,
    }


def events(campaign: Campaign, contacts: list[Contact], prefix: str) -> list[dict]:
    return [
        {
            "event_id": f"{prefix}-{i}",
            "type": EventType.EMAIL_OPENED,
            "campaign": campaign,
            "email": c.email,
        }
        for i, c in enumerate(contacts)
    ]


def done_count(automation: Automation) -> int:
    return Run.objects.filter(automation=automation, status=RunStatus.DONE).count()


def row(figure: str, value: float, unit: str, target: str = "", met: bool | None = None) -> dict:
    """One figure in the shape the one-table bench reads."""
    return {"figure": figure, "value": float(value), "unit": unit, "target": target, "met": met}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ingest", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--paced", type=int, default=200)
    parser.add_argument("--persons", type=int, default=500)
    parser.add_argument(
        "--scale-runs",
        type=int,
        default=300,
        help="runs per point of the scale-out curve (1, 2 and 4 worker processes)",
    )
    parser.add_argument(
        "--loop-runs",
        type=int,
        default=300,
        help="runs of the in-process worker loop (queries, CPU per run); at most 1,000",
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer events and runs, for the one-table bench"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures here as rows")
    args = parser.parse_args()
    if args.quick:
        # The end-to-end and scale-out runs are enough for several seconds of steady work
        # each: with fewer, the first claims and the last run's wait weigh in the figure.
        args.ingest, args.runs, args.paced, args.scale_runs = 2000, 1000, 50, 500

    with throwaway_database("_bench_automations"):
        measure(args)


def measure(args) -> None:
    sim_proc, port = start_simulator(args.persons)
    workers: list[subprocess.Popen] = []
    try:
        account = Account.objects.create(slug="bench", name="Bench")
        connect_account(account, port)
        purge()

        # 1. ingest, no worker running: what the API's transaction costs.
        ingest_campaign = Campaign.objects.create(account=account, name="Ingest")
        Automation.objects.create(
            account=account,
            campaign=ingest_campaign,
            name="Select",
            is_enabled=True,
            type=AutomationType.ADD_TO_SELECTION,
            trigger_event_type=EventType.EMAIL_OPENED,
            settings={"selection_id": 1},
        )
        contacts = make_contacts(account, args.ingest, args.persons, "ingest")
        started = time.perf_counter()
        for start in range(0, args.ingest, 1000):
            events_ingest(
                account=account,
                events=events(ingest_campaign, contacts[start : start + 1000], f"in{start}"),
            )
        ingest_seconds = time.perf_counter() - started
        ingest_runs = Run.objects.filter(automation__campaign=ingest_campaign).count()
        Run.objects.filter(automation__campaign=ingest_campaign).update(status=RunStatus.CANCELLED)
        purge()

        # What a run costs a worker (queries, call-log inserts, messages, CPU), in process.
        loop = worker_loop(account, runs=args.loop_runs, persons=args.persons, sim_proc=sim_proc)
        purge()

        # 2. end to end with two worker processes.
        workers = start_workers(2)
        time.sleep(3)  # let both workers connect
        e2e_campaign = Campaign.objects.create(account=account, name="End to end")
        task_auto = Automation.objects.create(
            account=account,
            campaign=e2e_campaign,
            name="Task",
            type=AutomationType.CREATE_TASK,
            trigger_event_type=EventType.EMAIL_OPENED,
            settings={"activity_type_id": 1, "owner_id": 2, "description": "Call {email}"},
        )
        contacts = make_contacts(account, args.runs, args.persons, "e2e")
        started = time.perf_counter()
        for start in range(0, args.runs, 1000):
            events_ingest(
                account=account,
                events=events(e2e_campaign, contacts[start : start + 1000], f"e2e{start}"),
            )
        wait_for(lambda: done_count(task_auto) >= args.runs, 900, "end-to-end runs")
        e2e_seconds = time.perf_counter() - started

        # 3. the floor: empty tasks through the same broker and the same two workers.
        started = time.perf_counter()
        with app.producer_or_acquire() as producer:
            for _ in range(args.runs):
                app.send_task("celery.accumulate", args=(1,), producer=producer)
        wait_for(lambda: queue_length() == 0, 300, "empty tasks")
        floor_seconds = time.perf_counter() - started

        # 4. paced latency, below the workers' capacity so there is no backlog.
        paced_campaign = Campaign.objects.create(account=account, name="Paced")
        sale_auto = Automation.objects.create(
            account=account,
            campaign=paced_campaign,
            name="Sale",
            type=AutomationType.CREATE_SALE,
            trigger_event_type=EventType.EMAIL_OPENED,
            settings={"source_id": 1, "rating_id": 1, "owner_id": 2, "description": "Lead"},
        )
        paced_task = Automation.objects.create(
            account=account,
            campaign=paced_campaign,
            name="Task paced",
            type=AutomationType.CREATE_TASK,
            trigger_event_type=EventType.EMAIL_OPENED,
            settings={"activity_type_id": 1, "owner_id": 2, "description": "Call"},
        )
        contacts = make_contacts(account, args.paced, args.persons, "paced")
        started = time.perf_counter()
        for i, contact in enumerate(contacts):
            events_ingest(account=account, events=events(paced_campaign, [contact], f"paced{i}"))
            time.sleep(max(0.0, started + (i + 1) / PACED_RATE - time.perf_counter()))
        wait_for(
            lambda: done_count(sale_auto) + done_count(paced_task) >= 2 * args.paced,
            300,
            "paced runs",
        )
        latencies = sorted(
            (r.finished_at - r.event.received_at).total_seconds()
            for r in Run.objects.filter(automation__campaign=paced_campaign).select_related("event")
        )
        p50 = statistics.median(latencies)
        p95 = latencies[int(0.95 * (len(latencies) - 1))]

        # 5. SOAP calls per run (authentication excluded).
        def calls_per_run(automation: Automation) -> float:
            # A run's own calls, and the persons read ahead for a lane's runs, counted for
            # the automation of the lane's first run (automations.services._runs_execute).
            keys = list(Run.objects.filter(automation=automation).values_list("key", flat=True))
            if not keys:
                return 0.0
            correlations = [*keys, *(f"read-ahead:{key}" for key in keys)]
            calls = (
                CrmCall.objects.filter(correlation__in=correlations)
                .exclude(agent="SoPrincipal")
                .count()
            )
            return calls / len(keys)

        sale_calls, task_calls = calls_per_run(sale_auto), calls_per_run(task_auto)
        auths = CrmCall.objects.filter(agent="SoPrincipal").count()

        # 6. scale-out: the same runs with 1, 2 and 4 worker processes, each beside the
        # floor of those workers, so the figure for a machine with more cores can be read off.
        stop_processes(workers)
        workers = []
        curve = {
            n: scale_out_point(account, workers=n, runs=args.scale_runs, persons=args.persons)
            for n in (1, 2, 4)
        }

        e2e_rate = args.runs / e2e_seconds
        floor_rate = args.runs / floor_seconds
        print("emhub automation engine — one run")
        print(
            f"  batch ingest:       {args.ingest / ingest_seconds:8.0f} events/s "
            f"({args.ingest} events in batches of 1,000, {ingest_runs} runs written; "
            f"target >= 1,000)"
        )
        print(
            f"  end to end:         {e2e_rate:8.1f} runs/s "
            f"({args.runs} create-task runs, 2 worker processes, simulator over HTTP)"
        )
        print(
            f"  floor:              {floor_rate:8.1f} empty tasks/s (same broker, same 2 workers)"
        )
        print(f"  end to end / floor: {e2e_rate / floor_rate:8.2f}")
        print(
            f"  latency event -> CRM object at {PACED_RATE} events/s x 2 automations "
            f"({2 * args.paced} runs): "
            f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"
        )
        print(
            f"  SOAP calls per run: create sale {sale_calls:.2f}, create task "
            f"{task_calls:.2f} (target <= 2); authentications in the whole run: {auths}"
        )
        print(
            f"  per run, in-process worker loop ({args.loop_runs} create-task runs): "
            f"{loop['queries']:.2f} queries, {loop['call_log_inserts']:.2f} call-log inserts, "
            f"{loop['messages']:.2f} messages, CPU {loop['cpu_ms']:.1f} ms worker + "
            f"{loop['sim_cpu_ms']:.1f} ms simulator; wall {loop['wall_ms']:.1f} ms, of which "
            f"{loop['sql_ms']:.1f} ms in queries"
        )
        print(f"  scale-out ({args.scale_runs} create-task runs per point, concurrency 1 each):")
        for n, (rate, floor) in curve.items():
            print(
                f"    {n} worker process{'es' if n > 1 else '  '}: {rate:8.1f} runs/s, "
                f"floor {floor:8.1f} tasks/s, ratio {rate / floor:.2f}"
            )
        if args.json:
            ratio = e2e_rate / floor_rate
            rows = [
                row("automations: batch ingest", args.ingest / ingest_seconds, "events/s"),
                row("automations: end to end", e2e_rate, "runs/s"),
                row("automations: floor (empty Celery tasks)", floor_rate, "tasks/s"),
                row("automations: end to end / floor", ratio, "ratio", ">= 0.3", ratio >= 0.3),
                row("automations: latency p50", p50 * 1000, "ms"),
                row("automations: latency p95", p95 * 1000, "ms"),
                row(
                    "automations: SOAP calls per create-task run",
                    task_calls,
                    "calls",
                    "<= 2",
                    task_calls <= 2,
                ),
            ]
            rows += [
                row("automations: queries per run (worker loop)", loop["queries"], "queries"),
                row(
                    "automations: call-log inserts per run (worker loop)",
                    loop["call_log_inserts"],
                    "inserts",
                ),
                row("automations: messages per run (worker loop)", loop["messages"], "messages"),
                row("automations: worker CPU per run (worker loop)", loop["cpu_ms"], "ms"),
                row("automations: wall time per run (worker loop)", loop["wall_ms"], "ms"),
                row("automations: query time per run (worker loop)", loop["sql_ms"], "ms"),
            ]
            for n, (rate, floor) in curve.items():
                rows += [
                    row(f"automations: scale-out, {n} worker processes", rate, "runs/s"),
                    row(f"automations: scale-out floor, {n} worker processes", floor, "tasks/s"),
                ]
            Path(args.json).write_text(json.dumps({"rows": rows}, indent=2))
    finally:
        stop_processes(workers)
        stop_processes([sim_proc], timeout=10)


if __name__ == "__main__":
    main()
