"""Posts bad input to a running hub and checks that each gets a 400 with a message (never
a 500), and that a damaged tracked-link reference still reaches the link's destination.

    python tests/probe_bad_input.py --url http://127.0.0.1:8000 --api-key KEY \\
        --campaign 1 --link-token TOKEN --link-destination https://... \\
        --form-action http://127.0.0.1:8000/f/1/ \\
        --email someone@example.com

The tests run it against the live test server (tests/test_bad_input.py) and against the
embedded default that `make run` starts (tests/e2e/test_newcomer_journey.py). Every
check sends its own request; each failure is reported, not only the first.
"""

import argparse
import json
import sys
import uuid
from dataclasses import dataclass, field

import requests

TIMEOUT = 30


@dataclass
class Target:
    url: str
    api_key: str
    campaign: int
    link_token: str
    link_destination: str
    form_action: str
    email: str


@dataclass
class Probe:
    target: Target
    session: requests.Session = field(default_factory=requests.Session)
    failures: list[str] = field(default_factory=list)
    checks: int = 0

    def _url(self, path: str) -> str:
        return self.target.url.rstrip("/") + path

    def _api_headers(self) -> dict:
        return {"Authorization": f"Bearer {self.target.api_key}", "Accept": "application/json"}

    def post_json_text(self, path: str, text: str) -> requests.Response:
        # The body is sent as written: json.dumps would refuse nothing, but the escapes
        # (\\u0000, \\ud800) must reach the hub as a client would send them.
        headers = {**self._api_headers(), "Content-Type": "application/json"}
        return self.session.post(
            self._url(path), data=text.encode(), headers=headers, timeout=TIMEOUT
        )

    def expect(self, name: str, response: requests.Response, status: int, *, mentions=()):
        self.checks += 1
        body = response.text[:300]
        if response.status_code != status:
            self.failures.append(f"{name}: {response.status_code} instead of {status}: {body}")
            return None
        for word in mentions:
            if word not in response.text:
                self.failures.append(f"{name}: the answer does not mention {word!r}: {body}")
        return response

    # --- the events API --------------------------------------------------------------------

    def event(self, **overrides) -> dict:
        base = {
            "event_id": f"probe-{uuid.uuid4()}",
            "type": "email_opened",
            "campaign": self.target.campaign,
            "email": self.target.email,
        }
        return {**base, **overrides}

    def post_event_text(self, name: str, text: str, *, mentions=()):
        return self.expect(
            name, self.post_json_text("/api/v1/events/", text), 400, mentions=mentions
        )

    def events(self):
        def with_raw(field_text: str, **overrides) -> str:
            # One event whose `data` (or another field) is raw JSON text with escapes.
            event = json.dumps(self.event(**overrides))
            return event[:-1] + ", " + field_text + "}"

        self.post_event_text(
            "NUL in a data key", with_raw('"data": {"a\\u0000b": 1}'), mentions=["data"]
        )
        self.post_event_text(
            "NUL in a data value", with_raw('"data": {"note": "a\\u0000b"}'), mentions=["data"]
        )
        self.post_event_text(
            "lone surrogate in a data key", with_raw('"data": {"\\ud800": 1}'), mentions=["data"]
        )
        self.post_event_text(
            "lone surrogate in a data value",
            with_raw('"data": {"note": ["x", "\\udfff"]}'),
            mentions=["data"],
        )
        self.post_event_text(
            "lone surrogate in a contact field",
            with_raw('"first_name": "An\\ud800na"'),
            mentions=["first_name"],
        )
        self.post_event_text(
            "NUL in the event id", with_raw('"event_id": "e\\u0000"'), mentions=["event_id"]
        )
        self.post_event_text(
            "data nested beyond the limit",
            with_raw('"data": ' + "[" * 40 + "]" * 40),
            mentions=["data"],
        )
        self.post_event_text(
            "a body nested beyond what a parser recurses",
            "[" * 100_000 + "]" * 100_000,
            mentions=["nested"],
        )
        self.post_event_text(
            "a body nested beyond the limit",
            '{"events": ' + "[" * 70 + "]" * 70 + "}",
            mentions=["nested"],
        )

        batch_ids = [f"probe-batch-{uuid.uuid4()}" for _ in range(4)]
        good = [self.event(event_id=i) for i in batch_ids]
        text = json.dumps({"events": good})
        # The third event of the batch gets a NUL in its data.
        bad_text = text.replace(
            json.dumps(batch_ids[2]) + ",", json.dumps(batch_ids[2]) + ', "data": {"x": "\\u0000"},'
        )
        response = self.post_event_text("one bad event in a batch", bad_text, mentions=["data"])
        if response is not None:
            errors = response.json().get("events", {})
            if set(errors) != {"2"}:
                self.failures.append(f"one bad event in a batch: errors not by index 2: {errors}")
        # Nothing of that batch was stored: sent again whole, every event is new.
        stored = self.post_json_text("/api/v1/events/", text)
        self.checks += 1
        if stored.status_code != 201 or stored.json().get("stored") != len(good):
            self.failures.append(
                f"the batch refused for one bad event was partly stored: {stored.text[:300]}"
            )

        for name, overrides in (
            ("campaign id beyond 64 bits", {"campaign": 10**30}),
            ("link id of 2^63", {"type": "link_clicked", "link": 2**63}),
            ("form id beyond 64 bits", {"type": "form_submitted", "form": 10**20}),
            ("occurred_at in year 9999", {"occurred_at": "9999-12-31T23:59:59Z"}),
            ("occurred_at in year 1", {"occurred_at": "0001-01-01T00:00:00+14:00"}),
        ):
            self.post_event_text(
                name,
                json.dumps(self.event(**overrides)),
                mentions=[next(iter(overrides.keys() - {"type"}))],
            )

    # --- the consent API ---------------------------------------------------------------------

    def consents(self):
        for name, params, word in (
            ("limit of 10^30", {"limit": str(10**30)}, "limit"),
            ("limit of 0", {"limit": "0"}, "limit"),
            ("limit that is no number", {"limit": "many"}, "limit"),
            ("negative offset", {"offset": "-1"}, "offset"),
            ("offset of 10^30", {"offset": str(10**30)}, "offset"),
        ):
            response = self.session.get(
                self._url("/api/v1/consents/"),
                params={"email": self.target.email, **params},
                headers=self._api_headers(),
                timeout=TIMEOUT,
            )
            self.expect(f"consents: {name}", response, 400, mentions=[word])
        record = {"email": self.target.email, "purpose": "STORE", "legal_basis": "61A"}
        body = json.dumps(record)
        for name, extra, word in (
            ("a lone surrogate in source", '"source": "\\ud800"', "source"),
            ("NUL in source", '"source": "API\\u0000"', "source"),
            ("changed_at in year 9999", '"changed_at": "9999-01-01T00:00:00Z"', "changed_at"),
        ):
            self.expect(
                f"consents: {name}",
                self.post_json_text("/api/v1/consents/", body[:-1] + ", " + extra + "}"),
                400,
                mentions=[word],
            )

    # --- the recipients' endpoints -------------------------------------------------------------

    def public(self):
        link = self._url(f"/t/{self.target.link_token}/")
        for name, ref in (("cut short", "12:abc"), ("garbage", "%%%"), ("a NUL", "1\x00:x")):
            response = self.session.get(
                link,
                params={"c": ref},
                allow_redirects=False,
                timeout=TIMEOUT,
                headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"},
            )
            self.expect(f"tracked link with a damaged reference ({name})", response, 302)
            if response.headers.get("Location") != self.target.link_destination:
                self.failures.append(
                    f"tracked link with a damaged reference ({name}) went to "
                    f"{response.headers.get('Location')!r}, not the link's destination"
                )
        form = self.target.form_action
        for name, data, word in (
            ("NUL in a field", {"email": self.target.email, "message": "hi\x00"}, "message"),
            ("NUL in the email", {"email": "a\x00@example.com"}, "email"),
            ("NUL in a field's name", {"email": self.target.email, "x\x00": "1"}, "name"),
        ):
            response = self.session.post(
                form, data=data, headers={"Accept": "application/json"}, timeout=TIMEOUT
            )
            self.expect(f"public form: {name}", response, 400, mentions=[word])

    def run(self) -> "Probe":
        self.events()
        self.consents()
        self.public()
        return self


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--campaign", type=int, required=True)
    parser.add_argument("--link-token", required=True)
    parser.add_argument("--link-destination", required=True)
    parser.add_argument("--form-action", required=True, help="The form's action URL.")
    parser.add_argument("--email", required=True)
    args = parser.parse_args(argv)
    target = Target(
        url=args.url,
        api_key=args.api_key,
        campaign=args.campaign,
        link_token=args.link_token,
        link_destination=args.link_destination,
        form_action=args.form_action,
        email=args.email,
    )
    probe = Probe(target).run()
    for failure in probe.failures:
        print(f"FAIL {failure}")
    print(f"{probe.checks - len(probe.failures)} passed, {len(probe.failures)} failed")
    return 1 if probe.failures else 0


if __name__ == "__main__":
    sys.exit(main())
