"""gunicorn's access log without secrets: the web server's log is read by more people and
kept longer than anything else, so no panel token, `<usec>` or sign-in code may reach it.

gunicorn.conf.py (read by gunicorn from the working directory, in both run modes) names
``RedactingLogger``. Query parameters in ``SECRET_PARAMETERS`` keep their name and lose
their value, in the request line, the query string and the Referer; request headers that
carry credentials are never written.
"""

from __future__ import annotations

import re

from gunicorn.glogging import Logger

# usec: SuperOffice's panel secret; pt: a panel token (the hub never puts one in a URL,
# a stale link might); code, state, id_token, access_token: OpenID Connect answers.
SECRET_PARAMETERS = ("usec", "pt", "code", "state", "id_token", "access_token")
SECRET_HEADERS = ("authorization", "cookie", "x-panel-token", "x-csrftoken")
REDACTED = "[redacted]"

_SECRET_QUERY = re.compile(
    r"(?i)(^|[?&;]|%3F|%26)((?:" + "|".join(SECRET_PARAMETERS) + r")(?:=|%3D))(?:(?!%26)[^&;#\s])*"
)


def redact_url(text: str) -> str:
    """``text`` (a URL, a query string or a request line) with secret parameters blanked."""
    if not text:
        return text
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "q", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact_url(atoms[key])
        for name in SECRET_HEADERS:
            if f"{{{name}}}i" in atoms:
                atoms[f"{{{name}}}i"] = REDACTED
        return atoms
