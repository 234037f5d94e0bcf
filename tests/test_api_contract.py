"""The API's contract holds under fuzzing: schemathesis sends every operation of the
published schema to the live test server with an API key, a bounded number of examples
each, and finds no server error and no answer that contradicts the schema."""

import json
import subprocess
import sys

import pytest

from emhub.services import api_key_issue

from .campaigns.factories import CampaignFactory, ContactFactory, TrackedLinkFactory

pytestmark = pytest.mark.django_db(transaction=True)

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "unsupported_method",
    ]
)
MAX_EXAMPLES = 20


def test_schemathesis_finds_no_server_error_and_no_answer_against_the_schema(
    live_server, account, tmp_path
):
    campaign = CampaignFactory(account=account)
    TrackedLinkFactory(campaign=campaign)
    ContactFactory(account=account, email="fuzz@example.com")
    key = api_key_issue(account=account, name="schemathesis").raw_key
    report = tmp_path / "report.json"
    result = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{live_server.url}/api/schema/",
            "--url",
            live_server.url,
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            CHECKS,
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            "1",
            "--workers",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-database",
            "none",
            "--no-color",
            "--report",
            "json",
            "--report-json-path",
            str(report),
            "--request-timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        # Schemathesis keeps a cache in its working folder: not in the checkout.
        cwd=tmp_path,
    )
    assert report.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(report.read_text())
    operations, cases = summary["operations"], summary["test_cases"]
    # The counts, for the record: pytest shows them with -s or -rP.
    print(
        f"schemathesis: {operations['tested']} of {operations['total']} operations, "
        f"{cases['generated']} requests, {cases['unique_failures']} failures, "
        f"{len(summary['errors'])} errors"
    )
    assert summary["complete"], result.stdout[-6000:]
    assert operations["tested"] == operations["total"] >= 8
    assert cases["generated"] >= 8 * MAX_EXAMPLES
    assert summary["failures"] == [] and summary["errors"] == [], result.stdout[-6000:]
    assert result.returncode == 0, result.stdout[-6000:]


def test_the_schema_documents_the_errors_and_bounds_the_page_parameters(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    operations = {
        (method, path): operation
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }
    assert len(operations) >= 8
    for (method, path), operation in operations.items():
        documented = set(operation["responses"])
        assert {"401", "403"} <= documented, (method, path)
        if method in ("post", "put", "patch"):
            assert {"400", "415"} <= documented, (method, path)
        if "{" in path:
            assert "404" in documented, (method, path)
    consents = operations[("get", "/api/v1/consents/")]
    assert {"400", "404"} <= set(consents["responses"])
    bounds = {p["name"]: p["schema"] for p in consents["parameters"]}
    assert (bounds["limit"]["minimum"], bounds["limit"]["maximum"]) == (1, 200)
    assert bounds["offset"]["minimum"] == 0
    events = schema["components"]["schemas"]["EventInput"]["properties"]
    assert events["campaign"]["maximum"] == 2**63 - 1
