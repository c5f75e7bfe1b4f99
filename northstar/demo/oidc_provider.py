"""A small OpenID Connect provider on loopback, speaking the spec's endpoints as Google or Microsoft do: discovery
(``/.well-known/openid-configuration``), ``/authorize`` (authorization code with PKCE S256; the person at the screen
is ``person``, and consents at once), ``/token`` (the code for an ID token signed RS256 with a ``kid`` published at
``/jwks``, once: a code asked again is ``invalid_grant``) and ``/userinfo``.

It also speaks GitHub's OAuth app sign-in, which has no ID token: ``/login/oauth/authorize``,
``/login/oauth/access_token`` (JSON when asked with ``Accept: application/json``, errors in a 200 as GitHub answers
them), and the API's ``/user`` and ``/user/emails`` for the access token.

``misbehave`` makes the next ID tokens wrong in one way each, as an attacker or a broken provider would: issued for
another audience or by another issuer, expired, unsigned (``alg: none``), signed by a key it does not publish, or
carrying another nonce. Tests and the benchmark serve it with ``loopback.serving``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

Misbehaviour = Literal["audience", "issuer", "expired", "unsigned", "foreign_key", "nonce"]


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Person:
    subject: str
    email: str
    name: str
    email_verified: bool = True


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    person: Person


@dataclass
class FakeOidcProvider:
    client_id: str = "northstar-test"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    person: Person = field(default_factory=lambda: Person("10769150350006150715113082367", "ada@example.com", "Ada"))
    issuer: str = ""  # set by ``serve_at`` once the port is known
    misbehave: Misbehaviour | None = None
    token_ttl_seconds: int = 3600
    _key: rsa.RSAPrivateKey = field(default_factory=_new_key)
    _kid: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    _grants: dict[str, _Grant] = field(default_factory=dict)
    _used: set[str] = field(default_factory=set)
    _tokens: dict[str, Person] = field(default_factory=dict)
    exchanges: int = 0

    def serve_at(self, base_url: str) -> None:
        self.issuer = base_url

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._discovery),
                Route("/authorize", self._authorize),
                Route("/token", self._token, methods=["POST"]),
                Route("/jwks", self._jwks),
                Route("/userinfo", self._userinfo),
                Route("/login/oauth/authorize", self._authorize),
                Route("/login/oauth/access_token", self._github_token, methods=["POST"]),
                Route("/user", self._github_user),
                Route("/user/emails", self._github_emails),
            ]
        )

    async def _discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": ["openid", "email", "profile"],
            }
        )

    async def _authorize(self, request: Request) -> Response:
        query = request.query_params
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or not redirect_uri:
            return JSONResponse({"error": "invalid_client"}, status_code=400)
        if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(24)
        self._grants[code] = _Grant(
            self.client_id, redirect_uri, query.get("code_challenge", ""), query.get("nonce", ""), self.person
        )
        return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': query.get('state', '')})}", 302)

    async def _redeem(self, request: Request) -> _Grant | str:
        """The grant a token request's code, client and verifier redeem (once), or the OAuth error why not."""
        form = await request.form()
        code = str(form.get("code", ""))
        grant = self._grants.get(code)
        client_id, client_secret = self._client(request, form)
        if client_id != self.client_id or client_secret != self.client_secret:
            return "invalid_client"
        if grant is None or code in self._used or form.get("redirect_uri") != grant.redirect_uri:
            return "invalid_grant"
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant.challenge:
            return "invalid_grant"
        self._used.add(code)
        self.exchanges += 1
        return grant

    async def _token(self, request: Request) -> Response:
        grant = await self._redeem(request)
        if isinstance(grant, str):
            return JSONResponse({"error": grant}, status_code=401 if grant == "invalid_client" else 400)
        return JSONResponse(
            {
                "access_token": self._access_token(grant),
                "token_type": "Bearer",
                "expires_in": self.token_ttl_seconds,
                "id_token": self.id_token(grant),
            }
        )

    def _access_token(self, grant: _Grant) -> str:
        token = f"gho_{secrets.token_urlsafe(16)}"
        self._tokens[token] = grant.person
        return token

    async def _github_token(self, request: Request) -> Response:
        """GitHub answers a refused code with 200 and an ``error`` (``bad_verification_code``)."""
        if request.headers.get("accept") != "application/json":
            return Response("access_token=…&scope=…", media_type="application/x-www-form-urlencoded")
        grant = await self._redeem(request)
        if isinstance(grant, str):
            error = "incorrect_client_credentials" if grant == "invalid_client" else "bad_verification_code"
            return JSONResponse({"error": error})
        return JSONResponse({"access_token": self._access_token(grant), "token_type": "bearer", "scope": "user:email"})

    def _bearer(self, request: Request) -> Person | None:
        header = request.headers.get("authorization", "")
        return self._tokens.get(header.removeprefix("Bearer ").removeprefix("token "))

    async def _github_user(self, request: Request) -> Response:
        person = self._bearer(request)
        if person is None:
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        login = person.email.split("@")[0]
        return JSONResponse({"id": int(person.subject[:12], 16), "login": login, "name": person.name, "email": None})

    async def _github_emails(self, request: Request) -> Response:
        person = self._bearer(request)
        if person is None:
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        return JSONResponse(
            [
                {"email": f"{person.subject[:8]}@users.noreply.github.com", "primary": False, "verified": True},
                {"email": person.email, "primary": True, "verified": person.email_verified},
            ]
        )

    @staticmethod
    def _client(request: Request, form: Any) -> tuple[str, str]:
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return user, password
        return str(form.get("client_id", "")), str(form.get("client_secret", ""))

    def id_token(self, grant: _Grant) -> str:
        now = int(time.time())
        claims = {
            "iss": "https://elsewhere.example" if self.misbehave == "issuer" else self.issuer,
            "aud": "another-client" if self.misbehave == "audience" else grant.client_id,
            "sub": grant.person.subject,
            "email": grant.person.email,
            "email_verified": grant.person.email_verified,
            "name": grant.person.name,
            "nonce": "not-the-nonce" if self.misbehave == "nonce" else grant.nonce,
            "iat": now - 7200 if self.misbehave == "expired" else now,
            "exp": now - 3600 if self.misbehave == "expired" else now + self.token_ttl_seconds,
        }
        if self.misbehave == "unsigned":
            return jwt.encode(claims, "", algorithm="none")
        key = _new_key() if self.misbehave == "foreign_key" else self._key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self._kid})

    async def _jwks(self, request: Request) -> Response:
        public = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return JSONResponse({"keys": [{**public, "kid": self._kid, "use": "sig", "alg": "RS256"}]})

    async def _userinfo(self, request: Request) -> Response:
        person = self.person
        return JSONResponse({"sub": person.subject, "email": person.email, "name": person.name})
