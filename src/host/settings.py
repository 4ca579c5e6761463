"""Configuration, read once from environment variables (prefix `APP_`, nesting with `__`).

Example: `APP_JOBS__CONCURRENCY=8`, `APP_HTTP__PORT=9000`, `APP_ENVIRONMENT=prod`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from application.jobs import OnExhausted, RetryPolicy, iana_zone
from infrastructure.jobs.backend import BUILT_IN, known_backend


class HttpSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Address `serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `serve` listens on.")
    max_body_bytes: int = Field(
        1024 * 1024, ge=1, description="Largest request body accepted; a larger one gets 413."
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="Comma-separated addresses (or `*`) of proxies trusted for "
        "`X-Forwarded-For`/`-Proto`; the client address that auth judges comes from them.",
    )


class Scope(StrEnum):
    """What a caller may do. Each scope includes the ones before it."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


class ApiKey(BaseModel):
    name: str = Field(min_length=1, description="Who holds the key (shown in logs).")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the key, lowercase hex.")
    scope: Scope = Field(Scope.READ, description="The highest scope the key grants.")


class AuthSettings(BaseModel):
    api_keys: list[ApiKey] = Field(
        default_factory=list,
        description='API keys, as JSON: `[{"name": "ci", "sha256": "<hex>", "scope": "write"}]`. '
        "`jobs-service api-key create` makes one. Sent as the `X-API-Key` header.",
    )
    allow_anonymous_localhost: bool = Field(
        False,
        description="Development only: requests from 127.0.0.1 or ::1 (not the rest of "
        "127.0.0.0/8, where sidecar proxies connect from) without credentials get the admin "
        "scope. Refused at start unless `APP_ENVIRONMENT=dev`; `make run` turns it on.",
    )
    details_scope: Scope = Field(
        Scope.WRITE,
        description="Lowest scope that sees a job's details: tracebacks, log lines and its "
        "result (API and dashboard); callers below it see the job without them.",
    )
    oidc_issuer: str | None = Field(
        None, description="OIDC issuer (`iss`) of accepted bearer JWTs; unset: JWTs refused."
    )
    oidc_audience: str | None = Field(None, description="Required `aud` of bearer JWTs.")
    oidc_jwks_url: str | None = Field(None, description="URL of the issuer's JWKS (signing keys).")
    oidc_algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "ES256"], description="Accepted JWT algorithms."
    )
    oidc_scope_claim: str = Field(
        "scope",
        description="Claim holding the caller's scopes (a space-separated string or a list).",
    )
    oidc_scope_prefix: str = Field(
        "jobs:", description="Prefix of our scopes in that claim: `jobs:read`, `jobs:write`, ..."
    )
    oidc_leeway_seconds: float = Field(
        60.0,
        ge=0,
        le=600,
        description="Clock skew tolerated between the issuer and this service when checking "
        "`exp`, `nbf` and `iat`.",
    )
    oidc_jwks_refresh_seconds: float = Field(
        300.0,
        gt=0,
        description="Age after which the issuer's keys are fetched again, in the background "
        "(the known keys serve meanwhile); a token naming an unknown key fetches them sooner.",
    )
    oidc_unknown_kid_seconds: float = Field(
        30.0,
        ge=0,
        description="How long a key id (`kid`) the issuer did not have is refused without "
        "fetching its keys again.",
    )
    oidc_max_concurrent_verifications: int = Field(
        32,
        ge=1,
        le=10_000,
        description="Bearer tokens verified at once (callers waiting for the issuer's keys "
        "included); more get 503 with `Retry-After` instead of queueing.",
    )

    @model_validator(mode="after")
    def _oidc_complete(self) -> AuthSettings:
        oidc = (self.oidc_issuer, self.oidc_audience, self.oidc_jwks_url)
        if any(oidc) and not all(oidc):
            raise ValueError("OIDC needs oidc_issuer, oidc_audience and oidc_jwks_url together")
        return self


class MetricsSettings(BaseModel):
    public: bool = Field(
        False,
        description="Serve `/metrics` without credentials (for a scraper on the pod network).",
    )
    state_cache_seconds: float = Field(
        5.0, ge=0, description="How long job counts by state are reused between scrapes."
    )


class DashboardSettings(BaseModel):
    enabled: bool = Field(True, description="Serve the dashboard (it always needs sign-in).")
    path: str = Field(
        "/jobs", pattern=r"^/[A-Za-z0-9_\-/]*[A-Za-z0-9_\-]$", description="Where it is served."
    )
    title: str = Field("Jobs", min_length=1, description="Title shown on every page.")
    secret_key: str | None = Field(
        None,
        min_length=32,
        description="Key that signs session cookies and CSRF tokens (32+ characters, the same "
        "on every replica); unset: a random key per process, so sessions end at a restart.",
    )
    session_minutes: float = Field(
        480.0, gt=0, description="How long a sign-in with an API key lasts."
    )
    live_seconds: float = Field(
        1.0,
        gt=0,
        description="Interval of the one shared read that feeds every open page's live "
        "updates (server-sent events), however many pages are open.",
    )
    counts_seconds: float = Field(
        5.0,
        gt=0,
        description="How long the counts by state (and the last hour's graph) are reused; "
        "counting a large store is the dashboard's dearest read, refreshed in the background.",
    )
    proxy_ips: list[str] = Field(
        default_factory=list,
        description="Addresses of an authenticating reverse proxy (oauth2-proxy style) whose "
        "identity headers are trusted, as this service sees the client; empty: none.",
    )
    proxy_user_header: str = Field(
        "X-Forwarded-User", description="Header naming the user the proxy authenticated."
    )
    proxy_groups_header: str = Field(
        "X-Forwarded-Groups",
        description="Header listing the user's groups (comma-separated); `jobs:read`, "
        "`jobs:write` and `jobs:admin` (with `proxy_group_prefix`) give the scope.",
    )
    proxy_group_prefix: str = Field("jobs:", description="Prefix of the scope groups.")


class TracingSettings(BaseModel):
    exporter: Literal["none", "otlp", "console"] = Field(
        "none",
        description="Where spans go: `otlp` (configured by the standard `OTEL_EXPORTER_OTLP_*` "
        "variables), `console`, or `none`. Needs the `otel` extra.",
    )
    service_name: str = Field("jobs-service", description="`service.name` of the spans.")


class DatabaseSettings(BaseModel):
    url: str = Field(
        "sqlite:///./data/jobs.db",
        description="SQLAlchemy URL of the job store (sqlite, postgresql+psycopg, "
        "mysql+pymysql, mssql+pyodbc). A SQLite file's folder is created.",
    )
    schema_name: str | None = Field(
        None,
        description="Schema holding the job tables (databases with schemas only); unset: "
        "`jobs` on SQL Server, the connection's default schema elsewhere.",
    )
    table_prefix: str = Field("", description="Prefix of every job table's name.")
    persistence: Literal["sql", "memory"] = Field(
        "sql",
        description="Where the business repositories keep their rows: `sql` (tables in the "
        "database of `url`, migrated with the job tables) or `memory` (lost on exit; tests).",
    )
    migrate_on_start: bool = Field(
        True, description="`serve` upgrades the schema at start (off when a migrate Job does)."
    )
    migration_lock_timeout_seconds: float = Field(
        60.0, gt=0, description="How long `migrate` waits for another process's migration."
    )


class RetrySettings(BaseModel):
    """The retry policy of handlers registered without one (Hangfire's global
    `AutomaticRetry`); a handler's registration and a call's options still win."""

    attempts: int = Field(10, ge=1, le=1000, description="Executions at most, the first included.")
    delays: list[float] = Field(
        default_factory=list,
        max_length=100,
        description="Seconds before each retry (the last repeats); empty: exponential backoff.",
    )
    base_delay: float = Field(15.0, gt=0, description="First backoff delay in seconds.")
    max_delay: float = Field(3600.0, gt=0, description="Longest backoff delay in seconds.")
    on_exhausted: OnExhausted = Field(
        OnExhausted.FAIL, description="After the last attempt: `fail` (kept) or `delete`."
    )

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.attempts,
            delays=tuple(self.delays),
            base_delay=self.base_delay,
            max_delay=self.max_delay,
            on_exhausted=self.on_exhausted,
        )


class JobsSettings(BaseModel):
    backend: str = Field(
        "sql",
        description="Job adapter: `sql` (the database of `APP_DB__URL`), `memory` (inside one "
        "process, lost on restart), `dramatiq` (state in the database of `APP_DB__URL`, "
        "delivery by RabbitMQ or Redis: see docs/dramatiq.md), or another's "
        "`package.module:Class`.",
    )
    options: dict[str, str] = Field(
        default_factory=dict,
        description="The adapter's own settings, by name (`APP_JOBS__OPTIONS__<NAME>`).",
    )
    retry: RetrySettings = Field(default_factory=RetrySettings)
    queues: list[str] = Field(
        default_factory=lambda: ["critical", "default", "low"],
        min_length=1,
        description="Queues this server's worker serves, in priority order (unless weighted).",
    )
    queue_weights: dict[str, Annotated[int, Field(ge=1, le=1000)]] = Field(
        default_factory=dict,
        description="Weighted order instead of strict priority, e.g. "
        '`{"critical": 3, "default": 2, "low": 1}`: each claim looks first at a queue chosen '
        "in proportion to its weight, so a busy queue never starves the others (a served "
        "queue left out weighs 1). Empty: strict priority.",
    )
    concurrency: int = Field(
        16,
        ge=1,
        le=1000,
        description="Jobs a worker runs at once (sync handlers use as many threads).",
    )
    lease_seconds: float = Field(
        20.0, gt=0, description="A claim's lease; a crashed worker's job runs again after it."
    )
    heartbeat_seconds: float = Field(
        5.0, gt=0, description="Interval of lease extensions and server heartbeats."
    )
    poll_seconds: float = Field(
        0.5, gt=0, description="Longest wait between a worker's claims on empty queues."
    )
    min_poll_seconds: float = Field(
        0.02,
        gt=0,
        description="Wait after a claim found work; it doubles with each empty claim, up to "
        "`poll_seconds`.",
    )
    scheduler_poll_seconds: float = Field(1.0, gt=0, description="Scheduler round interval.")
    shutdown_grace_seconds: float = Field(
        10.0, ge=0, description="On stop, time running jobs get before they are released."
    )
    payload_limit_bytes: int = Field(
        64 * 1024, ge=1, description="Largest accepted size of a job's arguments as JSON."
    )
    retention_days: float = Field(
        7.0,
        gt=0,
        description="Succeeded and deleted jobs are purged after this many days; a batch "
        "this long after it was created, once none of its jobs is left.",
    )
    failed_retention_days: float = Field(
        30.0,
        gt=0,
        description="Failed jobs (with their history and log lines) are purged after this "
        "many days.",
    )
    tick_retention_hours: float = Field(
        24.0,
        gt=0,
        description="Rows of the recurring-tick ledger are purged this many hours after "
        "their fire time.",
    )
    server_timeout_seconds: float = Field(
        60.0, gt=0, description="A server without a heartbeat for this long is removed."
    )
    watchdog_seconds: float = Field(5.0, gt=0, description="Interval of rescue and cleanup.")
    remove_undeclared_recurring: bool = Field(
        False, description="At start-up, remove recurring jobs the code no longer declares."
    )
    sample_every_minute: bool | None = Field(
        None,
        description="Declare the sample every-minute recurring job; default: on in `dev`.",
    )

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, name: str) -> str:
        if not known_backend(name):
            raise ValueError(f"choose one of {', '.join(BUILT_IN)} or package.module:Class")
        return name

    @model_validator(mode="after")
    def _weights_of_served_queues(self) -> JobsSettings:
        if unknown := sorted(set(self.queue_weights) - set(self.queues)):
            raise ValueError(f"queue_weights names queues not served: {', '.join(unknown)}")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="APP_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    environment: Literal["dev", "prod"] = Field(
        "dev",
        description="`dev` (development: allows anonymous localhost, declares the sample "
        "every-minute job) or `prod` (the image and the Kubernetes base set it).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Level of the service's logs."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="`json` lines, `console` (readable), or `auto`: console on a terminal."
    )
    business_timezone: str = Field(
        "UTC",
        description="Time zone of the business recurring jobs (invoices, reports): an IANA name "
        "or a Windows id such as `Turkey Standard Time` (kept as its IANA name).",
    )
    temp_directory: Path = Field(
        Path("./data/tmp"), description="Folder the temp-file cleanup job empties of old files."
    )
    http: HttpSettings = Field(default_factory=HttpSettings)
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)

    @model_validator(mode="after")
    def _anonymous_only_in_development(self) -> Settings:
        if self.auth.allow_anonymous_localhost and self.environment != "dev":
            raise ValueError(
                "auth.allow_anonymous_localhost is for development only: it needs "
                "environment=dev (APP_ENVIRONMENT=dev)"
            )
        return self

    @field_validator("business_timezone")
    @classmethod
    def _iana_business_timezone(cls, name: str) -> str:
        return iana_zone(name)  # InvalidSchedule is a ValueError: a validation error

    @property
    def sample_every_minute(self) -> bool:
        if self.jobs.sample_every_minute is None:
            return self.environment == "dev"
        return self.jobs.sample_every_minute
