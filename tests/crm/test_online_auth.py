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
