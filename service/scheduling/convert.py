"""Table rows -> domain dataclasses."""

from __future__ import annotations

from datetime import timedelta

from service.model import (
    Appointment,
    AppointmentStatus,
    BusyBlock,
    Caller,
    Connection,
    ConnectionStatus,
    EventType,
    ProviderKind,
)
from service.store import tables as t


def connection(row: t.Connection) -> Connection:
    return Connection(
        connection_id=row.id,
        account_id=row.account_id,
        provider=ProviderKind(row.provider),
        status=ConnectionStatus(row.status),
        display_name=row.display_name,
        external_account=row.external_account,
        default_calendar_id=row.default_calendar_id,
        granted_scopes=tuple(row.granted_scopes),
        status_detail=row.status_detail,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def event_type(row: t.EventType) -> EventType:
    return EventType(
        event_type_id=row.id,
        connection_id=row.connection_id,
        title=row.title,
        slug=row.slug,
        duration=timedelta(seconds=row.duration_s),
        buffer_before=timedelta(seconds=row.buffer_before_s),
        buffer_after=timedelta(seconds=row.buffer_after_s),
        active=row.active,
        provider_ref=row.provider_ref,
    )


def appointment(row: t.Appointment) -> Appointment:
    return Appointment(
        appointment_id=row.id,
        account_id=row.account_id,
        agent_id=row.agent_id,
        connection_id=row.connection_id,
        calendar_id=row.calendar_id,
        event_type_id=row.event_type_id,
        status=AppointmentStatus(row.status),
        start=row.start_at,
        end=row.end_at,
        time_zone=row.time_zone,
        caller=Caller(row.caller_name, row.caller_email, row.caller_phone, row.caller_time_zone),
        title=row.title,
        notes=row.notes,
        provider_reference=row.provider_reference,
        call_id=row.call_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def busy_block(row: t.BusyBlock) -> BusyBlock:
    return BusyBlock(
        row.id, row.connection_id, row.calendar_id, row.start_at, row.end_at, row.label
    )
