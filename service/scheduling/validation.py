"""Rules for agent settings and caller input. Errors name the proto field path."""

from __future__ import annotations

import string
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from service.errors import InvalidArgument
from service.model import AgentSettings, Caller, Window

TITLE_PLACEHOLDERS = frozenset({"caller_name", "event_type", "business_name", "agent_id"})
MIN_DURATION = timedelta(minutes=5)
MAX_DURATION = timedelta(minutes=480)
MAX_BUFFER = timedelta(hours=24)
MAX_ADVANCE_DAYS = 3650
DEFAULT_PHONE_REGION = "US"


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_day_span(day: date, tz_name: str) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar day in a zone, in UTC (23 or 25 hours on DST days)."""
    tz = zone(tz_name)
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def check_time_zone(name: str, field: str) -> None:
    if not name:
        raise InvalidArgument(field, "an IANA time zone name is required, e.g. America/New_York")
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidArgument(field, f"unknown IANA time zone {name!r}") from exc


def check_template(template: str, field: str) -> None:
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise InvalidArgument(field, f"malformed template: {exc}") from exc
    unknown = sorted(n for n in names if n not in TITLE_PLACEHOLDERS)
    if unknown:
        known = ", ".join("{" + p + "}" for p in sorted(TITLE_PLACEHOLDERS))
        raise InvalidArgument(field, f"unknown placeholder {{{unknown[0]}}}; known: {known}")


def _check_windows(windows: tuple[Window, ...], field: str) -> None:
    for i, w in enumerate(windows):
        if not 0 <= w.start_minute < 1440:
            raise InvalidArgument(f"{field}[{i}].start_time", "must be between 00:00 and 23:59")
        if not 0 <= w.end_minute <= 1440:
            raise InvalidArgument(f"{field}[{i}].end_time", "must be between 00:00 and 24:00")
        if w.start_minute == w.end_minute:
            raise InvalidArgument(f"{field}[{i}]", "start and end are equal (an empty window)")


def _check_duration(value: timedelta, field: str, low: timedelta, high: timedelta) -> None:
    if not low <= value <= high:
        raise InvalidArgument(field, f"must be between {low} and {high}")


def validate_settings(s: AgentSettings) -> None:
    if not s.agent_id or len(s.agent_id) > 200:
        raise InvalidArgument("settings.agent_id", "must be 1 to 200 characters")
    a = s.availability
    check_time_zone(a.time_zone, "settings.availability.time_zone")
    if len(a.weekly_hours) != 7:
        raise InvalidArgument("settings.availability.weekly_hours", "must describe 7 weekdays")
    for day, windows in enumerate(a.weekly_hours):
        _check_windows(windows, f"settings.availability.weekly_hours[{day}].windows")
    seen = set()
    for i, o in enumerate(a.date_overrides):
        if o.day in seen:
            raise InvalidArgument(
                f"settings.availability.date_overrides[{i}].date", f"{o.day} is listed twice"
            )
        seen.add(o.day)
        _check_windows(o.windows, f"settings.availability.date_overrides[{i}].windows")
    _check_duration(
        a.minimum_notice, "settings.availability.minimum_notice", timedelta(0), timedelta(days=365)
    )
    if not 0 <= a.max_advance_days <= MAX_ADVANCE_DAYS:
        raise InvalidArgument(
            "settings.availability.max_advance_days", f"must be between 0 and {MAX_ADVANCE_DAYS}"
        )
    if a.daily_cap < 0:
        raise InvalidArgument("settings.availability.daily_cap", "must not be negative")
    e = s.event_defaults
    _check_duration(e.duration, "settings.event_defaults.duration", MIN_DURATION, MAX_DURATION)
    _check_duration(
        e.buffer_before, "settings.event_defaults.buffer_before", timedelta(0), MAX_BUFFER
    )
    _check_duration(
        e.buffer_after, "settings.event_defaults.buffer_after", timedelta(0), MAX_BUFFER
    )
    if e.slot_step:
        _check_duration(
            e.slot_step, "settings.event_defaults.slot_step", MIN_DURATION, MAX_DURATION
        )
    if not e.title_template.strip():
        raise InvalidArgument("settings.event_defaults.title_template", "must not be empty")
    check_template(e.title_template, "settings.event_defaults.title_template")
    if s.confirmations.business_email:
        check_email(s.confirmations.business_email, "settings.confirmations.business_email")
    if s.enabled and not s.connection_id:
        raise InvalidArgument(
            "settings.connection_id", "is required when calendar access is enabled"
        )


def check_email(value: str, field: str) -> str:
    """The address in normalised form; syntax only (no DNS: Book must not wait on it)."""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidArgument(field, "is not a valid email address") from exc


def normalize_phone(value: str, default_region: str = DEFAULT_PHONE_REGION) -> str:
    """E.164 form of a phone number; ValueError unless it is a valid number.

    "Valid" (a number in an allocated range for its region), not merely "possible" (the right
    length): a digit misheard on a call often still has the right length, and catching it here
    lets the agent ask again instead of a confirmation SMS going nowhere.
    """
    try:
        parsed = phonenumbers.parse(value, default_region or None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def validate_caller(
    caller: Caller, field: str = "caller", *, default_region: str = DEFAULT_PHONE_REGION
) -> Caller:
    name = caller.name.strip()
    if not name:
        raise InvalidArgument(f"{field}.name", "the caller's name is required")
    if len(name) > 200:
        raise InvalidArgument(f"{field}.name", "must be at most 200 characters")
    email = caller.email.strip()
    if email:
        email = check_email(email, f"{field}.email")
    phone = caller.phone.strip()
    if phone:
        try:
            phone = normalize_phone(phone, default_region)
        except ValueError as exc:
            raise InvalidArgument(
                f"{field}.phone", "is not a valid phone number (E.164, e.g. +12125550100)"
            ) from exc
    if caller.time_zone:
        check_time_zone(caller.time_zone, f"{field}.time_zone")
    return Caller(name=name, email=email, phone=phone, time_zone=caller.time_zone)


def render_title(
    template: str, *, caller_name: str, event_type: str, business_name: str, agent_id: str
) -> str:
    values = {
        "caller_name": caller_name,
        "event_type": event_type,
        "business_name": business_name,
        "agent_id": agent_id,
    }
    return string.Formatter().vformat(template, (), values)[:300]
