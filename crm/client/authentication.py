"""Authentication: the hub's ticket (on-site user name and password, or the Online
system user), who the hub is, and who a web panel's user is."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import requests

from .. import auth
from ..errors import ConfigurationCrmError, CrmError, TransientCrmError
from ..types import Principal
from . import transport
from .core import (
    PARTNER_AGENT,
    PARTNER_BINDING,
    TICKET_LIFETIME,
    TICKET_SAFETY_MARGIN,
)

# Who the hub signed in as, per connection identity (see AuthenticationMixin.whoami).
_principals: dict[tuple[str, ...], Principal] = {}
_principals_lock = threading.Lock()


# SuperOffice's published signing keys per JWKS address: (document, fetched at).
_signing_keys: dict[str, tuple[dict[str, Any], float]] = {}
SIGNING_KEYS_TTL = 3600.0


def _forget_principals() -> None:
    with _principals_lock:
        _principals.clear()
        _signing_keys.clear()


transport.register_cache(_forget_principals)


def fetch_signing_keys(url: str, *, timeout: float) -> dict[str, Any]:
    """The JWKS document at ``url`` (the environment's /login/.well-known/jwks)."""
    try:
        response = transport.new_session().get(url, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        raise TransientCrmError(
            f"Cannot read SuperOffice's signing keys: {type(exc).__name__}"
        ) from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientCrmError(f"HTTP {response.status_code} for SuperOffice's signing keys")
    if response.status_code != 200:
        raise ConfigurationCrmError(f"HTTP {response.status_code}: no signing keys at {url}")
    try:
        keys = response.json()
    except ValueError as exc:
        raise ConfigurationCrmError(f"The signing keys at {url} are not JSON") from exc
    if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
        raise ConfigurationCrmError(f"The signing keys at {url} are not a JWKS document")
    return keys


def _check_partner_reply(body: Any) -> None:
    if not body.IsSuccessful or not body.Token:
        raise ConfigurationCrmError(
            f"SuperOffice refused the system user: {body.ErrorMessage or 'no reason given'}"
        )


def principal_from_carrier(carrier: Any) -> Principal:
    return Principal(
        associate_id=carrier.AssociateId or 0,
        name=carrier.Associate or "",
        full_name=carrier.FullName or "",
        email=carrier.EMailAddress or "",
        group_id=carrier.GroupId or 0,
        secondary_group_ids=tuple(transport.elements(carrier.SecondaryGroups, "int")),
        context_identifier=carrier.DatabaseContextIdentifier or "",
    )


class AuthenticationMixin:
    """Signing in (SoPrincipal, PartnerSystemUserService) and verifying panel users."""

    def _authenticate(self) -> tuple[str, datetime, Principal | None]:
        transport.STATS["authentications"] += 1
        now = datetime.now(UTC)
        if self.connection.auth_mode == "online":
            return self._authenticate_online(now)
        principal, ticket = self._authenticate_username_password(
            username=self.connection.username,
            password=self.connection.password,
            refusal=ConfigurationCrmError("SuperOffice refused the user name or password"),
        )
        if ticket is None or principal is None:  # only when no refusal was asked for
            raise ConfigurationCrmError("SuperOffice refused the user name or password")
        return ticket, now + TICKET_LIFETIME - TICKET_SAFETY_MARGIN, principal

    def _authenticate_username_password(
        self, *, username: str, password: str, refusal: CrmError | None = None
    ) -> tuple[Principal | None, str | None]:
        """SoPrincipal.AuthenticateUsernamePassword: a principal and its ticket, or
        (None, None) when NetServer does not accept the credentials (``refusal``, when
        given, is raised instead, and logged as the call's outcome)."""

        def check(body: Any) -> None:
            if refusal is not None and (not body.AuthenticationSucceeded or not body.Credentials):
                raise refusal

        body = self._send(
            agent="SoPrincipal",
            operation="AuthenticateUsernamePassword",
            params={"UserName": username, "Password": password},
            headers={"ApplicationToken": self.connection.application_token},
            check=check,
        )
        if not body.AuthenticationSucceeded or body.Credentials is None:
            return None, None
        return principal_from_carrier(body.Response), body.Credentials.Ticket

    def _signing_keys(self, *, fresh: bool = False) -> dict[str, Any]:
        url = self.connection.jwks_url
        cached = _signing_keys.get(url)
        if cached is not None and not fresh and time.monotonic() - cached[1] < SIGNING_KEYS_TTL:
            return cached[0]
        keys = fetch_signing_keys(url, timeout=self.timeout)
        _signing_keys[url] = (keys, time.monotonic())
        return keys

    def _system_user_claims(self, token: str, now: datetime) -> dict[str, Any]:
        """The claims of the system user's token, validated against SuperOffice's keys
        (fetched again once when the token names a key not yet seen: a rotation)."""
        try:
            return auth.validate_system_user_jwt(
                token, keys=self._signing_keys(), now=now.timestamp()
            )
        except auth.UnknownSigningKey:
            return auth.validate_system_user_jwt(
                token, keys=self._signing_keys(fresh=True), now=now.timestamp()
            )

    def _authenticate_online(self, now: datetime) -> tuple[str, datetime, Principal | None]:
        """PartnerSystemUserService.Authenticate with the signed system user token."""
        c = self.connection
        if not (c.system_user_token and c.private_key_pem and c.context_identifier):
            raise ConfigurationCrmError(
                "Online needs the system user token, the private key and the context identifier"
            )
        signed = auth.sign_system_user_token(
            system_user_token=c.system_user_token, private_key_pem=c.private_key_pem, now=now
        )
        self._extra_secrets.append(signed)
        body = self._send(
            agent=PARTNER_AGENT,
            operation="Authenticate",
            params={"SignedSystemToken": signed, "ReturnTokenType": "Jwt"},
            headers={
                "ApplicationToken": c.application_token,
                "ContextIdentifier": c.context_identifier,
            },
            binding=PARTNER_BINDING,
            address=c.partner_service_url,
            check=_check_partner_reply,
        )
        self._extra_secrets.append(body.Token)
        claims = self._system_user_claims(body.Token, now)
        ticket = claims.get(auth.TICKET_CLAIM)
        if not ticket:
            raise ConfigurationCrmError("The system user token carried no ticket")
        expires = now + TICKET_LIFETIME
        if isinstance(claims.get("exp"), int | float):
            expires = min(expires, datetime.fromtimestamp(claims["exp"], UTC))
        associate_id = int(claims.get(auth.ASSOCIATE_CLAIM) or 0)
        principal = Principal(
            associate_id=associate_id,
            name="",
            full_name="System user",
            context_identifier=c.context_identifier,
        )
        return ticket, expires - TICKET_SAFETY_MARGIN, principal

    # -- who is who -------------------------------------------------------------------

    def whoami(self, *, fresh: bool = False) -> Principal:
        """Who the hub is in SuperOffice.

        Signs in (SoPrincipal.AuthenticateUsernamePassword, or the Online
        PartnerSystemUserService.Authenticate) the first time per process and
        connection, or always with ``fresh=True`` ("Test connection"); otherwise the
        answer is remembered, so asking costs no call."""
        cache_key = self._principal_cache_key()
        if not fresh and cache_key in _principals:
            return _principals[cache_key]
        ticket, expires_at, principal = self._authenticate()
        self._ticket = ticket
        self.ticket_store.save(ticket=ticket, expires_at=expires_at)
        assert principal is not None  # noqa: S101 - _authenticate never returns None here
        if self.connection.auth_mode == "online" and principal.associate_id:
            names = {item.id: item.name for item in self.list_items(list_name="associates")}
            principal = Principal(
                associate_id=principal.associate_id,
                name=names.get(principal.associate_id, "System user"),
                full_name=names.get(principal.associate_id, "System user"),
                context_identifier=principal.context_identifier,
            )
        with _principals_lock:
            _principals[cache_key] = principal
        return principal

    def _principal_cache_key(self) -> tuple[str, ...]:
        c = self.connection
        return (c.base_url, c.auth_mode, c.username, c.context_identifier, c.system_user_token)

    def verify_panel_user(self, *, usec: str) -> Principal | None:
        """Who a web panel's ``<usec>`` secret belongs to (SoPrincipal.AuthenticateUsernamePassword
        with the secret as user name), or None when NetServer does not accept it."""
        if not usec:
            return None
        self._extra_secrets.append(usec)
        principal, _ = self._authenticate_username_password(username=usec, password="")
        return principal

    def verify_access_token(self, *, access_token: str) -> Principal | None:
        """Who a user's access token from SuperOffice sign-in belongs to, with their groups
        (SoPrincipal.AuthenticateWithAccessToken), or None when NetServer refuses it."""
        if not access_token:
            return None
        self._extra_secrets.append(access_token)
        body = self._send(
            agent="SoPrincipal",
            operation="AuthenticateWithAccessToken",
            params={"AccessToken": access_token},
            headers={"ApplicationToken": self.connection.application_token},
        )
        if not body.AuthenticationSucceeded or body.Response is None:
            return None
        return principal_from_carrier(body.Response)
