"""Who is looking at a panel: the SuperOffice user, verified, and the panel session.

- Online: OpenID Connect with SuperOffice's identity provider (authorization code flow with
  PKCE, state and nonce) in a pop-up, since SuperID refuses to load inside a frame
  (SuperOffice docs, "iframe-idp-auth"). The ID token is checked against the provider's
  JWKS (RS256 only), issuer, audience, expiry and nonce with joserfc, the JOSE library of
  the authlib project; its `ctx` claim must be the account's tenant.
- On-site, where the admin turned it on: the panel URL's `<usec>` secret, verified with
  NetServer through the crm client, which also tells the user's groups.

Either way the panel then carries the random token of a server-side panel session
(PanelSession: signing out or an admin ends it): in a `SameSite=None; Secure; Partitioned`
cookie where the browser keeps one inside a cross-site frame, and otherwise in the
`X-Panel-Token` header of htmx requests (or a `pt` field in a form's body). Never in a URL:
access logs, history and Referer would keep it. URL variables such as `<usid>` are hints.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from django.core import signing
from django.core.cache import cache
from django.utils import timezone
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from crm.http import AddressRefused, RedirectRefused, guard_session, guarded_session

from .models import PanelSession, PanelSettings

logger = logging.getLogger(__name__)

CLAIM_PREFIX = "http://schemes.superoffice.net/identity/"
CTX_CLAIM = CLAIM_PREFIX + "ctx"
ASSOCIATE_CLAIM = CLAIM_PREFIX + "associateid"
EMAIL_CLAIM = CLAIM_PREFIX + "email"
DISCOVERY_PATH = "/login/.well-known/openid-configuration"
HTTP_TIMEOUT = 10
METADATA_TTL = 600

PANEL_TOKEN_MAX_AGE = 2 * 3600
LAST_SEEN_EVERY = timedelta(minutes=1)
FLOW_SALT = "leads.oidc-flow"
FLOW_MAX_AGE = 600


class PanelAuthError(Exception):
    """The sign-in did not prove who the user is. The message is safe to show."""


@dataclass(frozen=True)
class PanelUser:
    account_id: int
    context_identifier: str
    associate_id: int
    name: str
    # None when the groups are not known (SuperID's ID token carries none; NetServer is
    # asked with the user's access token, and may not answer).
    group_ids: tuple[int, ...] | None
    method: str  # "oidc" | "usec"
    # The PanelSession row this user came from (None before the session is opened).
    session_id: int | None = field(default=None, compare=False)


# -- the panel session ---------------------------------------------------------------------


def _key_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def panel_token_issue(*, user: PanelUser) -> str:
    """Open a panel session for a verified user; returns the token the panel carries.

    The token is random and opaque (only its hash is stored): it names a row that
    signing out or an admin revokes, and it lapses after PANEL_TOKEN_MAX_AGE."""
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    # Sessions long over are of no use to anyone: drop them as new ones open.
    PanelSession.objects.filter(
        account_id=user.account_id, expires_at__lt=now - timedelta(days=1)
    ).delete()
    PanelSession.objects.create(
        account_id=user.account_id,
        key_hash=_key_hash(token),
        context_identifier=user.context_identifier,
        associate_id=user.associate_id,
        name=user.name[:200],
        group_ids=list(user.group_ids) if user.group_ids is not None else None,
        method=user.method,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=PANEL_TOKEN_MAX_AGE),
    )
    return token


def panel_token_read(*, token: str) -> PanelUser | None:
    """The user of a live panel session, or None when the token is unknown, expired,
    signed out or revoked."""
    if not token or len(token) > 100:
        return None
    now = timezone.now()
    row = PanelSession.objects.filter(
        key_hash=_key_hash(token), revoked_at__isnull=True, expires_at__gt=now
    ).first()
    if row is None:
        return None
    if row.last_seen_at < now - LAST_SEEN_EVERY:
        # Written at most once a minute: the admin's list shows who is active, cheaply.
        PanelSession.objects.filter(pk=row.pk).update(last_seen_at=now)
    groups = row.group_ids
    return PanelUser(
        account_id=row.account_id,
        context_identifier=row.context_identifier,
        associate_id=row.associate_id,
        name=row.name,
        group_ids=None if groups is None else tuple(int(g) for g in groups),
        method=row.method,
        session_id=row.pk,
    )


def panel_session_end(*, token: str, by: str) -> bool:
    """Sign a panel session out (the token it was opened with). True when one ended."""
    if not token or len(token) > 100:
        return False
    return bool(
        PanelSession.objects.filter(key_hash=_key_hash(token), revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=by[:200]
        )
    )


# -- OpenID Connect -----------------------------------------------------------------------


class ProviderMisconfigured(PanelAuthError):
    """The identity provider's address is wrong (it redirects, or is internal): the admin
    must fix the panel settings; kept on them and shown on their page."""


# The same rules as the SOAP client (crm.http): the address is checked when connecting,
# redirects are refused, replies are capped and every request has a deadline.
_http = guarded_session()


def _get_json(url: str) -> dict[str, Any]:
    try:
        response = _http.get(url, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        data = response.json()
    except RedirectRefused as exc:
        raise ProviderMisconfigured(
            f"SuperOffice's sign-in service at {url} answered with a redirect to "
            f"{exc.location or 'another address'}; set the issuer to the address it "
            "should be reached at."
        ) from exc
    except AddressRefused as exc:
        raise ProviderMisconfigured(
            f"SuperOffice's sign-in service address is refused: {exc}"
        ) from exc
    except (requests.RequestException, ValueError) as exc:
        raise PanelAuthError("SuperOffice's sign-in service could not be reached.") from exc
    if not isinstance(data, dict):
        raise PanelAuthError("SuperOffice's sign-in service answered something unexpected.")
    return data


def provider_metadata(*, issuer: str, refresh: bool = False) -> dict[str, Any]:
    """The discovery document of the identity provider, cached for a while."""
    issuer = issuer.rstrip("/")
    key = f"leads:oidc:discovery:{issuer}"
    metadata = None if refresh else cache.get(key)
    if metadata is None:
        metadata = _get_json(issuer + DISCOVERY_PATH)
        host = urlsplit(issuer).netloc.lower()
        for name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = metadata.get(name)
            if not isinstance(value, str):
                raise PanelAuthError("SuperOffice's sign-in service has no " + name + ".")
            # The hub calls these: they must stay on the host the admin named, so a
            # discovery document cannot send the hub to another (internal) address.
            parts = urlsplit(value)
            if parts.scheme not in ("https", "http") or parts.netloc.lower() != host:
                raise PanelAuthError("SuperOffice's sign-in service names another host.")
        cache.set(key, metadata, METADATA_TTL)
    return metadata


def provider_keys(*, jwks_uri: str, refresh: bool = False) -> KeySet:
    key = f"leads:oidc:jwks:{jwks_uri}"
    data = None if refresh else cache.get(key)
    if data is None:
        data = _get_json(jwks_uri)
        cache.set(key, data, METADATA_TTL)
    try:
        return KeySet.import_key_set(data)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise PanelAuthError("SuperOffice's signing keys could not be read.") from exc


def id_token_validate(
    *,
    id_token: str,
    keys: KeySet,
    issuer: str,
    client_id: str,
    nonce: str,
    context_identifier: str,
) -> dict[str, Any]:
    """The claims of a valid ID token, or PanelAuthError.

    Signature (RS256 only: no `none`, no HMAC with a public key), issuer, audience, expiry,
    not-before, nonce, and the tenant: `ctx` must be the account's context identifier.
    """
    try:
        token = jwt.decode(id_token, keys, algorithms=["RS256"])
        jwt.JWTClaimsRegistry(
            leeway=60,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": client_id},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except JoseError as exc:
        raise PanelAuthError(f"The sign-in token was refused ({exc.error}).") from exc
    except ValueError as exc:
        raise PanelAuthError("The sign-in token could not be read.") from exc
    claims = token.claims
    if not context_identifier or claims.get(CTX_CLAIM) != context_identifier:
        raise PanelAuthError("This SuperOffice user belongs to another tenant.")
    if not str(claims.get(ASSOCIATE_CLAIM, "")).isdigit():
        raise PanelAuthError("The sign-in token names no SuperOffice user.")
    return claims


def _session(settings: PanelSettings, redirect_uri: str) -> OAuth2Session:
    return guard_session(
        OAuth2Session(
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            scope="openid",
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method name
        )
    )


def oidc_begin(
    *, settings: PanelSettings, redirect_uri: str, login_hint: str = ""
) -> tuple[str, str]:
    """(authorization URL, signed flow state to keep in the pop-up's cookie)."""
    if not settings.oidc_configured:
        raise PanelAuthError("Sign-in with SuperOffice is not set up for this account yet.")
    metadata = provider_metadata(issuer=settings.oidc_issuer)
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    extra = {"login_hint": login_hint} if login_hint else {}
    url, _ = _session(settings, redirect_uri).create_authorization_url(
        metadata["authorization_endpoint"],
        state=state,
        nonce=nonce,
        code_verifier=verifier,
        **extra,
    )
    flow = signing.dumps(
        {"k": settings.panel_key, "s": state, "n": nonce, "v": verifier}, salt=FLOW_SALT
    )
    return url, flow


def oidc_complete(
    *, settings: PanelSettings, flow: str, code: str, state: str, redirect_uri: str
) -> PanelUser:
    """Exchange the code, validate the ID token, and name the verified user."""
    try:
        data = signing.loads(flow or "", salt=FLOW_SALT, max_age=FLOW_MAX_AGE)
    except signing.BadSignature as exc:
        raise PanelAuthError("The sign-in took too long or was started elsewhere.") from exc
    if data.get("k") != settings.panel_key or not state or data.get("s") != state:
        raise PanelAuthError("The sign-in answer does not belong to this sign-in.")
    if not code:
        raise PanelAuthError("SuperOffice did not sign you in.")
    metadata = provider_metadata(issuer=settings.oidc_issuer)
    try:
        tokens = _session(settings, redirect_uri).fetch_token(
            metadata["token_endpoint"],
            code=code,
            code_verifier=data["v"],
            timeout=HTTP_TIMEOUT,
        )
    except Exception as exc:  # authlib raises OAuthError, requests its own; both mean "no"
        logger.warning("Panel sign-in: token exchange failed: %s", type(exc).__name__)
        raise PanelAuthError("SuperOffice refused the sign-in.") from exc
    id_token = tokens.get("id_token")
    if not id_token:
        raise PanelAuthError("SuperOffice returned no ID token.")
    keys = provider_keys(jwks_uri=metadata["jwks_uri"])
    try:
        claims = _validate(settings, metadata, keys, id_token, data["n"])
    except PanelAuthError:
        # A key rotation: fetch the key set once more before refusing.
        keys = provider_keys(jwks_uri=metadata["jwks_uri"], refresh=True)
        claims = _validate(settings, metadata, keys, id_token, data["n"])
    associate_id = int(claims[ASSOCIATE_CLAIM])
    return PanelUser(
        account_id=settings.account_id,
        context_identifier=settings.context_identifier,
        associate_id=associate_id,
        name=str(claims.get(EMAIL_CLAIM) or claims.get("sub") or ""),
        group_ids=_groups_of(settings, tokens.get("access_token") or "", associate_id),
        method="oidc",
    )


def _groups_of(settings: PanelSettings, access_token: str, associate_id: int):
    """The user's groups, asked of NetServer with the user's own access token
    (SoPrincipal.AuthenticateWithAccessToken); the ID token does not carry them.

    None when NetServer cannot tell: panels limited to some groups then stay closed.
    """
    from crm.errors import CrmError
    from crm.services import client_for_account

    try:
        client = client_for_account(settings.account, correlation="panel:sign-in")
        principal = client.verify_access_token(access_token=access_token)
    except CrmError as exc:
        logger.warning("Panel sign-in: groups not known: %s", type(exc).__name__)
        return None
    if principal is None or principal.associate_id != associate_id:
        return None
    return tuple(principal.group_ids)


def _validate(settings, metadata, keys, id_token, nonce) -> dict[str, Any]:
    return id_token_validate(
        id_token=id_token,
        keys=keys,
        issuer=metadata["issuer"],
        client_id=settings.oidc_client_id,
        nonce=nonce,
        context_identifier=settings.context_identifier,
    )


# -- on-site <usec> -----------------------------------------------------------------------


def usec_verify(*, settings: PanelSettings, usec: str) -> PanelUser | None:
    """The user a `<usec>` belongs to, asked of NetServer; None when it is not accepted."""
    from crm.errors import CrmError
    from crm.services import client_for_account

    if not settings.usec_enabled or not usec or len(usec) > 500:
        return None
    try:
        client = client_for_account(settings.account, correlation="panel:usec")
        principal = client.verify_panel_user(usec=usec)
    except CrmError as exc:
        logger.warning("Panel sign-in: <usec> check failed: %s", type(exc).__name__)
        return None
    if principal is None or not principal.associate_id:
        return None
    return PanelUser(
        account_id=settings.account_id,
        context_identifier=settings.context_identifier,
        associate_id=principal.associate_id,
        name=principal.full_name or principal.name,
        group_ids=tuple(principal.group_ids),
        method="usec",
    )
