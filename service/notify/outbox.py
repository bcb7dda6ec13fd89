"""Writing confirmation messages into the outbox, inside the caller's transaction.

Rows are written in the same transaction that confirms, moves or cancels an appointment, so a
confirmation exists exactly when the change does. The row holds a snapshot of what the message
says (times, title, the invite's sequence number) but no contact data: the worker reads the
address from the appointment at send time, so retention erasure also stops pending messages.
"""

from __future__ import annotations

import enum
from uuid import uuid4

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.model import AgentSettings, ProviderKind
from service.store import tables as t


class Kind(enum.StrEnum):
    BOOKED = "BOOKED"
    RESCHEDULED = "RESCHEDULED"
    CANCELLED = "CANCELLED"


class Status(enum.StrEnum):
    PENDING = "PENDING"  # due at next_attempt_at
    SENDING = "SENDING"  # claimed by a worker until next_attempt_at (the lease); then due again
    SENT = "SENT"
    FAILED = "FAILED"  # gave up: permanent refusal, no recipient, or too many attempts


class Channel(enum.StrEnum):
    EMAIL = "EMAIL"  # to the caller, with an .ics invite
    SMS = "SMS"  # to the caller
    BUSINESS_INVITE = "BUSINESS_INVITE"  # .ics to the business (built-in calendar only)


async def enqueue(
    session: AsyncSession,
    appointment: t.Appointment,
    settings: AgentSettings,
    provider: ProviderKind,
    kind: Kind,
    *,
    event_type_title: str = "",
) -> None:
    """Adds one outbox row per channel the agent enabled and the caller can be reached on."""
    channels = []
    wants = settings.confirmations
    if wants.email and appointment.caller_email:
        channels.append(Channel.EMAIL)
    if wants.sms and appointment.caller_phone:
        channels.append(Channel.SMS)
    # Google and the other providers invite through the event itself; the built-in calendar
    # has no one else to send the business its invite.
    if wants.calendar_invite and wants.business_email and provider is ProviderKind.BUILTIN:
        channels.append(Channel.BUSINESS_INVITE)
    if not channels:
        return
    # iCalendar SEQUENCE must rise with every update of the same UID. A new booking's first
    # message is always 0, which spares the hot path (Book) a query.
    sequence = 0
    if kind is not Kind.BOOKED:
        previous = await session.scalar(
            select(func.count())
            .select_from(t.OutboxMessage)
            .where(t.OutboxMessage.appointment_id == appointment.id)
        )
        sequence = int(previous or 0)
    payload = {
        "kind": kind.value,
        "start": appointment.start_at.isoformat(),
        "end": appointment.end_at.isoformat(),
        "time_zone": appointment.time_zone,
        "caller_time_zone": appointment.caller_time_zone or appointment.time_zone,
        "title": appointment.title,
        "event_type": event_type_title,
        "business_name": settings.business_name,
        "agent_id": settings.agent_id,
        "sequence": sequence,
    }
    for channel in channels:
        session.add(
            t.OutboxMessage(
                id=uuid4().hex,
                account_id=appointment.account_id,
                appointment_id=appointment.id,
                channel=channel.value,
                kind=kind.value,
                payload=payload,
            )
        )
