"""The one typed settings object. Every environment variable the service reads is declared here.

All variables share the prefix ``CALENDAR_`` (e.g. ``CALENDAR_PORT``). Zero configuration works:
an SQLite file and a generated encryption key under ``./var``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CALENDAR_"


class Settings(BaseSettings):
    """Service configuration, read once at start-up."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    host: str = Field("0.0.0.0", description="Address the gRPC server binds.")
    port: int = Field(50051, description="gRPC port (0 picks a free one).")
    data_dir: Path = Field(Path("var"), description="Where the default database and key file live.")
    database_url: str = Field(
        "",
        description="SQLAlchemy URL: sqlite:///path.db or postgresql+psycopg://user@host/db. "
        "Empty means an SQLite file in the data dir.",
    )
    database_pool_size: int = Field(10, description="Connections per process (PostgreSQL).")
    encryption_keys: str = Field(
        "",
        description="Comma-separated base64 AES-256 keys for credentials at rest. The first "
        "encrypts, all decrypt (rotation). Empty means a key file generated in the data dir.",
    )
    grace_period_seconds: float = Field(
        10.0, description="On SIGTERM, how long in-flight RPCs may finish."
    )
    auth_cache_seconds: float = Field(
        30.0, description="How long a verified API key is trusted without a database lookup."
    )
    settings_cache_seconds: float = Field(
        30.0, description="Upper bound on how long another replica's settings change takes to show."
    )
    log_level: str = Field("INFO", description="Python log level name.")
    reconcile_after_seconds: float = Field(
        60.0, description="PENDING appointments older than this are settled with the provider."
    )
    reconcile_interval_seconds: float = Field(30.0, description="How often the reconciler runs.")
    retention_days: int = Field(
        90, description="Days after an appointment ends before caller contact data is erased."
    )
    max_range_days: int = Field(62, description="Longest ListSlots range accepted.")
    cache_ttl_seconds: float = Field(
        60.0,
        description="How long held availability counts as fresh (then served stale while "
        "one refresh runs).",
    )
    cache_max_days: int = Field(
        200_000, description="Bound on held availability: day entries, least recently used out."
    )
    http_port: int = Field(
        8080, description="Port of the HTTP endpoint for OAuth redirects and webhooks (0: any)."
    )
    public_base_url: str = Field(
        "http://localhost:8080",
        description="How providers and browsers reach the HTTP endpoint (redirect URIs, webhooks).",
    )
    provider_timeout_seconds: float = Field(
        8.0, description="Upper bound on one provider HTTP call (the RPC deadline may be shorter)."
    )
    google_client_id: str = Field("", description="Google OAuth client id (empty: Google off).")
    google_client_secret: str = Field("", description="Google OAuth client secret.")
    google_api_url: str = Field(
        "https://www.googleapis.com/calendar/v3", description="Google Calendar API v3 base URL."
    )
    google_auth_url: str = Field(
        "https://accounts.google.com/o/oauth2/v2/auth", description="Google OAuth consent URL."
    )
    google_token_url: str = Field(
        "https://oauth2.googleapis.com/token", description="Google OAuth token endpoint."
    )
    calcom_api_url: str = Field("https://api.cal.com", description="Cal.com API v2 base URL.")
    calendly_api_url: str = Field(
        "https://api.calendly.com", description="Calendly API v2 base URL."
    )
    calendly_auth_url: str = Field(
        "https://auth.calendly.com", description="Calendly OAuth base URL (token refresh)."
    )
    smtp_host: str = Field(
        "", description="SMTP server for confirmation emails (empty: email stays queued)."
    )
    smtp_port: int = Field(587, description="SMTP port (587 with STARTTLS, 465 with TLS).")
    smtp_starttls: bool = Field(True, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_tls: bool = Field(False, description="Implicit TLS from the first byte (port 465).")
    smtp_username: str = Field("", description="SMTP login (empty: no authentication).")
    smtp_password: str = Field("", description="SMTP password.")
    smtp_from: str = Field(
        "", description="From address of confirmation emails, e.g. bookings@example.com."
    )
    smtp_timeout_seconds: float = Field(20.0, description="Upper bound on one SMTP delivery.")
    sms_api_url: str = Field(
        "https://api.twilio.com", description="Twilio-compatible REST API base URL."
    )
    sms_account_sid: str = Field("", description="SMS account SID (empty: SMS stays queued).")
    sms_auth_token: str = Field("", description="SMS auth token.")
    sms_from: str = Field("", description="SMS sender number (E.164), e.g. +12125550199.")
    phone_default_region: str = Field(
        "US", description="Region for caller phone numbers given without a country code."
    )
    notify_interval_seconds: float = Field(
        5.0, description="How often the confirmation worker looks for due messages."
    )
    notify_batch_size: int = Field(20, description="Messages one worker claims at a time.")
    notify_max_attempts: int = Field(
        8, description="Delivery attempts before a confirmation is marked FAILED."
    )
    notify_retry_base_seconds: float = Field(
        30.0, description="First retry delay; doubles per attempt (with jitter)."
    )
    notify_lease_seconds: float = Field(
        120.0, description="How long a claimed message is reserved before it is due again."
    )
    notify_in_server: bool = Field(
        True, description="Run the confirmation worker inside `serve` (off: `notify-worker`)."
    )

    @cached_property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'gleam-calendar.db'}"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "credentials.key"


def describe_settings() -> str:
    """Lines for ``--help``: each variable with its default and meaning."""
    lines = []
    for name, field in Settings.model_fields.items():
        default = field.default if field.default not in ("", None) else "(empty)"
        lines.append(f"  {ENV_PREFIX}{name.upper():<28} {field.description} [default: {default}]")
    return "\n".join(lines)
