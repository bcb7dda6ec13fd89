"""Confirmation wording per account: the placeholder rules, the defaults, storage and rendering.

A template is ``str.format`` text restricted to named placeholders from ``PLACEHOLDERS``:
no positional fields, no attribute or index access (``{caller_name.__class__}`` would reach
into Python objects), no conversions or format specs. Anything else is refused when saved, so
rendering a stored template cannot fail. In HTML bodies every value is escaped, because the
caller's name comes from a phone conversation and may contain anything.
"""

from __future__ import annotations

import html
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from service.errors import InvalidArgument
from service.notify.outbox import Kind
from service.scheduling.deps import Deps
from service.store import tables as t

PLACEHOLDERS = frozenset(
    {
        "caller_name",
        "business_name",
        "start_local",
        "end_local",
        "time_zone",
        "event_type",
        "agent_id",
    }
)
# Field name (domain) -> (field name in the API, longest accepted text).
_LIMITS = {
    "subject": ("subject", 200),
    "text": ("text_body", 5000),
    "html": ("html_body", 20000),
    "sms": ("sms_body", 320),
}
# The API's names for the kinds: ConfirmationTemplates.booked etc.
API_KIND = {Kind.BOOKED: "booked", Kind.RESCHEDULED: "rescheduled", Kind.CANCELLED: "cancelled"}


@dataclass(frozen=True, slots=True)
class Template:
    """One kind's wording; an empty field means "use the default" when stored."""

    subject: str = ""
    text: str = ""
    html: str = ""
    sms: str = ""


@dataclass(frozen=True, slots=True)
class Templates:
    booked: Template = field(default_factory=Template)
    rescheduled: Template = field(default_factory=Template)
    cancelled: Template = field(default_factory=Template)
    updated_at: datetime | None = None

    def for_kind(self, kind: Kind) -> Template:
        return {
            Kind.BOOKED: self.booked,
            Kind.RESCHEDULED: self.rescheduled,
            Kind.CANCELLED: self.cancelled,
        }[kind]


_HTML_FRAME = (
    '<!doctype html><html><body style="font-family:sans-serif">{body}'
    '<p style="color:#666;font-size:small">{business_name}</p></body></html>'
)

DEFAULTS = Templates(
    booked=Template(
        subject="Confirmed: {event_type} with {business_name} on {start_local}",
        text=(
            "Hi {caller_name},\n\n"
            "Your {event_type} with {business_name} is booked for {start_local} "
            "({time_zone}).\n\n"
            "The calendar invite is attached.\n\n{business_name}\n"
        ),
        html=_HTML_FRAME.format(
            body="<p>Hi {caller_name},</p><p>Your <b>{event_type}</b> with {business_name} is "
            "booked for <b>{start_local}</b> ({time_zone}).</p>"
            "<p>The calendar invite is attached.</p>",
            business_name="{business_name}",
        ),
        sms="{business_name}: your {event_type} is booked for {start_local} ({time_zone}).",
    ),
    rescheduled=Template(
        subject="Moved: {event_type} with {business_name} is now {start_local}",
        text=(
            "Hi {caller_name},\n\n"
            "Your {event_type} with {business_name} has moved to {start_local} "
            "({time_zone}).\n\n"
            "The updated calendar invite is attached.\n\n{business_name}\n"
        ),
        html=_HTML_FRAME.format(
            body="<p>Hi {caller_name},</p><p>Your <b>{event_type}</b> with {business_name} has "
            "moved to <b>{start_local}</b> ({time_zone}).</p>"
            "<p>The updated calendar invite is attached.</p>",
            business_name="{business_name}",
        ),
        sms="{business_name}: your {event_type} moved to {start_local} ({time_zone}).",
    ),
    cancelled=Template(
        subject="Cancelled: {event_type} with {business_name} on {start_local}",
        text=(
            "Hi {caller_name},\n\n"
            "Your {event_type} with {business_name} on {start_local} ({time_zone}) "
            "is cancelled.\n\n{business_name}\n"
        ),
        html=_HTML_FRAME.format(
            body="<p>Hi {caller_name},</p><p>Your <b>{event_type}</b> with {business_name} on "
            "<b>{start_local}</b> ({time_zone}) is cancelled.</p>",
            business_name="{business_name}",
        ),
        sms="{business_name}: your {event_type} on {start_local} is cancelled.",
    ),
)


def check(template: str, path: str) -> None:
    """Refuses anything but known, plain named placeholders (InvalidArgument naming ``path``)."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise InvalidArgument(path, f"malformed template: {exc}") from exc
    known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            shown = name or "(positional)"
            raise InvalidArgument(path, f"unknown placeholder {{{shown}}}; known: {known}")
        if spec or conversion:
            raise InvalidArgument(path, f"placeholder {{{name}}} takes no format or conversion")


def validate(templates: Templates, path: str = "templates") -> None:
    for kind, api_name in API_KIND.items():
        template = templates.for_kind(kind)
        for f in fields(Template):
            api_field, limit = _LIMITS[f.name]
            value: str = getattr(template, f.name)
            where = f"{path}.{api_name}.{api_field}"
            if len(value) > limit:
                raise InvalidArgument(where, f"must be at most {limit} characters")
            check(value, where)


def with_defaults(saved: Templates) -> Templates:
    """Every empty field replaced by the default text of its kind."""

    def fill(mine: Template, default: Template) -> Template:
        return Template(
            **{f.name: getattr(mine, f.name) or getattr(default, f.name) for f in fields(Template)}
        )

    return replace(
        saved,
        booked=fill(saved.booked, DEFAULTS.booked),
        rescheduled=fill(saved.rescheduled, DEFAULTS.rescheduled),
        cancelled=fill(saved.cancelled, DEFAULTS.cancelled),
    )


def render(template: str, values: Mapping[str, str], *, as_html: bool = False) -> str:
    """Fills a checked template; HTML bodies get every value escaped."""
    if as_html:
        values = {k: html.escape(v, quote=True) for k, v in values.items()}
    # Placeholders missing from values (none, for checked templates) render empty, not KeyError.
    complete = {name: values.get(name, "") for name in PLACEHOLDERS}
    return string.Formatter().vformat(template, (), complete)


# Storage -----------------------------------------------------------------------------------


def _to_document(templates: Templates) -> dict[str, Any]:
    return {
        kind.value: {f.name: getattr(templates.for_kind(kind), f.name) for f in fields(Template)}
        for kind in API_KIND
    }


def _from_document(data: Mapping[str, Any], updated_at: datetime | None) -> Templates:
    def one(kind: Kind) -> Template:
        doc = data.get(kind.value) or {}
        return Template(**{f.name: str(doc.get(f.name, "")) for f in fields(Template)})

    return Templates(
        booked=one(Kind.BOOKED),
        rescheduled=one(Kind.RESCHEDULED),
        cancelled=one(Kind.CANCELLED),
        updated_at=updated_at,
    )


async def load(deps: Deps, account_id: str) -> Templates:
    """The account's templates with defaults filled in."""
    async with deps.db.read() as session:
        row = await session.get(t.ConfirmationTemplateSet, account_id)
    if row is None:
        return DEFAULTS
    return with_defaults(_from_document(row.data, row.updated_at))


async def save(deps: Deps, account_id: str, templates: Templates) -> Templates:
    """Validates, then replaces the account's templates; returns them with defaults filled in."""
    validate(templates)
    now = deps.clock()
    async with deps.db.write() as session:
        row = await session.get(t.ConfirmationTemplateSet, account_id)
        if row is None:
            session.add(
                t.ConfirmationTemplateSet(
                    account_id=account_id, data=_to_document(templates), updated_at=now
                )
            )
        else:
            row.data = _to_document(templates)
            row.updated_at = now
    return with_defaults(replace(templates, updated_at=now))
