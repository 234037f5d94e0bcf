"""What a hostile or broken NetServer reply costs a worker, with the hub's limits.

    .venv/bin/python bench/crm_reply_limits.py

Serves on loopback a 300 MB reply (with its Content-Length, and chunked), a gzip reply
that expands to 1 GiB, and one that trickles in a byte every half second; for each, one
SoPrincipal sign-in by the hub's client in a fresh process (as a worker makes it) and
prints that process's memory before the call and at its peak during it, the seconds the
call took and the error the client raised. CRM_MAX_REPLY_MB (20) and
CRM_DEADLINE_SECONDS (here 5, the test settings' read timeout) apply.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.crm.loopback import gzip_bomb, loopback_server, oversized, trickle  # noqa: E402

CASES = [
    ("300 MB, Content-Length", oversized(300, declared=True)),
    ("300 MB, chunked", oversized(300, declared=False)),
    ("gzip, 1 GiB expanded", gzip_bomb(1024)),
    ("trickle, 1 byte / 0.5 s", trickle(total_bytes=200, every_seconds=0.5)),
]


def main() -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "emhub.settings.test",
        "CRM_DEADLINE_SECONDS": os.environ.get("CRM_DEADLINE_SECONDS", "5"),
    }
    print(f"{'reply':<26} {'before MB':>10} {'peak MB':>8} {'seconds':>8}  error")
    for name, behaviour in CASES:
        with loopback_server() as server:
            server.behaviour["*"] = behaviour
            out = subprocess.run(  # noqa: S603 - our own interpreter and module
                [
                    sys.executable,
                    "-m",
                    "tests.crm.reply_memory",
                    f"{server.url}/Remote/Services88/",
                ],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{name:<26} {figures['before_mb']:>10} {figures['peak_mb']:>8} "
            f"{figures['seconds']:>8}  {figures['error'][:90]}"
        )


if __name__ == "__main__":
    main()
