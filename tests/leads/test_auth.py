"""ID tokens and panel tokens: only a valid, unexpired token of the right tenant names a user."""

import time
from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from leads import auth
from leads.models import PanelSession

ISSUER = "https://sod.superoffice.com"
CLIENT = "emhub-app"
CTX = "Cust12345"


@pytest.fixture(scope="module")
def key():
    return RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"})


@pytest.fixture(scope="module")
def keys(key):
    return KeySet.import_key_set({"keys": [key.as_dict(private=False)]})


def _claims(**overrides):
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": CLIENT,
        "iat": now,
        "exp": now + 600,
        "nonce": "n-1",
        auth.CTX_CLAIM: CTX,
        auth.ASSOCIATE_CLAIM: "2",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _token(key, **overrides):
    return jwt.encode({"alg": "RS256", "kid": "k1"}, _claims(**overrides), key)


def _validate(token, keys, nonce="n-1", ctx=CTX):
    return auth.id_token_validate(
        id_token=token,
        keys=keys,
        issuer=ISSUER,
        client_id=CLIENT,
        nonce=nonce,
        context_identifier=ctx,
    )


def test_a_valid_id_token_names_the_superoffice_user(key, keys):
    claims = _validate(_token(key), keys)

    assert claims[auth.ASSOCIATE_CLAIM] == "2"


def test_an_id_token_signed_with_another_key_is_refused(keys):
    forger = RSAKey.generate_key(2048, parameters={"kid": "k1"})

    with pytest.raises(auth.PanelAuthError):
        _validate(_token(forger), keys)


def test_an_altered_id_token_is_refused(key, keys):
    header, payload, signature = _token(key).split(".")
    other_payload = _token(key, **{auth.ASSOCIATE_CLAIM: "1"}).split(".")[1]

    with pytest.raises(auth.PanelAuthError):
        _validate(f"{header}.{other_payload}.{signature[:-4]}AAAA", keys)
    assert payload != other_payload


def test_an_unsigned_id_token_is_refused(keys):
    import base64
    import json

    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    unsigned = f"{part({'alg': 'none'})}.{part(_claims())}."

    with pytest.raises(auth.PanelAuthError):
        _validate(unsigned, keys)


def test_an_expired_id_token_is_refused(key, keys):
    past = int(time.time()) - 3600

    with pytest.raises(auth.PanelAuthError):
        _validate(_token(key, iat=past - 600, exp=past), keys)


@pytest.mark.parametrize(
    "overrides",
    [
        {"iss": "https://evil.example.com"},
        {"aud": "someone-elses-app"},
        {"nonce": "replayed"},
        {"aud": None},
        {"exp": None},
    ],
    ids=["issuer", "audience", "nonce", "no audience", "no expiry"],
)
def test_an_id_token_for_another_issuer_audience_or_sign_in_is_refused(key, keys, overrides):
    with pytest.raises(auth.PanelAuthError):
        _validate(_token(key, **overrides), keys)


def test_an_id_token_of_another_tenant_is_refused(key, keys):
    with pytest.raises(auth.PanelAuthError, match="another tenant"):
        _validate(_token(key, **{auth.CTX_CLAIM: "Cust99999"}), keys)


def test_an_id_token_is_refused_when_the_account_has_no_tenant_set(key, keys):
    with pytest.raises(auth.PanelAuthError):
        _validate(_token(key), keys, ctx="")


def _user(account, **overrides):
    data = {
        "account_id": account.pk,
        "context_identifier": CTX,
        "associate_id": 2,
        "name": "Sam",
        "group_ids": (1,),
        "method": "oidc",
    }
    data.update(overrides)
    return auth.PanelUser(**data)


@pytest.mark.django_db
def test_a_panel_token_round_trips_its_user_and_only_its_hash_is_stored(account):
    token = auth.panel_token_issue(user=_user(account))

    assert auth.panel_token_read(token=token) == _user(account)
    row = PanelSession.objects.get()
    assert token not in (row.key_hash, row.name)
    assert len(token) >= 40


@pytest.mark.django_db
def test_a_tampered_or_unknown_panel_token_names_nobody(account):
    token = auth.panel_token_issue(user=_user(account))
    # The signed tokens of old named their user; a forged one of those is nothing now.
    forged = signing.dumps(
        {"account_id": account.pk, "associate_id": 1, "method": "oidc"},
        salt="leads.panel-token",
    )

    assert auth.panel_token_read(token=token[:-3] + "abc") is None
    assert auth.panel_token_read(token=forged) is None
    assert auth.panel_token_read(token="garbage") is None


@pytest.mark.django_db
def test_an_expired_panel_token_names_nobody(account):
    token = auth.panel_token_issue(user=_user(account))
    PanelSession.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert auth.panel_token_read(token=token) is None


@pytest.mark.django_db
def test_a_signed_out_panel_token_names_nobody(account):
    token = auth.panel_token_issue(user=_user(account))
    other = auth.panel_token_issue(user=_user(account, associate_id=3))

    assert auth.panel_session_end(token=token, by="signed out") is True

    assert auth.panel_token_read(token=token) is None
    assert auth.panel_token_read(token=other) is not None
    assert PanelSession.objects.get(revoked_at__isnull=False).revoked_by == "signed out"
