"""SuperOffice Online system-user token signing, and validation of the token it returns.

The system user token is signed as ``"<token>.<UTC yyyyMMddHHmm>"`` with RSA-SHA256
(PKCS#1 v1.5) using the partner's private key, base64-encoded and appended:
``"<token>.<timestamp>.<signature>"`` (SuperOffice docs, "Sign system user token").

The JWT that comes back is validated as SuperOffice says (SuperOfficeDocs:
docs/en/api/authentication/online/validate-security-tokens.md): signed (RS256) by one
of the keys SuperOffice publishes for the environment, issuer "SuperOffice AS",
audience ``spn:<the token's serial claim>``, not expired (five minutes' skew).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from .errors import ConfigurationCrmError

TICKET_CLAIM = "http://schemes.superoffice.net/identity/ticket"
ASSOCIATE_CLAIM = "http://schemes.superoffice.net/identity/associateid"
SERIAL_CLAIM = "http://schemes.superoffice.net/identity/serial"
SYSTEM_USER_ISSUER = "SuperOffice AS"
CLOCK_SKEW_SECONDS = 300


class UnknownSigningKey(ConfigurationCrmError):
    """The token names a key the published set does not hold (perhaps a new one)."""


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


def validate_system_user_jwt(
    token: str, *, keys: dict[str, Any], now: float | None = None
) -> dict[str, Any]:
    """The claims of the system user's JWT once it is shown to be SuperOffice's; raises
    ConfigurationCrmError (``UnknownSigningKey`` for a key not in ``keys``) otherwise.
    ``keys`` is the environment's JWKS document."""
    try:
        key_set = KeySet.import_key_set(keys)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ConfigurationCrmError("SuperOffice's published signing keys are unreadable") from exc
    try:
        decoded = jwt.decode(token, key_set, algorithms=["RS256"])
    except InvalidKeyIdError as exc:
        raise UnknownSigningKey("The system user token names an unknown signing key") from exc
    except (JoseError, ValueError, TypeError) as exc:
        raise ConfigurationCrmError(
            "The system user token is not signed by SuperOffice's published keys"
        ) from exc
    claims = decoded.claims
    try:
        jwt.JWTClaimsRegistry(
            now=int(now) if now is not None else None,
            leeway=CLOCK_SKEW_SECONDS,
            iss={"essential": True, "value": SYSTEM_USER_ISSUER},
            exp={"essential": True},
        ).validate(claims)
    except JoseError as exc:
        raise ConfigurationCrmError(
            f"The system user token is not valid: {exc.description or exc.error}"
        ) from exc
    serial = str(claims.get(SERIAL_CLAIM) or "")
    audiences = claims.get("aud")
    audiences = audiences if isinstance(audiences, list) else [audiences]
    if not serial or f"spn:{serial}" not in audiences:
        raise ConfigurationCrmError(
            "The system user token is not meant for this tenant (its audience is not "
            "spn:<its serial>)"
        )
    return claims


def jwt_claims(token: str) -> dict[str, Any]:
    """Read a JWT's claims without checking them (see ``validate_system_user_jwt``)."""
    try:
        payload = token.split(".")[1]
        padded = payload + "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (IndexError, ValueError) as exc:
        raise ConfigurationCrmError("The system user token exchange returned no JWT") from exc
    if not isinstance(claims, dict):
        raise ConfigurationCrmError("The system user token exchange returned no JWT claims")
    return claims
