"""The providers' OAuth authorization servers, in their wire formats: where their consent screen is, how a code
becomes tokens, how tokens are refreshed and revoked.

- Stripe Connect: consent at ``connect.stripe.com/oauth/authorize``; the code for tokens at ``POST /oauth/token``
  with the client secret; Connect tokens do not expire; revoked by ``POST /oauth/deauthorize`` (``client_id``,
  ``stripe_user_id``).
- Google (GA4): consent at ``accounts.google.com/o/oauth2/v2/auth`` with offline access and PKCE; tokens at
  ``POST oauth2.googleapis.com/token``, access tokens last an hour and are refreshed with the refresh token grant;
  revoked by ``POST oauth2.googleapis.com/revoke`` (``token``).
- HubSpot: consent at ``app.hubspot.com/oauth/authorize``; tokens at ``POST api.hubapi.com/oauth/v1/token``, the
  account and scopes from ``GET /oauth/v1/access-tokens/{token}``; access tokens last 30 minutes and are refreshed
  with the refresh token grant; revoked by ``DELETE /oauth/v1/refresh-tokens/{token}``.
- Shopify (the app install): consent at ``{shop}/admin/oauth/authorize``, the redirect back signed (``hmac``); the
  token at ``POST {shop}/admin/oauth/access_token``; offline tokens do not expire; the app is uninstalled by
  ``DELETE {shop}/admin/api_permissions/current.json``.

The endpoints are the install's settings (``OAuthApp``), defaulting to these. Every request goes through the outbound
guard (``core/outbound.py``): Shopify's address is the store's domain, which the person connecting types.
A refusal (``invalid_grant``, HubSpot's ``BAD_REFRESH_TOKEN``, …) is ``ProviderRefused`` with the provider's code and
words; a provider that cannot be reached or answers nonsense is ``ProviderUnavailable``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import httpx

from northstar.core.outbound import BlockedDestination, OutboundPolicy, outbound_client
from northstar.integrations.connectors.shopify import shop_domain
from northstar.settings import IntegrationOAuthSettings, OAuthApp


class ProviderRefused(Exception):
    """The authorization server said no: its error code and description."""

    def __init__(self, code: str, description: str = "") -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code, self.description = code, description


class ProviderUnavailable(Exception):
    """The authorization server could not be reached, or answered something that is not its wire format."""


@dataclass(frozen=True)
class Grant:
    """What the provider granted: the credentials to store (the connector's names), the scopes, until when the
    access token works (None: until revoked), and which of its accounts it is for."""

    credentials: dict[str, str]
    scopes: tuple[str, ...]
    expires_at: dt.datetime | None = None
    account: str | None = None


@dataclass(frozen=True)
class Endpoints:
    authorize: str
    token: str
    revoke: str
    api: str


@dataclass
class AuthorizationServer(ABC):
    """One provider's authorization server, for the install's OAuth client (``app``); ``config`` is the
    integration's settings (Shopify's store)."""

    provider: ClassVar[str]  # the connector's name
    setting: ClassVar[str]  # the ``NORTHSTAR_INTEGRATIONS__OAUTH__*`` section
    defaults: ClassVar[Endpoints]
    scopes: ClassVar[tuple[str, ...]]
    scope_separator: ClassVar[str] = " "
    pkce: ClassVar[bool] = False
    needs: ClassVar[tuple[str, ...]] = ()  # settings the person connecting gives before the consent screen

    app: OAuthApp
    policy: OutboundPolicy
    config: Mapping[str, Any] = field(default_factory=dict)

    def endpoint(self, name: str) -> str:
        configured = getattr(self.app, f"{name}_url") or getattr(self.defaults, name)
        return str(configured).replace("{shop}", str(self.config.get("shop", "")))

    @property
    def requested_scopes(self) -> tuple[str, ...]:
        return tuple(self.app.scopes) if self.app.scopes else self.scopes

    def authorize_url(self, *, state: str, redirect_uri: str, challenge: str) -> str:
        query = {
            "response_type": "code",
            "client_id": self.app.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.scope_separator.join(self.requested_scopes),
            "state": state,
            **self.authorize_extras(),
        }
        if self.pkce:
            query |= {"code_challenge": challenge, "code_challenge_method": "S256"}
        return f"{self.endpoint('authorize')}?{urlencode(query)}"

    def authorize_extras(self) -> dict[str, str]:
        return {}

    def connector_config(self) -> dict[str, Any]:
        """Settings of an integration connected this way: the API the install points at, when it is not the
        provider's own."""
        return {"base_url": self.endpoint("api")} if self.app.api_url else {}

    def check_callback(self, params: Mapping[str, str]) -> None:  # noqa: B027 - most providers sign nothing
        """Raise ``ProviderRefused`` unless the redirect's parameters are the provider's (Shopify signs them)."""

    def exchange_form(self, *, code: str, redirect_uri: str, verifier: str) -> dict[str, str]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.app.client_id,
            "client_secret": self.app.client_secret,
        }
        return form | ({"code_verifier": verifier} if self.pkce else {})

    async def exchange(self, *, code: str, redirect_uri: str, verifier: str) -> Grant:
        body = await self.call(
            "POST",
            self.endpoint("token"),
            data=self.exchange_form(code=code, redirect_uri=redirect_uri, verifier=verifier),
        )
        return await self.grant(body, previous={})

    async def refresh(self, credentials: Mapping[str, str]) -> Grant:
        """A new access token for the stored refresh token (RFC 6749 section 6, client credentials in the body)."""
        refresh_token = credentials.get("refresh_token")
        if not refresh_token:
            raise ProviderRefused("invalid_grant", "no refresh token is stored")
        body = await self.call(
            "POST",
            self.endpoint("token"),
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": self.app.client_id,
                "client_secret": self.app.client_secret,
            },
        )
        return await self.grant(body, previous=credentials)

    @abstractmethod
    async def revoke(self, credentials: Mapping[str, str], account: str | None) -> None:
        """End the grant at the provider."""

    async def grant(self, body: Mapping[str, Any], *, previous: Mapping[str, str]) -> Grant:
        """The tokens of a token endpoint's answer (a refresh may leave the refresh token out: the old one stays)."""
        access = _text(body, "access_token")
        refresh = body.get("refresh_token") or previous.get("refresh_token")
        expires_in = body.get("expires_in")
        return Grant(
            credentials={"access_token": access, **({"refresh_token": str(refresh)} if refresh else {})},
            scopes=tuple(str(body.get("scope") or "").replace(",", " ").split()) or self.requested_scopes,
            expires_at=_expiry(expires_in),
        )

    async def call(self, method: str, url: str, **options: Any) -> dict[str, Any]:
        """One request to the authorization server; its JSON object, or its refusal as ``ProviderRefused``."""
        async with outbound_client(self.policy) as http:
            try:
                response = await http.request(method, url, **options)
            except BlockedDestination as exc:
                raise ProviderRefused("blocked_destination", exc.message) from None
            except httpx.HTTPError as exc:
                raise ProviderUnavailable(f"{self.provider} could not be reached ({type(exc).__name__})") from None
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = None
        if response.status_code >= 500 or not isinstance(body, dict):
            raise ProviderUnavailable(f"{self.provider} answered {response.status_code} without its JSON")
        if response.status_code >= 400:
            raise self.refusal(body, response.status_code)
        return body

    def refusal(self, body: Mapping[str, Any], status: int) -> ProviderRefused:
        """OAuth's error body (RFC 6749 section 5.2): ``error`` and ``error_description``."""
        error = body.get("error")
        if isinstance(error, dict):  # an API's error object, as Google's and Stripe's APIs answer
            return ProviderRefused(
                str(error.get("status") or error.get("code") or status), str(error.get("message", ""))
            )
        return ProviderRefused(str(error or f"http_{status}"), str(body.get("error_description") or ""))


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str | int) or not str(value):
        raise ProviderUnavailable(f"the token endpoint answered without {name}")
    return str(value)


def _expiry(expires_in: Any) -> dt.datetime | None:
    if isinstance(expires_in, int | float) and expires_in > 0:
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=float(expires_in))
    return None


class StripeConnect(AuthorizationServer):
    provider, setting = "stripe", "stripe"
    defaults = Endpoints(
        authorize="https://connect.stripe.com/oauth/authorize",
        token="https://connect.stripe.com/oauth/token",  # noqa: S106 - an address
        revoke="https://connect.stripe.com/oauth/deauthorize",
        api="https://api.stripe.com",
    )
    scopes = ("read_only",)

    def exchange_form(self, *, code: str, redirect_uri: str, verifier: str) -> dict[str, str]:
        return {"grant_type": "authorization_code", "code": code, "client_secret": self.app.client_secret}

    async def grant(self, body: Mapping[str, Any], *, previous: Mapping[str, str]) -> Grant:
        """The connected account's access token works as its secret key (the connector's ``api_key``)."""
        return Grant(
            credentials={"api_key": _text(body, "access_token")},
            scopes=tuple(str(body.get("scope") or "").split()) or self.requested_scopes,
            account=_text(body, "stripe_user_id"),
        )

    async def revoke(self, credentials: Mapping[str, str], account: str | None) -> None:
        await self.call(
            "POST",
            self.endpoint("revoke"),
            data={"client_id": self.app.client_id, "stripe_user_id": account or ""},
            auth=(self.app.client_secret, ""),
        )


class Google(AuthorizationServer):
    provider, setting = "google_analytics", "google"
    defaults = Endpoints(
        authorize="https://accounts.google.com/o/oauth2/v2/auth",
        token="https://oauth2.googleapis.com/token",  # noqa: S106 - an address
        revoke="https://oauth2.googleapis.com/revoke",
        api="https://analyticsdata.googleapis.com",
    )
    scopes = ("https://www.googleapis.com/auth/analytics.readonly",)
    pkce = True
    needs = ("property_id",)

    def authorize_extras(self) -> dict[str, str]:
        """A refresh token (offline access), asked for again on every consent so a reconnect gets a new one."""
        return {"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"}

    async def revoke(self, credentials: Mapping[str, str], account: str | None) -> None:
        """Revoking the refresh token ends the access tokens made from it too."""
        token = credentials.get("refresh_token") or credentials.get("access_token", "")
        await self.call("POST", self.endpoint("revoke"), data={"token": token})


class HubSpot(AuthorizationServer):
    provider, setting = "hubspot", "hubspot"
    defaults = Endpoints(
        authorize="https://app.hubspot.com/oauth/authorize",
        token="https://api.hubapi.com/oauth/v1/token",  # noqa: S106 - an address
        revoke="https://api.hubapi.com/oauth/v1/refresh-tokens",
        api="https://api.hubapi.com",
    )
    scopes = ("crm.objects.deals.read", "oauth")

    async def grant(self, body: Mapping[str, Any], *, previous: Mapping[str, str]) -> Grant:
        """HubSpot's token answer names neither the account nor the scopes: its access token's metadata does."""
        made = await super().grant(body, previous=previous)
        about = await self.call(
            "GET",
            f"{self.endpoint('api').rstrip('/')}/oauth/v1/access-tokens/{quote(made.credentials['access_token'])}",
        )
        scopes = about.get("scopes")
        return Grant(
            credentials=made.credentials,
            scopes=tuple(str(scope) for scope in scopes) if isinstance(scopes, list) else made.scopes,
            expires_at=made.expires_at,
            account=str(about["hub_id"]) if about.get("hub_id") is not None else None,
        )

    def refusal(self, body: Mapping[str, Any], status: int) -> ProviderRefused:
        """HubSpot's errors: ``{"status": "BAD_AUTH_CODE", "message", "correlationId"}``."""
        return ProviderRefused(str(body.get("status") or f"http_{status}"), str(body.get("message") or ""))

    async def revoke(self, credentials: Mapping[str, str], account: str | None) -> None:
        token = credentials.get("refresh_token", "")
        await self.call("DELETE", f"{self.endpoint('revoke').rstrip('/')}/{quote(token, safe='')}")


class Shopify(AuthorizationServer):
    provider, setting = "shopify", "shopify"
    defaults = Endpoints(
        authorize="https://{shop}/admin/oauth/authorize",
        token="https://{shop}/admin/oauth/access_token",  # noqa: S106 - an address
        revoke="https://{shop}/admin/api_permissions/current.json",
        api="https://{shop}",
    )
    scopes = ("read_orders", "read_customers")
    scope_separator = ","
    needs = ("shop",)

    def check_callback(self, params: Mapping[str, str]) -> None:
        """The redirect names the store the install began at and is signed with the app's secret: an HMAC-SHA256
        (hex) of the other parameters, sorted, as ``key=value`` joined by ``&``."""
        if shop_domain(params.get("shop")) != self.config.get("shop"):
            raise ProviderRefused("invalid_request", "the redirect names another store than the one being connected")
        given = params.get("hmac", "")
        message = "&".join(f"{key}={value}" for key, value in sorted(params.items()) if key != "hmac")
        expected = hmac.new(self.app.client_secret.encode(), message.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, given):
            raise ProviderRefused("invalid_request", "the redirect is not signed with the app's secret")

    def exchange_form(self, *, code: str, redirect_uri: str, verifier: str) -> dict[str, str]:
        return {"client_id": self.app.client_id, "client_secret": self.app.client_secret, "code": code}

    async def grant(self, body: Mapping[str, Any], *, previous: Mapping[str, str]) -> Grant:
        return Grant(
            credentials={"access_token": _text(body, "access_token")},
            scopes=tuple(str(body.get("scope") or "").replace(",", " ").split()) or self.requested_scopes,
            account=str(self.config.get("shop")),
        )

    async def revoke(self, credentials: Mapping[str, str], account: str | None) -> None:
        """The app is uninstalled from the store, which ends its token."""
        await self.call(
            "DELETE", self.endpoint("revoke"), headers={"X-Shopify-Access-Token": credentials.get("access_token", "")}
        )


SERVERS: dict[str, type[AuthorizationServer]] = {
    server.provider: server for server in (StripeConnect, Google, HubSpot, Shopify)
}


def app_of(oauth: IntegrationOAuthSettings, provider: str) -> OAuthApp | None:
    """The install's OAuth client for a provider's integrations, or None when it has none (no Connect button)."""
    server = SERVERS.get(provider)
    app: OAuthApp | None = getattr(oauth, server.setting) if server is not None else None
    return app if app is not None and app.configured else None
