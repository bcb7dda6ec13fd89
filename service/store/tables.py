"""SQLAlchemy 2 typed ORM tables. Every row belongs to an account; every query filters by it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones, so values are stored as naive UTC
    (their text form then sorts and compares correctly) and made aware again on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


ID = String(36)


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    # SHA-256 of the random key: keys carry 256 bits of entropy, so a fast digest is safe and
    # keeps authentication off the hot path's budget (no slow password hash).
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Connection(Base):
    __tablename__ = "connections"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    external_account: Mapped[str] = mapped_column(String(320), default="")
    default_calendar_id: Mapped[str] = mapped_column(String(1024), default="")
    granted_scopes: Mapped[list[str]] = mapped_column(default=list)
    status_detail: Mapped[str] = mapped_column(Text, default="")
    # Encrypted with service.store.crypto; never the secret in clear.
    credentials: Mapped[str | None] = mapped_column(Text, default=None)
    # Non-secret provider facts (user URI, organisation, token expiry).
    provider_state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BuiltinCalendar(Base):
    __tablename__ = "builtin_calendars"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BusyBlock(Base):
    __tablename__ = "busy_blocks"
    __table_args__ = (Index("ix_busy_blocks_calendar_time", "calendar_id", "start_at"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id"))
    calendar_id: Mapped[str] = mapped_column(ForeignKey("builtin_calendars.id"))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EventType(Base):
    __tablename__ = "event_types"
    __table_args__ = (Index("ix_event_types_connection_ref", "connection_id", "provider_ref"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(200))
    duration_s: Mapped[int] = mapped_column(Integer)
    buffer_before_s: Mapped[int] = mapped_column(Integer, default=0)
    buffer_after_s: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    provider_ref: Mapped[str] = mapped_column(String(1024), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentSettings(Base):
    __tablename__ = "agent_settings"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    data: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (
        Index("ix_appointments_account_agent_start", "account_id", "agent_id", "start_at"),
        Index("ix_appointments_status_created", "status", "created_at"),
    )
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    agent_id: Mapped[str] = mapped_column(String(200))
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id"))
    calendar_id: Mapped[str] = mapped_column(String(1024))
    event_type_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    time_zone: Mapped[str] = mapped_column(String(64))
    caller_name: Mapped[str] = mapped_column(String(200))
    caller_email: Mapped[str] = mapped_column(String(320), default="")
    caller_phone: Mapped[str] = mapped_column(String(40), default="")
    caller_time_zone: Mapped[str] = mapped_column(String(64), default="")
    title: Mapped[str] = mapped_column(String(300), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    provider_reference: Mapped[str] = mapped_column(String(1024), default="")
    # Provider events still to cancel (see EventRef.leftovers); emptied as they succeed.
    pending_cancellations: Mapped[list[str]] = mapped_column(default=list)
    call_id: Mapped[str] = mapped_column(String(200), default="")
    contact_erased_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TimeClaim(Base):
    """A hold on a calendar's padded time range.

    Overlapping claims on one calendar are refused by the database: an exclusion constraint on
    PostgreSQL (see the migration), an overlap check inside a serialised write transaction on
    SQLite. A claim lives exactly as long as the appointment holds the time.
    """

    __tablename__ = "time_claims"
    __table_args__ = (Index("ix_time_claims_calendar_start", "calendar_key", "start_at"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    calendar_key: Mapped[str] = mapped_column(String(1100))
    appointment_id: Mapped[str] = mapped_column(ForeignKey("appointments.id"), index=True)
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    method: Mapped[str] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20))
    response: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    appointment_id: Mapped[str] = mapped_column(ForeignKey("appointments.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="PENDING")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConfirmationTemplateSet(Base):
    """An account's confirmation wording (service.notify.templates); absent means defaults."""

    __tablename__ = "confirmation_templates"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    # {"BOOKED": {"subject": ..., "text": ..., "html": ..., "sms": ...}, ...}; only saved fields.
    data: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OAuthState(Base):
    """A pending OAuth consent: single use, short-lived, bound to the account that asked."""

    __tablename__ = "oauth_states"
    # SHA-256 of the state: the state itself travels in URLs and is never stored.
    state_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    # The PKCE verifier, encrypted like any credential.
    code_verifier: Mapped[str] = mapped_column(Text)
    scopes: Mapped[list[str]] = mapped_column(default=list)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditRecord(Base):
    __tablename__ = "audit_log"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    agent_id: Mapped[str] = mapped_column(String(200), default="")
    call_id: Mapped[str] = mapped_column(String(200), default="")
    action: Mapped[str] = mapped_column(String(40))
    appointment_id: Mapped[str] = mapped_column(String(36), default="")
    # Ids and statuses only; never caller names or contact data.
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
