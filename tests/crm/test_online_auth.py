"""SuperOffice CRM Online: the system user ticket from a signed system user token."""

import base64
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from crm.auth import sign_system_user_token
from crm.errors import ConfigurationCrmError
from crm.models import SuperOfficeConnection
from crm.services import client_for_account

pytestmark = pytest.mark.django_db


def test_signed_token_is_rsa_sha256_over_token_and_utc_minute():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    signed = sign_system_user_token(
        system_user_token="app-XYZ",
        private_key_pem=pem,
        now=datetime(2025, 5, 6, 7, 8, 59, tzinfo=UTC),
    )
    token, stamp, signature = signed.rsplit(".", 2)
    assert (token, stamp) == ("app-XYZ", "202505060708")
    key.public_key().verify(
        base64.b64decode(signature), b"app-XYZ.202505060708", padding.PKCS1v15(), hashes.SHA256()
    )


def test_online_system_user_signs_in_once_and_works(crm_online_account, simulator):
    crm = client_for_account(crm_online_account)
    assert crm.get_person(person_id=2).id == 2
    client_for_account(crm_online_account).get_person(person_id=3)
    assert simulator.state("counters")["authentications"] == 1
    principal = client_for_account(crm_online_account).whoami()
    assert (principal.associate_id, principal.full_name) == (8, "System User")


def test_online_with_a_foreign_key_is_a_configuration_error(crm_online_account):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    connection = SuperOfficeConnection.objects.get(account=crm_online_account)
    connection.private_key = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    connection.save()
    with pytest.raises(ConfigurationCrmError, match="Invalid signed system token"):
        client_for_account(crm_online_account).get_person(person_id=1)


def test_online_with_a_garbage_key_is_a_configuration_error(crm_online_account):
    connection = SuperOfficeConnection.objects.get(account=crm_online_account)
    connection.private_key = "not a key"
    connection.save()
    with pytest.raises(ConfigurationCrmError, match="PEM"):
        client_for_account(crm_online_account).get_person(person_id=1)


# --- the system user's token is validated as SuperOffice documents ------------------------


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        ("forged", "not signed by SuperOffice"),
        ("wrong_issuer", "not valid"),
        ("wrong_audience", "not meant for this tenant"),
        ("expired", "not valid"),
    ],
)
def test_a_system_user_token_superoffice_did_not_issue_is_refused(
    crm_online_account, simulator, spoil, reason
):
    simulator.control(system_user_jwt=spoil)
    with pytest.raises(ConfigurationCrmError, match=reason):
        client_for_account(crm_online_account).get_person(person_id=1)
    # The refused token's ticket was never used: no call got past the sign-in.
    assert simulator.state("counters")["operations"].get("Person.GetPersonEntity") is None


def test_the_token_is_checked_against_the_keys_the_environment_publishes(
    crm_online_account, simulator
):
    import requests

    jwks = requests.get(f"{simulator.root_url}/login/.well-known/jwks", timeout=5).json()
    crm = client_for_account(crm_online_account)
    assert crm.connection.jwks_url == f"{simulator.root_url}/login/.well-known/jwks"
    assert crm.get_person(person_id=3).id == 3
    [key] = jwks["keys"]
    assert key["kty"] == "RSA" and "d" not in key  # public half only


def _signed(key, claims, kid=None):
    from joserfc import jwt

    return jwt.encode({"alg": "RS256", "kid": kid or key.kid}, claims, key)


def test_validation_checks_issuer_audience_signature_and_lifetime():
    import time

    from joserfc.jwk import RSAKey

    from crm.auth import SERIAL_CLAIM, UnknownSigningKey, validate_system_user_jwt

    key = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"})
    keys = {"keys": [key.as_dict(private=False)]}
    now = int(time.time())
    good = {"iss": "SuperOffice AS", "aud": "spn:77", SERIAL_CLAIM: "77", "exp": now + 600}
    assert validate_system_user_jwt(_signed(key, good), keys=keys)[SERIAL_CLAIM] == "77"
    # Four minutes past expiry is within the skew; ten are not.
    assert validate_system_user_jwt(_signed(key, good | {"exp": now - 240}), keys=keys)
    with pytest.raises(ConfigurationCrmError, match="expired"):
        validate_system_user_jwt(_signed(key, good | {"exp": now - 600}), keys=keys)
    with pytest.raises(ConfigurationCrmError, match="not meant"):
        validate_system_user_jwt(_signed(key, good | {SERIAL_CLAIM: "78"}), keys=keys)
    with pytest.raises(ConfigurationCrmError, match="not meant"):
        validate_system_user_jwt(
            _signed(key, {k: v for k, v in good.items() if k != "aud"}), keys=keys
        )
    with pytest.raises(ConfigurationCrmError, match="iss"):
        validate_system_user_jwt(_signed(key, good | {"iss": "SuperOffice"}), keys=keys)
    other = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"})
    with pytest.raises(ConfigurationCrmError, match="not signed"):
        validate_system_user_jwt(_signed(other, good), keys=keys)
    with pytest.raises(UnknownSigningKey):
        validate_system_user_jwt(_signed(other, good, kid="k2"), keys=keys)
    with pytest.raises(ConfigurationCrmError, match="not signed"):
        validate_system_user_jwt("not.a.jwt", keys=keys)
