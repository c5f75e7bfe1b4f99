"""All configuration in one pydantic-settings class; every variable is listed in the README."""

from __future__ import annotations

import json
import os
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_origin

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    cors_origins: list[str] = []
    max_body_bytes: int = 10 * 1024 * 1024
    request_timeout_seconds: float = 30.0
    trust_forwarded_for: bool = False


class DatabaseSettings(BaseModel):
    """How long the platform waits on PostgreSQL before it answers 503 instead (see docs/operations.md)."""

    connect_timeout_seconds: int = Field(3, ge=2)  # libpq's own minimum is 2
    pool_timeout_seconds: float = Field(2.0, gt=0)
    statement_timeout_seconds: float = Field(5.0, ge=0)  # requests; 0 is none
    lock_timeout_seconds: float = Field(3.0, ge=0)  # requests; 0 is none
    worker_statement_timeout_seconds: float = Field(0.0, ge=0)  # queue workers: data jobs run long
    stall_seconds: float = Field(0.5, gt=0)  # a silent round trip this long asks whether the server answers
    probe_timeout_seconds: float = Field(1.0, gt=0)  # how long that question may take


class SignInProvider(BaseModel):
    """A provider people sign in with. ``oidc`` (Google, Microsoft, any OpenID Connect provider): its endpoints come
    from ``{issuer}/.well-known/openid-configuration``. ``github``: GitHub's OAuth app flow at ``issuer``
    (https://github.com) and its API at ``api_url``. The redirect URI to register with it is
    ``{public_url}/app/login/with/{name}/callback``."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,39}$", description="the path segment: google, microsoft, okta")
    label: str = Field(min_length=1, max_length=60, description="the button's words: Google")
    kind: Literal["oidc", "github"] = "oidc"
    issuer: str = Field(pattern=r"^https?://", description="https://accounts.google.com")
    client_id: str = Field(min_length=1)
    client_secret: str = ""
    scopes: list[str] | None = Field(None, description="default: openid email profile; GitHub: read:user user:email")
    api_url: str = Field("https://api.github.com", pattern=r"^https?://", description="GitHub's API")


class AuthSettings(BaseModel):
    secret_key: str = ""
    issuer: str = "northstar"
    audience: str = "northstar-api"
    access_ttl_seconds: int = Field(900, le=900)
    refresh_ttl_seconds: int = 30 * 24 * 3600
    mfa_challenge_ttl_seconds: int = 300
    api_key_rotation_grace_seconds: int = 24 * 3600
    invitation_ttl_seconds: int = 7 * 24 * 3600
    # argon2id parameters: RFC 9106's low-memory profile (64 MiB, 3 passes); "cheapest" is for test suites only,
    # where thousands of sign-ups would otherwise spend minutes hashing.
    password_hashing: Literal["rfc9106-low-memory", "cheapest"] = "rfc9106-low-memory"  # noqa: S105 - a profile name
    # NORTHSTAR_AUTH__PROVIDERS='[{"name": "google", "label": "Google", "issuer": "https://accounts.google.com", …}]'
    providers: list[SignInProvider] = []
    sign_in_ttl_seconds: int = Field(600, gt=0, le=3600)  # from leaving for the provider to coming back


class RateLimitSettings(BaseModel):
    enabled: bool = True
    auth_per_ip_per_minute: int = 20
    auth_per_account_per_minute: int = 10
    api_per_principal_per_minute: int = 1200


class QueueSettings(BaseModel):
    retry_attempts: int = 5
    retry_base_delay_seconds: int = 2
    worker_concurrency: int = 4
    heartbeat_seconds: float = 5.0
    stalled_worker_timeout_seconds: float = 30.0
    # `northstar run` restarts a worker that dies: after 1, 2, 4 … seconds up to the cap, from 1 again once one has
    # run for `worker_healthy_seconds`.
    worker_restart_delay_seconds: float = Field(1.0, gt=0)
    worker_restart_max_delay_seconds: float = Field(60.0, gt=0)
    worker_healthy_seconds: float = Field(60.0, gt=0)


class DatasetsSettings(BaseModel):
    """The data service (seed 003): limits, retries per job type, retention."""

    max_upload_bytes: int = 5 * 1024**3
    # Decompression bombs and resource exhaustion: checked as an upload streams in and as its import streams.
    max_decompressed_bytes: int = 10 * 1024**3  # the data in one upload, once decompressed (Parquet: decoded)
    max_compression_ratio: float = 100.0  # decompressed bytes per uploaded byte (past the first MiB)
    max_upload_rows: int = 100_000_000  # data rows in one upload, rejected ones included
    max_org_storage_bytes: int = 50 * 1024**3  # an org's datasets (tables on disk) and stored files together
    batch_rows: int = 100_000
    # Connections that load one job's batches into its dataset at once (each commits in order, see OrderedLoad).
    load_connections: int = Field(2, ge=1)
    retry_attempts: dict[str, int] = {"generation": 3, "upload": 3, "export": 5}
    retry_base_delay_seconds: float = 2.0
    retry_max_delay_seconds: float = 300.0
    export_ttl_seconds: int = 7 * 24 * 3600
    download_link_ttl_seconds: int = 3600
    retention_days: int = 30


class BillingPlan(BaseModel):
    """A plan a site's organization can be on: its monthly unique-visitor quota (all the org's sites together),
    how many sites and notifications (per site) it may have (None: no limit), and its monthly price in minor units
    of ``currency`` (0: free). ``stripe_price_id`` is the recurring Stripe price that a checkout subscribes to."""

    model_config = ConfigDict(extra="forbid")  # a misspelt limit in the JSON must not pass as "no limit"

    name: str
    monthly_visitors: int | None = Field(None, ge=1)
    max_sites: int | None = Field(None, ge=1)
    max_notifications: int | None = Field(None, ge=1)
    price: int = Field(0, ge=0)
    currency: str = Field("usd", pattern=r"^[a-z]{3}$")
    stripe_price_id: str = ""


def _default_plans() -> dict[str, BillingPlan]:
    return {
        "free": BillingPlan(name="Free", monthly_visitors=1_000, max_sites=1, max_notifications=3),
        "starter": BillingPlan(name="Starter", monthly_visitors=10_000, max_sites=3, max_notifications=10, price=1_900),
        "growth": BillingPlan(name="Growth", monthly_visitors=50_000, max_sites=10, max_notifications=50, price=4_900),
        "pro": BillingPlan(name="Pro", monthly_visitors=250_000, max_sites=50, max_notifications=200, price=12_900),
    }


class BillingSettings(BaseModel):
    """Plans and how they are paid (``socialproof/service/billing.py``, docs/socialproof.md "Billing").

    ``manual`` (self-hosted, no charges) changes plans at once; ``stripe`` sends paid plans through Stripe Checkout
    and applies what Stripe's subscription webhooks say. ``default_plan`` is where organizations start; empty (the
    default of a self-hosted install): on no plan, nothing limited until an admin chooses one."""

    provider: Literal["manual", "stripe"] = "manual"
    plans: dict[str, BillingPlan] = Field(default_factory=_default_plans)
    default_plan: str = ""
    alert_percents: tuple[int, ...] = (80, 100)
    grace_days: int = Field(7, ge=0)  # events still collected this long after the quota is reached
    stripe_api_url: str = "https://api.stripe.com"
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""

    @model_validator(mode="after")
    def _known_default(self) -> BillingSettings:
        if self.default_plan and self.default_plan not in self.plans:
            raise ValueError(f"default_plan {self.default_plan!r} is not one of the plans")
        if any(not 0 < percent <= 100 for percent in self.alert_percents):
            raise ValueError("alert_percents are percentages from 1 to 100")
        return self


class SocialProofSettings(BaseModel):
    """The social proof module (seed 001): the public widget's ingestion, caches, privacy and retention."""

    geoip_database: Path | None = None
    spam_referrers_file: Path | None = None
    collect_max_bytes: int = 64 * 1024
    collect_per_ip_per_minute: int = 600
    ingest_max_batch: int = 5000
    ingest_max_pending: int = 100_000
    ingest_connections: int = 2
    ingest_timeout_seconds: float = 10.0
    site_cache_seconds: float = 30.0
    feed_cache_seconds: float = 5.0
    feed_items: int = 20
    raw_retention_days: int = 90
    minute_rollup_retention_days: int = 7
    # archives of raw months (docs/socialproof.md "Archival"): rows per Parquet row group, days a restore is kept
    archive_row_group_rows: int = 65_536
    archive_restore_days: int = 7
    # where a site proves control of its domain ({domain}: the site's); fetched through the outbound guard
    verification_url: str = "https://{domain}/.well-known/northstar-verification.txt"
    verification_timeout_seconds: float = 10.0
    billing: BillingSettings = BillingSettings()
    # keep visitor profiles (socialproof.visitor_profiles) up to date in the same statement that stores events
    visitor_profiles: bool = True


class OutboundSettings(BaseModel):
    """Requests to addresses users give (stores, receivers): see ``core/outbound.py``."""

    allow_private_networks: bool = False
    allow_http: bool = False
    timeout_seconds: float = 30.0
    max_response_bytes: int = 50 * 1024 * 1024
    retry_backoff_seconds: float = 0.5  # the first wait before retrying a provider; doubled each attempt


class CryptoSettings(BaseModel):
    """Field encryption keys: ``k1`` is derived from the platform secret; more may be configured and made current."""

    keys: dict[str, str] = {}
    current_key: str = ""


class SmtpSettings(BaseModel):
    host: str = ""
    port: int = 25
    username: str = ""
    password: str = ""
    starttls: bool = False
    sender: str = "Northstar <no-reply@northstar.local>"


class ReportsSettings(BaseModel):
    """Reports (KPIx coach): whether the schedules make reports (off: only the reports asked for are made)."""

    scheduled: bool = True


class AlertsSettings(BaseModel):
    """Alerts (KPIx): how deliveries are retried, when a failing channel is turned off, where Slack's Web API is."""

    delivery_attempts: int = Field(6, ge=1)  # tries of one delivery before it is failed
    retry_base_seconds: float = Field(30.0, gt=0)  # the first wait before a retry, doubled each time, with jitter
    retry_max_seconds: float = Field(3600.0, gt=0)
    disable_after_hours: float = Field(24.0, gt=0)  # a channel failing this long is turned off (admins are told)
    slack_api_url: str = "https://slack.com/api"  # chat.postMessage for bot tokens


class WebhooksSettings(BaseModel):
    """Outbound webhooks (Standard Webhooks): the retry schedule, when a failing endpoint is turned off, rotation."""

    # waits before the 2nd..7th attempt (5 s, 5 min, 30 min, 2 h, 8 h, 24 h: about 1.4 days), each with +-20 % jitter
    retry_delays_seconds: tuple[float, ...] = (5.0, 300.0, 1800.0, 7200.0, 28800.0, 86400.0)
    jitter: float = Field(0.2, ge=0, lt=1)
    disable_after_hours: float = Field(72.0, gt=0)  # an endpoint failing this long with no success is turned off
    rotation_grace_hours: float = Field(24.0, ge=0)  # the old secret still signs this long after a rotation
    timeout_seconds: float = Field(15.0, gt=0)  # one attempt, connect to last byte
    response_bytes: int = Field(1024, ge=0, le=65536)  # the first bytes of a receiver's answer kept per attempt
    subscription_cache_seconds: float = Field(10.0, ge=0)  # how long a process trusts its list of subscriptions


class LlmSettings(BaseModel):
    """The language model behind the coach's narratives and agents (``core/llm.py``): any OpenAI-compatible
    chat-completions server. No base URL (the default) is no model: callers write with their deterministic writer.

    Cost is counted in millionths of ``currency`` (integers, like all money here; a call costs a fraction of a cent).
    """

    base_url: str = ""  # e.g. http://localhost:11434/v1 (Ollama), https://api.openai.com/v1
    api_key: str = ""
    model: str = Field("", validate_default=True)
    provider: str = "openai"  # gen_ai.provider.name on the spans: who serves the wire format
    temperature: float = Field(0.2, ge=0, le=2)
    timeout_seconds: float = Field(20.0, gt=0)  # one generate(), its retry included
    max_retries: int = Field(1, ge=0)  # further attempts after an answer that is not valid JSON of the schema
    monthly_tokens: int = Field(1_000_000, ge=0)  # per org, input and output together; 0: no limit
    monthly_cost_micros: int = Field(0, ge=0)  # per org, in millionths of ``currency``; 0: no limit
    input_micros_per_1k_tokens: int = Field(0, ge=0)
    output_micros_per_1k_tokens: int = Field(0, ge=0)
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")

    @field_validator("model")
    @classmethod
    def _model_with_a_server(cls, value: str, info: ValidationInfo) -> str:
        """A server without a model name would fail on every call: refuse it at start."""
        if info.data.get("base_url") and not value:
            raise ValueError("is required when NORTHSTAR_LLM__BASE_URL is set")
        return value


class OAuthApp(BaseModel):
    """The OAuth client an install registered with a provider, behind its integrations' "Connect" buttons (without
    a client id and secret the provider has no button; pasting keys works either way). The endpoints default to the
    provider's documented ones; set them for a proxy, a regional endpoint or a test server (Shopify's may name the
    store as ``{shop}``). ``scopes`` replaces the read-only scopes the platform asks for."""

    model_config = ConfigDict(extra="forbid")  # a misspelt variable must not pass as "not configured"

    client_id: str = ""
    client_secret: str = ""
    scopes: list[str] | None = None
    authorize_url: str = Field("", pattern=r"^$|^https?://\S+$")
    token_url: str = Field("", pattern=r"^$|^https?://\S+$")
    revoke_url: str = Field("", pattern=r"^$|^https?://\S+$")
    api_url: str = Field("", pattern=r"^$|^https?://\S+$")  # where integrations connected this way sync from

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)


class IntegrationOAuthSettings(BaseModel):
    """OAuth connect for integrations: ``NORTHSTAR_INTEGRATIONS__OAUTH__HUBSPOT__CLIENT_ID`` and so on, per provider
    (Stripe Connect, Google for GA4, HubSpot, Shopify); see docs/identity.md."""

    stripe: OAuthApp = OAuthApp()
    google: OAuthApp = OAuthApp()
    hubspot: OAuthApp = OAuthApp()
    shopify: OAuthApp = OAuthApp()
    state_ttl_seconds: int = Field(600, gt=0, le=3600)  # from leaving for the provider's consent to coming back
    refresh_margin_seconds: int = Field(300, ge=0, le=3600)  # an access token this close to expiry is refreshed


class IntegrationsSettings(BaseModel):
    """Integrations (KPIx): how accounts are connected through the providers' OAuth."""

    oauth: IntegrationOAuthSettings = IntegrationOAuthSettings()


class Settings(BaseSettings):
    """Environment variables are NORTHSTAR_<FIELD> (nested: NORTHSTAR_AUTH__SECRET_KEY)."""

    model_config = SettingsConfigDict(env_prefix="NORTHSTAR_", env_nested_delimiter="__", extra="ignore")

    environment: str = "development"
    data_dir: Path = Path(".northstar")
    public_url: str = Field("", description="where clients reach the platform; unset: the address it listens on")
    log_level: str = "INFO"
    otel: bool = False
    database_url: str | None = Field(None, validation_alias=AliasChoices("DATABASE_URL", "NORTHSTAR_DATABASE_URL"))
    database_pool_size: int = 20
    db: DatabaseSettings = DatabaseSettings()
    redis_url: str | None = Field(None, validation_alias=AliasChoices("REDIS_URL", "NORTHSTAR_REDIS_URL"))
    storage_url: str | None = Field(None, validation_alias=AliasChoices("STORAGE_URL", "NORTHSTAR_STORAGE_URL"))
    s3_endpoint_url: str | None = None
    http: HttpSettings = HttpSettings()
    auth: AuthSettings = AuthSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    queue: QueueSettings = QueueSettings()
    datasets: DatasetsSettings = DatasetsSettings()
    smtp: SmtpSettings = SmtpSettings()
    socialproof: SocialProofSettings = SocialProofSettings()
    crypto: CryptoSettings = CryptoSettings()
    outbound: OutboundSettings = OutboundSettings()
    llm: LlmSettings = LlmSettings()
    alerts: AlertsSettings = AlertsSettings()
    webhooks: WebhooksSettings = WebhooksSettings()
    reports: ReportsSettings = ReportsSettings()
    integrations: IntegrationsSettings = IntegrationsSettings()

    @model_validator(mode="after")
    def _public_url_of_the_listening_address(self) -> Settings:
        """Links in e-mails, snippets and downloads lead where the platform listens unless told otherwise."""
        if not self.public_url:
            self.public_url = self.listening_url()
        return self

    def listening_url(self) -> str:
        host = self.http.host if self.http.host not in ("", "0.0.0.0", "::") else "127.0.0.1"  # noqa: S104
        return f"http://{f'[{host}]' if ':' in host else host}:{self.http.port}"

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        """Refuse at start what no driver could connect to, rather than on the first request."""
        if not value:
            return None
        try:
            url = make_url(value)
            url.port  # noqa: B018 - parses the port
        except (ArgumentError, ValueError):
            raise ValueError("is not a database URL (postgresql://user:password@host:port/database)") from None
        if url.get_backend_name() not in ("postgresql", "postgres"):
            raise ValueError("must be a PostgreSQL URL (postgresql://user:password@host:port/database)")
        return value

    def resolved_secret_key(self) -> str:
        """The signing key: configured, or generated once and kept in the data dir so restarts keep sessions."""
        if self.auth.secret_key:
            return self.auth.secret_key
        key_file = self.data_dir / "secret_key"
        if not key_file.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return key_file.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()


_SECRET = ("url", "password", "secret", "key")


def describe_error(exc: ValidationError | SettingsError) -> str:
    """One line naming each environment variable that holds a bad value, and what is wrong with it.

    Values are repeated only when they cannot be secret (URLs, passwords and keys are not).
    """
    if isinstance(exc, SettingsError):  # a JSON value that does not parse; pydantic-settings names only the section
        found = re.search(r'field "([a-z_]+)"', str(exc))
        return f"invalid configuration: {_unparsable(found.group(1) if found else '')}: is not valid JSON"
    problems = []
    for error in exc.errors(include_url=False):
        path = [str(part) for part in error["loc"]]
        # an alias (DATABASE_URL) is the variable's name itself
        variable = path[0] if path and path[0].isupper() else "NORTHSTAR_" + "__".join(part.upper() for part in path)
        message = str(error["msg"]).removeprefix("Value error, ")
        if not any(word in variable.lower() for word in _SECRET) and isinstance(error.get("input"), str | int):
            message += f" (got {error['input']!r})"
        problems.append(f"{variable}: {message}")
    return "invalid configuration: " + "; ".join(problems)


def _unparsable(section: str) -> str:
    """The variable of ``section`` holding a list or a mapping whose JSON value does not parse."""
    prefix = f"NORTHSTAR_{section.upper()}"
    candidates = [prefix]
    field = Settings.model_fields.get(section)
    model = field.annotation if field is not None else None
    if isinstance(model, type) and issubclass(model, BaseModel):
        candidates += [
            f"{prefix}__{name.upper()}"
            for name, sub in model.model_fields.items()
            if get_origin(sub.annotation) in (list, dict)
        ]
    for name in candidates:
        value = os.environ.get(name)
        if value is not None:
            try:
                json.loads(value)
            except ValueError:
                return name
    return f"{prefix}__*"
