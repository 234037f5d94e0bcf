"""Every benchmark in one run, and one table of their figures (`make bench`).

    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... .venv/bin/python bench/run_all.py \
        [--only ingest clicks] [--full]

Runs each bench below in its own process, one after the other (they share the machine's
cores), with its short sizes (``--quick``; ``--full`` drops it where a bench has one) and
``--json PATH``; each prints its own figures as it goes. Then one table of every figure:
value, unit, the target and whether it was met, with the machine's load average before
and after (the figures are only comparable on a quiet machine; the ratios, each against
a floor measured in the same bench, less so). A bench that fails or times out is a row
saying so, and the run exits 1; a target not met does not fail it (not a test).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# (name, script, quick arguments, timeout in seconds). The engine's figures, ingest, clicks,
# panels, the SOAP client and fairness; fairness.py is run where it exists.
BENCHES = [
    ("automations", "bench/automations.py", ["--quick"], 420),
    ("ingest", "bench/ingest.py", ["--quick"], 180),
    ("clicks", "bench/clicks.py", ["--quick"], 300),
    ("panels", "bench/panels.py", ["--quick"], 300),
    ("SOAP client", "bench/crm_calls.py", ["--quick"], 120),
    ("fairness", "bench/fairness.py", ["--quick"], 300),
]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def value_text(value: float) -> str:
    if value == int(value) and abs(value) < 1000:
        return f"{value:.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def run_one(name: str, script: str, args: list[str], timeout: int) -> tuple[list[dict], float]:
    """The bench's rows, or one row saying it failed; and its seconds."""
    with tempfile.TemporaryDirectory(prefix="emhub-bench-") as tmp:
        out = Path(tmp) / "rows.json"
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "emhub.settings.test"}
        print(f"\n== {script} {' '.join(args)}  (load {load()})", flush=True)
        started = time.monotonic()
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, script, *args, "--json", str(out)], cwd=REPO_ROOT, env=env
        )
        try:
            code = process.wait(timeout)
            problem = None if code == 0 else f"exit {code}"
        except subprocess.TimeoutExpired:
            # An interrupt, so the bench's own clean-up runs: its servers, workers and
            # throwaway database go with it.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            problem = f"timed out after {timeout} s"
        seconds = time.monotonic() - started
        if problem is None and not out.exists():
            problem = "wrote no figures"
        if problem:
            return [{"figure": f"{name}: {problem}", "failed": True}], seconds
        return json.loads(out.read_text())["rows"], seconds


def table(rows: list[dict]) -> str:
    width = max(len(r["figure"]) for r in rows)
    lines = [f"{'figure':<{width}}  {'value':>10}  {'unit':<9} {'target':<10} met"]
    lines.append("-" * len(lines[0]))
    for r in rows:
        if r.get("failed"):
            lines.append(f"{r['figure']:<{width}}  {'':>10}  {'':<9} {'':<10} FAILED")
            continue
        met = {True: "yes", False: "NO", None: ""}[r.get("met")]
        lines.append(
            f"{r['figure']:<{width}}  {value_text(r['value']):>10}  {r['unit']:<9} "
            f"{r.get('target') or '':<10} {met}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these benches only")
    parser.add_argument("--full", action="store_true", help="each bench at its full sizes")
    args = parser.parse_args()

    started, load_before = time.monotonic(), load()
    rows: list[dict] = []
    timings: list[str] = []
    for name, script, quick, timeout in BENCHES:
        if args.only and name not in args.only and Path(script).stem not in args.only:
            continue
        if not (REPO_ROOT / script).exists():
            continue
        extra = [] if args.full else quick
        bench_rows, seconds = run_one(name, script, extra, timeout * (4 if args.full else 1))
        rows.extend(bench_rows)
        timings.append(f"{name} {seconds:.0f} s")
    minutes = (time.monotonic() - started) / 60
    print(f"\n== emhub benchmarks: {len(rows)} figures in {minutes:.1f} min")
    print(
        f"   load average (1, 5, 15 min) before {load_before}, after {load()}; "
        f"{os.cpu_count()} CPUs"
    )
    print(f"   {', '.join(timings)}\n")
    if rows:
        print(table(rows))
    if any(r.get("failed") for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
