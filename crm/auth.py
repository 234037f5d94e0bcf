"""SuperOffice Online system-user token signing and JWT claim reading.

The system user token is signed as ``"<token>.<UTC yyyyMMddHHmm>"`` with RSA-SHA256
(PKCS#1 v1.5) using the partner's private key, base64-encoded and appended:
``"<token>.<timestamp>.<signature>"`` (SuperOffice docs, "Sign system user token").
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .errors import ConfigurationCrmError

TICKET_CLAIM = "http://schemes.superoffice.net/identity/ticket"
ASSOCIATE_CLAIM = "http://schemes.superoffice.net/identity/associateid"


def sign_system_user_token(
    *, system_user_token: str, private_key_pem: str, now: datetime | None = None
) -> str:
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d%H%M")
    payload = f"{system_user_token}.{stamp}"
    try:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationCrmError("The private key is not a valid PEM RSA key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationCrmError("The private key must be an RSA key")
    signature = key.sign(payload.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{payload}.{base64.b64encode(signature).decode()}"


def jwt_claims(token: str) -> dict[str, Any]:
    """Read a JWT's claims.

    The signature is not checked here: the token comes straight from SuperOffice's
    ticket exchange over TLS, and the ticket inside is checked by NetServer on use.
    """
    try:
        payload = token.split(".")[1]
        padded = payload + "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (IndexError, ValueError) as exc:
        raise ConfigurationCrmError("The system user token exchange returned no JWT") from exc
    if not isinstance(claims, dict):
        raise ConfigurationCrmError("The system user token exchange returned no JWT claims")
    return claims
