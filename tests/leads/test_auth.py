"""ID tokens and panel tokens: only a valid, unexpired token of the right tenant names a user."""

import time

import pytest
from django.core import signing
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from leads import auth

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


def _user(**overrides):
    data = {
        "account_id": 1,
        "context_identifier": CTX,
        "associate_id": 2,
        "name": "Sam",
        "group_ids": (1,),
        "method": "oidc",
    }
    data.update(overrides)
    return auth.PanelUser(**data)


def test_a_panel_token_round_trips_its_user():
    token = auth.panel_token_issue(user=_user())

    assert auth.panel_token_read(token=token) == _user()


def test_a_tampered_panel_token_names_nobody():
    token = auth.panel_token_issue(user=_user())
    forged = signing.dumps(
        {
            "account_id": 1,
            "context_identifier": CTX,
            "associate_id": 1,
            "name": "x",
            "group_ids": [4],
            "method": "oidc",
        },
        key="not-the-secret-key",
        salt=auth.PANEL_TOKEN_SALT,
    )

    assert auth.panel_token_read(token=token[:-3] + "abc") is None
    assert auth.panel_token_read(token=forged) is None
    assert auth.panel_token_read(token="garbage") is None


def test_an_expired_panel_token_names_nobody():
    token = auth.panel_token_issue(user=_user())

    assert auth.panel_token_read(token=token, max_age=-1) is None
