"""gunicorn's access log keeps no panel token, <usec> or sign-in code."""

from datetime import timedelta
from types import SimpleNamespace

from gunicorn.config import Config

from emhub.access_log import RedactingLogger, redact_url


def _line(environ_extra: dict, headers=()) -> str:
    config = Config()
    config.set("accesslog", "-")
    logger = RedactingLogger(config)
    environ = {
        "REQUEST_METHOD": "GET",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        **environ_extra,
    }
    response = SimpleNamespace(status="200 OK", sent=10, headers=[])
    request = SimpleNamespace(headers=list(headers))
    atoms = logger.atoms(response, request, environ, timedelta(milliseconds=5))
    return config.access_log_format % atoms + " " + atoms["{x-panel-token}i"]


def test_secret_query_parameters_lose_their_values_in_the_request_line_and_referer():
    line = _line(
        {
            "RAW_URI": "/panels/k/queue/?usid=2&usec=SECRET-USEC&uctx=Cust1",
            "PATH_INFO": "/panels/k/queue/",
            "QUERY_STRING": "usid=2&usec=SECRET-USEC&uctx=Cust1",
            "HTTP_REFERER": "http://localhost/panels/k/sign-in/done/?code=CODE-1&state=STATE-1",
        },
        headers=[("X-PANEL-TOKEN", "TOKEN-1")],
    )

    for secret in ("SECRET-USEC", "CODE-1", "STATE-1", "TOKEN-1"):
        assert secret not in line
    assert "usid=2&usec=[redacted]&uctx=Cust1" in line
    assert "code=[redacted]&state=[redacted]" in line


def test_redaction_keeps_other_parameters_and_reaches_encoded_urls():
    assert redact_url("/t/abc/?c=ref&q=usec") == "/t/abc/?c=ref&q=usec"
    assert redact_url("?src=http%3A%2F%2Fh%2F%3Fusec%3DS1%26usid%3D2") == (
        "?src=http%3A%2F%2Fh%2F%3Fusec%3D[redacted]%26usid%3D2"
    )
    assert redact_url("pt=abc&PT=def") == "pt=[redacted]&PT=[redacted]"
