"""The .ics invite (RFC 5545 / iTIP RFC 5546) attached to confirmation emails.

One appointment is one iCalendar UID for its whole life, so calendar clients update the entry
they already have: METHOD:REQUEST with a higher SEQUENCE when it moves, METHOD:CANCEL when it
is cancelled. Times are written in the reader's zone with its TZID and a VTIMEZONE, so the
entry shows the same wall-clock time the confirmation text names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import icalendar

from service.notify.outbox import Kind
from service.slots.zones import get_zone

UID_DOMAIN = "calendar.gleam.dev"
PRODID = "-//Gleam//gleam-calendar//EN"


def uid_for(appointment_id: str) -> str:
    return f"{appointment_id}@{UID_DOMAIN}"


def method_for(kind: Kind) -> str:
    return "CANCEL" if kind is Kind.CANCELLED else "REQUEST"


@dataclass(frozen=True, slots=True)
class Invite:
    appointment_id: str
    kind: Kind
    sequence: int
    start: datetime
    end: datetime
    time_zone: str  # the zone the reader sees
    summary: str
    organizer_email: str
    organizer_name: str
    attendee_email: str
    attendee_name: str
    stamp: datetime  # DTSTAMP: when this version was made (stable across delivery retries)


def build(invite: Invite) -> bytes:
    tz = get_zone(invite.time_zone)
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", method_for(invite.kind))
    event = icalendar.Event()
    event.add("uid", uid_for(invite.appointment_id))
    event.add("sequence", invite.sequence)
    event.add("dtstamp", invite.stamp)
    event.add("dtstart", invite.start.astimezone(tz))
    event.add("dtend", invite.end.astimezone(tz))
    event.add("summary", invite.summary)
    event.add("status", "CANCELLED" if invite.kind is Kind.CANCELLED else "CONFIRMED")
    organizer = {"CN": invite.organizer_name} if invite.organizer_name else {}
    event.add("organizer", f"mailto:{invite.organizer_email}", parameters=organizer)
    attendee = {"ROLE": "REQ-PARTICIPANT", "PARTSTAT": "ACCEPTED", "RSVP": "FALSE"}
    if invite.attendee_name:
        attendee["CN"] = invite.attendee_name
    event.add("attendee", f"mailto:{invite.attendee_email}", parameters=attendee)
    cal.add_component(event)
    # A VTIMEZONE covering the appointment only: the full 1970-2038 history is kilobytes.
    cal.add_missing_timezones(
        first_date=(invite.start - timedelta(days=366)).date(),
        last_date=(invite.end + timedelta(days=366)).date(),
    )
    return bytes(cal.to_ical())
