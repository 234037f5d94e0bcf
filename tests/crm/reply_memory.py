"""Run as ``python -m tests.crm.reply_memory URL``: one NetServer call (SoPrincipal sign-in)
by the hub's client to URL in this fresh process, as a worker makes it; prints JSON with
the process's peak memory before and after, the error the client raised, and the seconds
the call took. Used by the tests and bench/crm_reply_limits.py."""

from __future__ import annotations

import json
import os
import resource
import sys
import time


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> None:
    # Linux: writing 5 to clear_refs resets the peak (VmHWM) to the present size, so the
    # peak read afterwards is the call's, not that of loading Django and zeep.
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def main(url: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emhub.settings.test")
    import django

    django.setup()
    from crm.client import ConnectionSettings, NetServerClient, bundled_wsdl
    from crm.client.transport import zeep_client
    from crm.errors import CrmError

    # Everything a worker holds before the call: Django, zeep, the parsed WSDL.
    zeep_client(bundled_wsdl("SoPrincipal"), 5.0)
    _reset_peak()
    before = _status_mb("VmRSS")
    client = NetServerClient(
        connection=ConnectionSettings(
            base_url=url, auth_mode="onsite", username="u", password="p", application_token="t"
        ),
        timeout=5.0,
    )
    started = time.monotonic()
    error = ""
    try:
        client.whoami(fresh=True)
    except CrmError as exc:
        error = f"{type(exc).__name__}: {exc}"
    print(
        json.dumps(
            {
                "before_mb": round(before, 1),
                "peak_mb": round(_status_mb("VmHWM"), 1),
                "error": error,
                "seconds": round(time.monotonic() - started, 2),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
