"""AgentSettings <-> the JSON document stored in ``agent_settings.data``."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from service.model import (
    AgentSettings,
    Availability,
    Confirmations,
    DateOverride,
    EventDefaults,
    Scope,
    Window,
)


def _windows(items: list[list[int]]) -> tuple[Window, ...]:
    return tuple(Window(a, b) for a, b in items)


def to_document(s: AgentSettings) -> dict[str, Any]:
    a, e, c = s.availability, s.event_defaults, s.confirmations
    return {
        "enabled": s.enabled,
        "connection_id": s.connection_id,
        "calendar_id": s.calendar_id,
        "blocking_calendar_ids": list(s.blocking_calendar_ids),
        "allowed_event_type_ids": list(s.allowed_event_type_ids),
        "scopes": sorted(x.value for x in s.scopes),
        "business_name": s.business_name,
        "availability": {
            "time_zone": a.time_zone,
            "weekly_hours": [
                [[w.start_minute, w.end_minute] for w in day] for day in a.weekly_hours
            ],
            "date_overrides": [
                {
                    "date": o.day.isoformat(),
                    "windows": [[w.start_minute, w.end_minute] for w in o.windows],
                    "label": o.label,
                }
                for o in a.date_overrides
            ],
            "minimum_notice_s": int(a.minimum_notice.total_seconds()),
            "max_advance_days": a.max_advance_days,
            "daily_cap": a.daily_cap,
        },
        "event_defaults": {
            "duration_s": int(e.duration.total_seconds()),
            "buffer_before_s": int(e.buffer_before.total_seconds()),
            "buffer_after_s": int(e.buffer_after.total_seconds()),
            "slot_step_s": int(e.slot_step.total_seconds()),
            "title_template": e.title_template,
        },
        "confirmations": {
            "email": c.email,
            "sms": c.sms,
            "calendar_invite": c.calendar_invite,
            "business_email": c.business_email,
        },
    }


def from_document(agent_id: str, d: dict[str, Any]) -> AgentSettings:
    a, e, c = d["availability"], d["event_defaults"], d["confirmations"]
    return AgentSettings(
        agent_id=agent_id,
        enabled=d["enabled"],
        connection_id=d["connection_id"],
        calendar_id=d["calendar_id"],
        blocking_calendar_ids=tuple(d["blocking_calendar_ids"]),
        allowed_event_type_ids=tuple(d["allowed_event_type_ids"]),
        scopes=frozenset(Scope(x) for x in d["scopes"]),
        business_name=d["business_name"],
        availability=Availability(
            time_zone=a["time_zone"],
            weekly_hours=tuple(_windows(day) for day in a["weekly_hours"]),
            date_overrides=tuple(
                DateOverride(date.fromisoformat(o["date"]), _windows(o["windows"]), o["label"])
                for o in a["date_overrides"]
            ),
            minimum_notice=timedelta(seconds=a["minimum_notice_s"]),
            max_advance_days=a["max_advance_days"],
            daily_cap=a["daily_cap"],
        ),
        event_defaults=EventDefaults(
            duration=timedelta(seconds=e["duration_s"]),
            buffer_before=timedelta(seconds=e["buffer_before_s"]),
            buffer_after=timedelta(seconds=e["buffer_after_s"]),
            slot_step=timedelta(seconds=e["slot_step_s"]),
            title_template=e["title_template"],
        ),
        # Documents saved before business_email existed have no such key.
        confirmations=Confirmations(
            c["email"], c["sms"], c["calendar_invite"], c.get("business_email", "")
        ),
    )
