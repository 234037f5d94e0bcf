"""Where a tracked-link click's CPU goes: `/t/` and the static redirect called through the
WSGI handler (the middleware, the view, PostgreSQL; no socket, no HTTP parsing), as
gunicorn's workers call it.

    .venv/bin/python bench/clicks_profile.py [--requests 2000] [--profile N]

Prints the CPU per request (time.process_time, best of five rounds) of each, and with
``--profile N`` the N costliest functions of /t/ by cProfile's cumulative time. Uses a
throwaway PostgreSQL database (DATABASE_URL's name plus `_clicks_profile`) with the data
of bench/clicks.py. Not a test.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.clicks_settings"

import django  # noqa: E402

django.setup()

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.db import connection  # noqa: E402

from bench.clicks import BROWSER, STATIC, STATIC_TARGET, setup_data  # noqa: E402


def environ(path: str) -> dict:
    path, _, query = path.partition("?")
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_USER_AGENT": BROWSER,
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def call(app, path: str) -> tuple[str, dict]:
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(headers)

    body = app(environ(path), start_response)
    for _ in body:
        pass
    body.close()
    return seen["status"], seen["headers"]


def cpu_per_request(app, paths: list[str]) -> float:
    start = time.process_time()
    for path in paths:
        call(app, path)
    return (time.process_time() - start) / len(paths) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    args = parser.parse_args()
    connection.settings_dict["TEST"]["NAME"] = f"{connection.settings_dict['NAME']}_clicks_profile"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        paths = setup_data(args.requests)[: args.requests]
        app = WSGIHandler()
        status, headers = call(app, STATIC)
        assert (status, headers["Location"]) == ("302 Found", STATIC_TARGET), (status, headers)
        for path in paths[:50]:
            assert call(app, path)[0] == "302 Found"
        clicks, floor = [], []
        for _ in range(5):
            clicks.append(cpu_per_request(app, paths))
            floor.append(cpu_per_request(app, [STATIC] * len(paths)))
        print(
            f"CPU per request through the WSGI handler (best of 5 x {len(paths)}): "
            f"/t/ {min(clicks):.3f} ms, static redirect {min(floor):.3f} ms"
        )
        if args.profile:
            profile = cProfile.Profile(time.process_time)
            profile.enable()
            for path in paths:
                call(app, path)
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(args.profile)
    finally:
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
