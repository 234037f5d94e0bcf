"""The simulator's Webhook agent and deliveries, as SuperOffice documents them: the test POST
before a save, signed thin payloads, three attempts per event, disabling after nine failed
attempts or one 410, and the delivery faults tests can ask for. Driven through the hub's
real client; the deliveries land on a small HTTP server of the test."""

import base64
import hashlib
import hmac
import json
import time

import pytest

from crm.errors import PermanentCrmError
from crm.services import client_for_account

from .webhook_target import Target

pytestmark = pytest.mark.django_db

SECRET = "a-shared-secret"
EVENTS = ["person.consented", "person.unconsented", "person.changed"]


@pytest.fixture
def target():
    t = Target()
    yield t
    t.server.shutdown()
    t.server.server_close()


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.fixture
def crm(crm_account):
    return client_for_account(crm_account)


def test_a_save_first_posts_a_signed_test_event_and_fails_unless_the_target_answers_200(
    crm, simulator, target
):
    target.status = 503
    with pytest.raises(PermanentCrmError, match="200"):
        crm.save_webhook(name="hub", events=EVENTS, target_url=target.url, secret=SECRET)
    assert simulator.state("webhooks") == []

    target.status = 200
    hook = crm.save_webhook(name="hub", events=EVENTS, target_url=target.url, secret=SECRET)

    assert hook.id and hook.state == "Active" and hook.events == tuple(EVENTS)
    headers, body = target.requests[-1]
    test = json.loads(body)
    assert (test["Event"], test["Entity"], test["PrimaryKey"]) == ("test", "test", 0)
    assert headers["x-hook-test"] == "true"
    expected = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest())
    assert headers["x-superoffice-signature"] == expected.decode()


def test_only_https_targets_and_documented_events_are_accepted(crm, target):
    with pytest.raises(PermanentCrmError, match="https"):
        crm.save_webhook(
            name="hub", events=EVENTS, target_url="http://hub.example/hooks/", secret=SECRET
        )
    with pytest.raises(PermanentCrmError, match="Unknown webhook events"):
        crm.save_webhook(
            name="hub", events=["person.consentchanged"], target_url=target.url, secret=SECRET
        )


def test_a_consent_change_posts_a_thin_signed_payload_naming_only_the_person(
    crm, simulator, target
):
    crm.save_webhook(name="hub", events=EVENTS, target_url=target.url, secret=SECRET)

    crm.set_consent(person_id=7, purpose_key="EMARKETING", legal_base_key="61A")
    crm.withdraw_consent(person_id=7, purpose_key="EMARKETING")

    consented, unconsented = wait_for(lambda: len(target.events()) >= 2 and target.events())
    assert consented["Event"] == "person.consented" and consented["PrimaryKey"] == 7
    assert "legalBase_id" in consented["Changes"]
    assert unconsented["Event"] == "person.unconsented" and unconsented["Changes"] == []
    for event in (consented, unconsented):
        assert event["Entity"] == "person" and event["WebhookName"] == "hub"
        # Thin: neither the purpose nor the legal basis travels.
        assert "EMARKETING" not in json.dumps(event) and "61A" not in json.dumps(event)
        assert event["_headers"]["x-superoffice-eventid"] == event["EventId"]
        assert event["_headers"]["x-superoffice-event"] == event["Event"]
    assert consented["EventId"] != unconsented["EventId"]


def test_a_failing_target_gets_three_attempts_per_event_then_the_event_is_dropped(
    crm, simulator, target
):
    crm.save_webhook(name="hub", events=EVENTS, target_url=target.url, secret=SECRET)
    simulator.control(webhook_retry_scale=0.02)
    target.status = 500

    crm.set_consent(person_id=3, purpose_key="STORE", legal_base_key="61B")

    attempts = wait_for(lambda: len(target.events()) >= 3 and target.events())
    time.sleep(0.3)
    assert len(target.events()) == 3
    assert {e["EventId"] for e in attempts} == {attempts[0]["EventId"]}
    assert [e["_headers"]["x-superoffice-retry"] for e in attempts] == ["0", "1", "2"]
    [hook] = simulator.state("webhooks")
    assert hook["State"] == "Active" and hook["ConsecutiveErrors"] == 3


def test_nine_failed_attempts_in_a_row_disable_the_webhook(crm, simulator, target):
    hook = crm.save_webhook(name="hub", events=EVENTS, target_url=target.url, secret=SECRET)
    simulator.control(webhook_retry_scale=0.01)
    target.status = 401
    for legal_base in ("61A", "61B", "61C"):
        crm.set_consent(person_id=4, purpose_key="STORE", legal_base_key=legal_base)

    wait_for(lambda: crm.get_webhook(webhook_id=hook.id).state == "TooManyErrors")
    assert len(target.events()) == 9
    crm.set_consent(person_id=4, purpose_key="STORE", legal_base_key="61F")
    time.sleep(0.3)
    assert len(target.events()) == 9
    assert "401" in crm.webhook_last_error(webhook_id=hook.id)

    # The receiver turns it back on by saving it active (dev/notification.md).
    target.status = 200
    again = crm.save_webhook(
        webhook_id=hook.id, name="hub", events=EVENTS, target_url=target.url, secret=SECRET
    )
    assert again.state == "Active"


def test_one_410_gone_disables_the_webhook_at_once(crm, simulator, target):
    hook = crm.save_webhook(name="hub", events=EVENTS, target_url=target.url, secret=SECRET)
    target.status = 410
    crm.set_consent(person_id=5, purpose_key="STORE", legal_base_key="61A")
    wait_for(lambda: crm.get_webhook(webhook_id=hook.id).state == "TooManyErrors")
    assert len(target.events()) == 1


def test_deliveries_can_be_duplicated_reordered_delayed_and_dropped(crm, simulator, target):
    crm.save_webhook(name="hub", events=EVENTS, target_url=target.url, secret=SECRET)

    simulator.control(webhook_duplicate=True)
    crm.set_consent(person_id=6, purpose_key="STORE", legal_base_key="61A")
    first, second = wait_for(lambda: len(target.events()) >= 2 and target.events())
    assert first["EventId"] == second["EventId"]

    simulator.control(webhook_duplicate=False, webhook_reorder=3)
    for person_id in (10, 11, 12):
        crm.set_consent(person_id=person_id, purpose_key="STORE", legal_base_key="61A")
    wait_for(lambda: len(target.events()) >= 5)
    assert [e["PrimaryKey"] for e in target.events()[2:]] == [12, 11, 10]

    simulator.control(webhook_reorder=0, webhook_delay=0.4)
    started = time.monotonic()
    crm.set_consent(person_id=13, purpose_key="STORE", legal_base_key="61A")
    wait_for(lambda: len(target.events()) >= 6)
    assert time.monotonic() - started >= 0.35

    simulator.control(webhook_delay=0, webhook_drop=1.0)
    crm.set_consent(person_id=14, purpose_key="STORE", legal_base_key="61A")
    time.sleep(0.3)
    assert len(target.events()) == 6
    assert any(row.get("dropped") for row in simulator.state("webhook_log"))


def test_saving_a_person_raises_person_changed(crm, simulator, target):
    crm.save_webhook(name="hub", events=EVENTS, target_url=target.url, secret=SECRET)
    crm.set_no_mailing(person_id=9, no_mailing=True)
    [event] = wait_for(lambda: target.events())
    assert (event["Event"], event["PrimaryKey"]) == ("person.changed", 9)


def test_the_hub_finds_and_deletes_its_webhook(crm, simulator, target):
    hook = crm.save_webhook(name="hub A", events=EVENTS, target_url=target.url, secret=SECRET)
    crm.save_webhook(name="someone else", events=EVENTS, target_url=target.url, secret="x")
    assert [h.id for h in crm.find_webhooks(name="hub A")] == [hook.id]
    crm.delete_webhook(webhook_id=hook.id)
    assert crm.get_webhook(webhook_id=hook.id) is None
    assert [h["Name"] for h in simulator.state("webhooks")] == ["someone else"]


def test_a_newer_netserver_keeps_the_carriers_later_elements_through_the_hubs_save(
    crm, simulator, target
):
    """ErrorsEmail (10.2.7) and the error counters (12.0.342) are not in the 10.0.2 WSDL:
    the client reads what it knows by name, and a save sends the rest back unchanged."""
    hook = crm.save_webhook(name="hub", events=EVENTS, target_url=target.url, secret=SECRET)
    simulator.control(newer_version=True, webhook_retry_scale=0.01)
    try:
        simulator_set_errors_email(simulator, hook.id, "ops@example.com")
        target.status = 500
        crm.set_consent(person_id=8, purpose_key="STORE", legal_base_key="61A")
        wait_for(lambda: crm.get_webhook(webhook_id=hook.id).consecutive_errors == 3)
        read = crm.get_webhook(webhook_id=hook.id)
        assert "500" in read.last_error

        target.status = 200
        crm.save_webhook(
            webhook_id=hook.id, name="hub", events=EVENTS, target_url=target.url, secret=SECRET
        )
        [saved] = simulator.state("webhooks")
        assert saved["ErrorsEmail"] == "ops@example.com"
        assert crm.get_webhook(webhook_id=hook.id).consecutive_errors == 0
    finally:
        simulator.control(newer_version=False)


def simulator_set_errors_email(simulator, webhook_id, address):
    """An admin sets the error e-mail in a newer SuperOffice: a SaveWebhook of the full
    newer carrier, sent here as raw SOAP with the element the hub's WSDL lacks."""
    import requests

    from crm.wsdl import spec

    signed_in = requests.post(
        f"{simulator.base_url}SoPrincipal.svc",
        data=(
            '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header>'
            f'<ApplicationToken xmlns="{spec.NS}">{simulator.app_token}</ApplicationToken>'
            f'</s:Header><s:Body><AuthenticateUsernamePassword xmlns="{spec.NS}">'
            f"<UserName>{simulator.username}</UserName><Password>{simulator.password}</Password>"
            "</AuthenticateUsernamePassword></s:Body></s:Envelope>"
        ),
        timeout=5,
    ).text
    ticket = signed_in.split("<Ticket>")[1].split("</Ticket>")[0]
    [hook] = [h for h in simulator.state("webhooks") if h["WebhookId"] == webhook_id]
    events = "".join(f"<a:string>{e}</a:string>" for e in hook["Events"])
    response = requests.post(
        f"{simulator.base_url}Webhook.svc",
        data=(
            '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            f'xmlns:a="{spec.ARRAYS_NS}"><s:Header>'
            f'<ApplicationToken xmlns="{spec.NS}">{simulator.app_token}</ApplicationToken>'
            f'<Credentials xmlns="{spec.NS}"><Ticket>{ticket}</Ticket></Credentials>'
            f'</s:Header><s:Body><SaveWebhook xmlns="{spec.NS}"><Webhook>'
            f"<WebhookId>{webhook_id}</WebhookId><Name>{hook['Name']}</Name>"
            f"<Events>{events}</Events><TargetUrl>{hook['TargetUrl']}</TargetUrl>"
            f"<Secret>{SECRET}</Secret><State>Active</State><Type>webhook</Type>"
            f"<ErrorsEmail>{address}</ErrorsEmail></Webhook></SaveWebhook></s:Body></s:Envelope>"
        ),
        timeout=5,
    )
    assert response.status_code == 200, response.text
