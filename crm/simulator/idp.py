"""The simulator's OpenID Connect identity provider, standing in for SuperOffice's SuperID.

Web panels of Online tenants sign the SuperOffice user in with OpenID Connect (authorization
code flow, in a pop-up because SuperID cannot load inside a frame). This module serves what
the hub needs from SuperID so that flow runs in tests and in the demo:

- ``GET  /login/.well-known/openid-configuration``  discovery document
- ``GET  /login/.well-known/jwks``                  the signing keys (public part)
- ``GET  /login/common/oauth/authorize``            a sign-in page listing the simulated
  associates, or straight back to the client when ``login_hint`` names one
- ``POST /login/common/oauth/authorize``            the sign-in page's choice
- ``POST /login/common/oauth/tokens``               code (+ PKCE verifier) for tokens

ID tokens are RS256-signed and carry SuperOffice's claims
(``http://schemes.superoffice.net/identity/ctx``, ``…/associateid``, …; SuperOffice docs,
"Authentication > Online > API"). The client secret is the tenant's application token, as in
SuperOffice, where the application token is the app's client secret.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

PREFIX = "/login/"
DISCOVERY_PATH = "/login/.well-known/openid-configuration"
JWKS_PATH = "/login/.well-known/jwks"
AUTHORIZE_PATH = "/login/common/oauth/authorize"
TOKEN_PATH = "/login/common/oauth/tokens"  # noqa: S105 - a path, not a secret
CLAIM_PREFIX = "http://schemes.superoffice.net/identity/"
# The application id a simulated tenant knows by default (any redirect URI is accepted
# for it); a tenant may be given another.
CLIENT_ID = "emhub-panels"
CODE_TTL = 120
ID_TOKEN_TTL = 3600


@dataclass
class _Grant:
    associate_id: int
    client_id: str
    redirect_uri: str
    nonce: str
    code_challenge: str
    expires: float


class IdentityProvider:
    """Per-simulator state: the signing key and the codes not yet exchanged."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        self.key = RSAKey.generate_key(
            2048, parameters={"kid": secrets.token_hex(8), "use": "sig", "alg": "RS256"}
        )
        self._codes: dict[str, _Grant] = {}
        self._lock = threading.Lock()

    @property
    def tenant(self) -> Any:
        return self.sim.tenant

    # -- documents ------------------------------------------------------------------------

    def discovery(self, issuer: str) -> dict[str, Any]:
        return {
            "issuer": issuer,
            "authorization_endpoint": issuer + AUTHORIZE_PATH,
            "token_endpoint": issuer + TOKEN_PATH,
            "jwks_uri": issuer + JWKS_PATH,
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "scopes_supported": ["openid"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    # -- authorize ------------------------------------------------------------------------

    def _associate_for_hint(self, hint: str) -> int | None:
        hint = hint.strip().lower()
        for associate_id, a in self.tenant.associates.items():
            if hint in {a["Name"].lower(), a["email"].lower(), str(associate_id)}:
                return associate_id
        return None

    def authorize(self, params: dict[str, str], chosen: int | None) -> tuple[int, dict, bytes]:
        """(status, headers, body) for the authorize endpoint."""
        redirect_uri = params.get("redirect_uri", "")
        client_id = self.tenant.oidc_client_id
        if params.get("client_id") != client_id or not redirect_uri.startswith("http"):
            return 400, {}, b"unknown client_id or bad redirect_uri"
        state = params.get("state", "")
        if params.get("response_type") != "code" or "openid" not in params.get("scope", ""):
            error = {"error": "unsupported_response_type", "state": state}
            return self._redirect(redirect_uri, error)
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return self._redirect(redirect_uri, {"error": "invalid_request", "state": state})
        associate_id = chosen
        if associate_id is None and params.get("login_hint"):
            associate_id = self._associate_for_hint(params["login_hint"])
        if associate_id is None or associate_id not in self.tenant.associates:
            return 200, {"Content-Type": "text/html; charset=utf-8"}, self._sign_in_page(params)
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Grant(
                associate_id=associate_id,
                client_id=client_id,
                redirect_uri=redirect_uri,
                nonce=params.get("nonce", ""),
                code_challenge=params["code_challenge"],
                expires=time.time() + CODE_TTL,
            )
        return self._redirect(redirect_uri, {"code": code, "state": state})

    @staticmethod
    def _redirect(uri: str, query: dict[str, str]) -> tuple[int, dict, bytes]:
        sep = "&" if urlsplit(uri).query else "?"
        return 302, {"Location": uri + sep + urlencode(query)}, b""

    def _sign_in_page(self, params: dict[str, str]) -> bytes:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
            if k != "associate_id"
        )
        buttons = "".join(
            f'<li><button name="associate_id" value="{aid}">{html.escape(a["FullName"])}'
            f" ({html.escape(a['Name'])})</button></li>"
            for aid, a in sorted(self.tenant.associates.items())
        )
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>SuperOffice sign-in "
            "(simulator)</title></head><body><h1>Sign in to SuperOffice</h1>"
            f"<p>Simulated tenant {html.escape(self.tenant.context_identifier)}</p>"
            f"<form method='post' action='{AUTHORIZE_PATH}'>{hidden}<ul>{buttons}</ul></form>"
            "</body></html>"
        )
        return page.encode()

    # -- token ----------------------------------------------------------------------------

    def token(self, form: dict[str, str], auth_header: str, issuer: str) -> tuple[int, dict]:
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        if auth_header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth_header[6:]).decode()
                client_id, _, client_secret = decoded.partition(":")
            except ValueError:
                return 401, {"error": "invalid_client"}
        if client_id != self.tenant.oidc_client_id or client_secret != self.tenant.app_token:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or grant.expires < time.time():
            return 400, {"error": "invalid_grant"}
        if grant.redirect_uri != form.get("redirect_uri", ""):
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
        verifier = form.get("code_verifier", "")
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        if not verifier or challenge != grant.code_challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE check failed"}
        return 200, {
            "access_token": self.tenant.issue_access_token(grant.associate_id, ID_TOKEN_TTL),
            "token_type": "Bearer",
            "expires_in": ID_TOKEN_TTL,
            "id_token": self.id_token(
                associate_id=grant.associate_id, nonce=grant.nonce, issuer=issuer
            ),
        }

    def id_token(
        self,
        *,
        associate_id: int,
        nonce: str,
        issuer: str,
        audience: str | None = None,
        lifetime: int = ID_TOKEN_TTL,
        context_identifier: str | None = None,
    ) -> str:
        a = self.tenant.associates[associate_id]
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": audience or self.tenant.oidc_client_id,
            "sub": a["email"],
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "nonce": nonce,
            CLAIM_PREFIX + "associateid": str(associate_id),
            CLAIM_PREFIX + "ctx": context_identifier or self.tenant.context_identifier,
            CLAIM_PREFIX + "email": a["email"],
            CLAIM_PREFIX + "upn": a["email"],
            CLAIM_PREFIX + "initials": a["Name"],
            CLAIM_PREFIX + "is_administrator": "True" if a["GroupIdx"] == 4 else "False",
            CLAIM_PREFIX + "netserver_url": issuer + "/Remote/Services88/",
            CLAIM_PREFIX + "identityprovider": "central",
        }
        return jwt.encode({"alg": "RS256", "kid": self.key.kid, "typ": "JWT"}, claims, self.key)


_providers: dict[int, IdentityProvider] = {}
_providers_lock = threading.Lock()


def provider_for(sim: Any) -> IdentityProvider:
    """One identity provider per simulator (its key lives as long as the simulator)."""
    with _providers_lock:
        provider = _providers.get(id(sim))
        if provider is None or provider.sim is not sim:
            provider = _providers[id(sim)] = IdentityProvider(sim)
        return provider


def respond(handler: Any, sim: Any, body: bytes = b"") -> None:
    """Answer a ``/login/...`` request on the simulator's HTTP handler."""
    parts = urlsplit(handler.path)
    provider = provider_for(sim)
    issuer = "http://" + (handler.headers.get("Host") or "127.0.0.1")
    method = handler.command
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}

    def send_json(status: int, data: Any) -> None:
        handler._send(
            status,
            json.dumps(data).encode(),
            content_type="application/json",
            extra={"Cache-Control": "no-store"},
        )

    if parts.path == DISCOVERY_PATH and method == "GET":
        send_json(200, provider.discovery(issuer))
    elif parts.path == JWKS_PATH and method == "GET":
        send_json(200, provider.jwks())
    elif parts.path == AUTHORIZE_PATH and method in {"GET", "POST"}:
        params = query
        chosen = None
        if method == "POST":
            params = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
            value = params.get("associate_id", "")
            chosen = int(value) if value.isdigit() else None
        status, headers, page = provider.authorize(params, chosen)
        content_type = headers.pop("Content-Type", "text/plain; charset=utf-8")
        handler._send(status, page, content_type=content_type, extra=headers)
    elif parts.path == TOKEN_PATH and method == "POST":
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        status, data = provider.token(form, handler.headers.get("Authorization") or "", issuer)
        send_json(status, data)
    else:
        handler._send(404, b"not found", content_type="text/plain")
