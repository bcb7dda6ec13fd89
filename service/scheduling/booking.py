"""Book, Reschedule and Cancel: no double booking, no lost booking.

Book, step by step (see README.md, Architecture):
1. Idempotency: a request id seen before is replayed, waited for or taken over (``idempotency``);
   a new one is claimed in step 3.
2. Live check: the start must be a bookable slot right now (provider busy time + our claims).
3. Claim: one transaction inserts the request id (IN_PROGRESS, tied to the appointment), the
   appointment PENDING and a claim on the calendar's padded range, and tells the other replicas
   (NOTIFY, delivered at commit). The database refuses an overlapping claim (PostgreSQL
   exclusion constraint; SQLite overlap check under BEGIN IMMEDIATE): SLOT_UNAVAILABLE with
   alternatives. A duplicate call that claimed the id first: this one waits for its outcome.
4. Provider call with the RPC's remaining deadline.
5. Confirmed: CONFIRMED + provider reference + audit + outbox + request id DONE, in one
   transaction. Refused: FAILED, claim released, request id forgotten. Unknown (timeout): left
   PENDING for the reconciler, which asks the provider and settles it.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.deadline import Deadline
from service.errors import (
    AppointmentNotActive,
    CalendarError,
    InvalidArgument,
    NoAvailableTimes,
    NotFound,
    ProviderRateLimited,
    SlotUnavailable,
    Unavailable,
)
from service.model import Appointment, AppointmentStatus, Caller, EventType, ProviderKind, Scope
from service.notify import outbox
from service.providers.base import CalendarProvider, EventRef, EventRequest
from service.providers.builtin import calendar_key
from service.scheduling import convert
from service.scheduling.agents import AgentContext, AgentDirectory
from service.scheduling.appointments import active_on_calendar
from service.scheduling.availability import ALTERNATIVES, AvailabilityService
from service.scheduling.cache import days_around
from service.scheduling.deps import Deps
from service.scheduling.idempotency import Idempotency, Replayed, request_hash
from service.scheduling.invalidation import Invalidator
from service.scheduling.owned import owned
from service.scheduling.validation import local_day_span, render_title, validate_caller, zone
from service.slots import Interval, Slot, SlotRules, nearest
from service.store import tables as t


@dataclass(frozen=True, slots=True)
class BookCommand:
    agent_id: str
    event_type_id: str
    start: datetime
    caller: Caller
    notes: str
    request_id: str
    call_id: str


@dataclass(frozen=True, slots=True)
class RescheduleCommand:
    appointment_id: str
    agent_id: str
    start: datetime
    request_id: str
    call_id: str


@dataclass(frozen=True, slots=True)
class CancelCommand:
    appointment_id: str
    agent_id: str
    reason: str
    request_id: str
    call_id: str


class Booking:
    def __init__(
        self,
        deps: Deps,
        agents: AgentDirectory,
        availability: AvailabilityService,
        invalidator: Invalidator,
    ) -> None:
        self._deps = deps
        self._agents = agents
        self._availability = availability
        self._invalidator = invalidator
        self._idempotency = Idempotency(deps)

    # Shared steps ------------------------------------------------------------------------

    async def _load(
        self, session: AsyncSession, account_id: str, appointment_id: str
    ) -> t.Appointment:
        return await owned(
            session,
            t.Appointment,
            appointment_id,
            account_id,
            resource_type="appointment",
            field="appointment_id",
        )

    async def get(self, account_id: str, appointment_id: str) -> Appointment:
        async with self._deps.db.read() as session:
            return convert.appointment(await self._load(session, account_id, appointment_id))

    async def _ensure_bookable(
        self,
        ctx: AgentContext,
        provider: CalendarProvider,
        rules: SlotRules,
        start: datetime,
        deadline: Deadline,
        *,
        event_type: EventType,
        ignore: tuple[Interval, ...] = (),
    ) -> None:
        """Raises SLOT_UNAVAILABLE (with the nearest alternatives) unless start is bookable now."""
        result, _ = await self._availability.compute(
            ctx,
            provider,
            rules,
            start,
            start + rules.duration,
            deadline,
            ignore=ignore,
            event_type=event_type,
            live=True,  # never book from held data
        )
        if any(s.start == start for s in result.slots):
            return
        raise await self._unavailable(
            ctx, provider, rules, start, deadline, ignore=ignore, event_type=event_type
        )

    async def _unavailable(
        self,
        ctx: AgentContext,
        provider: CalendarProvider,
        rules: SlotRules,
        start: datetime,
        deadline: Deadline,
        *,
        event_type: EventType,
        ignore: tuple[Interval, ...] = (),
    ) -> CalendarError:
        tz = zone(rules.time_zone)
        local_day = start.astimezone(tz).date()
        day_start = datetime.combine(local_day, datetime.min.time(), tzinfo=tz).astimezone(UTC)
        day, _ = await self._availability.compute(
            ctx,
            provider,
            rules,
            day_start,
            day_start + timedelta(days=1),
            deadline,
            ignore=ignore,
            event_type=event_type,
        )
        alternatives = nearest(day.slots, start, ALTERNATIVES)
        if not alternatives:
            alternatives = await self._availability.next_open(
                ctx,
                provider,
                rules,
                start,
                ALTERNATIVES,
                deadline,
                ignore=ignore,
                event_type=event_type,
            )
        if not alternatives:
            return NoAvailableTimes(start)
        error = SlotUnavailable(start, alternatives)
        error.time_zone = rules.time_zone
        return error

    async def _claim_conflicts(
        self, session: AsyncSession, key: str, padded: Interval, appointment_id: str
    ) -> bool:
        """The SQLite half of the overlap rule; PostgreSQL's exclusion constraint is the other."""
        clash = await session.scalar(
            select(t.TimeClaim.id)
            .where(
                t.TimeClaim.calendar_key == key,
                t.TimeClaim.appointment_id != appointment_id,
                t.TimeClaim.start_at < padded.end,
                t.TimeClaim.end_at > padded.start,
            )
            .limit(1)
        )
        return clash is not None

    async def _blocked(self, session: AsyncSession, ctx: AgentContext, padded: Interval) -> bool:
        """Built-in busy blocks live in our database, so they are re-checked inside the claim."""
        assert ctx.connection is not None
        if ctx.connection.provider is not ProviderKind.BUILTIN:
            return False
        hit = await session.scalar(
            select(t.BusyBlock.id)
            .where(
                t.BusyBlock.connection_id == ctx.connection.connection_id,
                t.BusyBlock.calendar_id == ctx.calendar_id,
                t.BusyBlock.start_at < padded.end,
                t.BusyBlock.end_at > padded.start,
            )
            .limit(1)
        )
        return hit is not None

    async def _over_daily_cap(
        self,
        session: AsyncSession,
        ctx: AgentContext,
        rules: SlotRules,
        appointment_id: str,
        start: datetime,
    ) -> bool:
        """The daily cap, checked where it cannot be raced: inside the claim's transaction.
        SQLite's BEGIN IMMEDIATE already runs one writer at a time; on PostgreSQL a
        transaction-scoped advisory lock on (calendar, local day) makes two claims for the same
        day count one after the other (READ COMMITTED: the second sees the first's row)."""
        if rules.daily_cap is None:
            return False
        assert ctx.connection is not None
        day = start.astimezone(zone(rules.time_zone)).date()
        lo, hi = local_day_span(day, rules.time_zone)
        if self._deps.db.is_postgres:
            key = f"{calendar_key(ctx.connection.connection_id, ctx.calendar_id)}|{day}"
            lock = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})
        booked = await session.scalar(
            select(func.count())
            .select_from(t.Appointment)
            .where(*active_on_calendar(ctx, lo, hi), t.Appointment.id != appointment_id)
        )
        return int(booked or 0) >= rules.daily_cap

    async def _insert_claim(
        self,
        session: AsyncSession,
        ctx: AgentContext,
        appointment_id: str,
        padded: Interval,
        rules: SlotRules,
        start: datetime,
    ) -> str | None:
        """Adds the claim and returns its id; None when the database refuses it (overlapping, a
        busy block, or the day's cap reached).
        A refusal always ends the caller's transaction (``_ClaimRefused`` rolls it back), so the
        INSERT needs no savepoint of its own."""
        assert ctx.connection is not None
        key = calendar_key(ctx.connection.connection_id, ctx.calendar_id)
        if not self._deps.db.is_postgres and await self._claim_conflicts(
            session, key, padded, appointment_id
        ):
            return None
        if await self._blocked(session, ctx, padded):
            return None
        if await self._over_daily_cap(session, ctx, rules, appointment_id, start):
            return None
        claim = t.TimeClaim(
            id=uuid4().hex,
            account_id=ctx.account_id,
            calendar_key=key,
            appointment_id=appointment_id,
            start_at=padded.start,
            end_at=padded.end,
        )
        session.add(claim)
        try:
            await session.flush()
        except IntegrityError:
            return None  # PostgreSQL: the exclusion constraint refused the overlap.
        return claim.id

    def _audit(
        self,
        session: AsyncSession,
        ctx: AgentContext,
        action: str,
        appointment_id: str,
        call_id: str,
        **detail: str,
    ) -> None:
        session.add(
            t.AuditRecord(
                id=uuid4().hex,
                account_id=ctx.account_id,
                agent_id=ctx.settings.agent_id,
                call_id=call_id,
                action=action,
                appointment_id=appointment_id,
                detail=detail,
            )
        )

    async def _confirm(
        self,
        session: AsyncSession,
        ctx: AgentContext,
        row: t.Appointment,
        kind: outbox.Kind,
        event_type: EventType | None,
    ) -> None:
        """Confirmations go into the outbox in the transaction that makes the change."""
        assert ctx.connection is not None
        if event_type is None:
            event_type = ctx.event_types.get(row.event_type_id)
        await outbox.enqueue(
            session,
            row,
            ctx.settings,
            ctx.connection.provider,
            kind,
            event_type_title=event_type.title if event_type else "",
        )

    async def _changed(self, connection_id: str, *appointments: tuple[datetime, datetime]) -> None:
        """Held availability around these times is out of date, here and on every replica."""
        await self._invalidator.connection_changed(connection_id, days_around(*appointments))

    @asynccontextmanager
    async def _write_changing(
        self, connection_id: str, *appointments: tuple[datetime, datetime]
    ) -> AsyncIterator[AsyncSession]:
        """A write transaction that changes held availability around these times. Other
        replicas are told by a NOTIFY sent with the commit (not a transaction of its own), and
        this replica drops its held days right after the commit, never before it."""
        message = self._invalidator.connection_message(connection_id, days_around(*appointments))
        async with self._deps.db.write() as session:
            yield session
            await self._invalidator.notify_in(session, message)
        self._invalidator.apply(message)

    async def _replay(self, account_id: str, replay: Replayed) -> Appointment:
        return await self.get(account_id, replay.resource_id)

    # Book --------------------------------------------------------------------------------

    async def book(self, account_id: str, cmd: BookCommand, deadline: Deadline) -> Appointment:
        caller = validate_caller(cmd.caller, default_region=self._deps.config.phone_default_region)
        if len(cmd.notes) > 2000:
            raise InvalidArgument("notes", "must be at most 2000 characters")
        ctx = await self._agents.context(account_id, cmd.agent_id)
        _, provider = ctx.require(Scope.CREATE_EVENTS)
        event_type = ctx.event_type(cmd.event_type_id)
        rules = ctx.rules(event_type)
        # A request id seen before goes through ``begin`` (replay, wait, or take over); a new
        # one, the usual case, is claimed inside the claim's transaction, which saves Book a
        # write transaction. ``held`` says whether a record of ours already exists.
        digest = ""
        held = False
        if cmd.request_id:
            digest = request_hash(
                "Book",
                {
                    "agent": cmd.agent_id,
                    "event_type": event_type.event_type_id,
                    "start": cmd.start.isoformat(),
                    "caller": [caller.name, caller.email, caller.phone, caller.time_zone],
                    "notes": cmd.notes,
                },
            )
            if await self._idempotency.exists(account_id, cmd.request_id):
                if (first := await self._first_call(account_id, cmd, digest, deadline)) is not None:
                    return first
                held = True
        while True:
            try:
                return await self._book(
                    ctx, provider, event_type, rules, cmd, caller, deadline, digest, held=held
                )
            except _DuplicateRequest:
                # A duplicate of this call claimed the id between our look and our claim.
                if (first := await self._first_call(account_id, cmd, digest, deadline)) is not None:
                    return first
                held = True
            except (SlotUnavailable, NoAvailableTimes) as error:
                if (
                    cmd.request_id
                    and not held
                    and await self._idempotency.exists(account_id, cmd.request_id)
                ):
                    # The time may be taken by a duplicate of this very call that claimed
                    # after our look: answer as it does.
                    first = await self._first_call(account_id, cmd, digest, deadline)
                    if first is not None:
                        return first
                    held = True
                    continue
                if isinstance(error, SlotUnavailable):
                    error.caller_time_zone = caller.time_zone
                if held:
                    await self._idempotency.abandon(account_id, cmd.request_id)
                raise
            except CalendarError:
                if held:
                    await self._idempotency.abandon(account_id, cmd.request_id)
                raise

    async def _first_call(
        self, account_id: str, cmd: BookCommand, digest: str, deadline: Deadline
    ) -> Appointment | None:
        """Another call holds this request id: its appointment once it has one (replay, after
        waiting if it is still running), or None when this call now holds the id (the other
        failed and forgot it, or died) and books after all."""
        outcome = await self._idempotency.begin(
            account_id, cmd.request_id, "Book", digest, deadline
        )
        return await self._replay(account_id, outcome) if isinstance(outcome, Replayed) else None

    async def _book(
        self,
        ctx: AgentContext,
        provider: CalendarProvider,
        event_type: EventType,
        rules: SlotRules,
        cmd: BookCommand,
        caller: Caller,
        deadline: Deadline,
        digest: str,
        *,
        held: bool,
    ) -> Appointment:
        start = cmd.start.astimezone(UTC)
        end = start + rules.duration
        await self._ensure_bookable(ctx, provider, rules, start, deadline, event_type=event_type)
        assert ctx.connection is not None
        appointment_id = uuid4().hex
        padded = Interval(start - rules.buffer_before, end + rules.buffer_after)
        title = render_title(
            ctx.settings.event_defaults.title_template,
            caller_name=caller.name,
            event_type=event_type.title,
            business_name=ctx.settings.business_name,
            agent_id=ctx.settings.agent_id,
        )
        try:
            row = await self._claim_new(
                ctx,
                event_type,
                cmd,
                caller,
                appointment_id,
                start,
                end,
                padded,
                title,
                rules,
                digest,
                held=held,
            )
        except _ClaimRefused:
            raise await self._unavailable(
                ctx, provider, rules, start, deadline, event_type=event_type
            ) from None
        request = EventRequest(
            appointment_id=appointment_id,
            calendar_id=ctx.calendar_id,
            event_type=event_type,
            start=start,
            end=end,
            title=title,
            caller=caller,
            time_zone=rules.time_zone,
            notes=cmd.notes,
            invite_caller=ctx.settings.confirmations.calendar_invite and bool(caller.email),
        )
        try:
            ref = await provider.create_event(request, deadline)
        except ProviderRateLimited:
            # A definite refusal: nothing was created.
            await self._release(ctx, appointment_id, cmd.request_id)
            raise
        except Unavailable:
            # Unknown outcome: the event may exist. Stay PENDING; the reconciler asks later.
            if cmd.request_id:
                async with self._deps.db.write() as session:
                    await Idempotency.finish(
                        session, ctx.account_id, cmd.request_id, appointment_id
                    )
            return await self.get(ctx.account_id, appointment_id)
        except CalendarError as error:
            await self._release(ctx, appointment_id, cmd.request_id)
            if isinstance(error, SlotUnavailable) and not error.alternatives:
                # The provider knew better than our last look: offer what is free now.
                raise await self._unavailable(
                    ctx, provider, rules, start, deadline, event_type=event_type
                ) from error
            raise
        # The row the claim wrote is still in hand: one UPDATE, no read first.
        row.status = AppointmentStatus.CONFIRMED.value
        row.provider_reference = ref.reference
        row.updated_at = self._deps.clock()
        async with self._deps.db.write() as session:
            await session.execute(
                update(t.Appointment)
                .where(t.Appointment.id == appointment_id)
                .values(
                    status=row.status,
                    provider_reference=row.provider_reference,
                    updated_at=row.updated_at,
                )
            )
            if cmd.request_id:
                await Idempotency.finish(session, ctx.account_id, cmd.request_id, appointment_id)
            self._audit(session, ctx, "BOOK", appointment_id, cmd.call_id, status=row.status)
            await self._confirm(session, ctx, row, outbox.Kind.BOOKED, event_type)
        return convert.appointment(row)

    async def _claim_new(
        self,
        ctx: AgentContext,
        event_type: EventType,
        cmd: BookCommand,
        caller: Caller,
        appointment_id: str,
        start: datetime,
        end: datetime,
        padded: Interval,
        title: str,
        rules: SlotRules,
        digest: str,
        *,
        held: bool,
    ) -> t.Appointment:
        """One transaction: the request id, the PENDING appointment and its claim, or nothing
        at all. Raises ``_ClaimRefused`` (time taken) or ``_DuplicateRequest``."""
        assert ctx.connection is not None
        async with self._write_changing(ctx.connection.connection_id, (start, end)) as session:
            # The request id first, so a duplicate in flight costs nothing else; tied to the
            # appointment from the start, so a crash from here on is replayed as this
            # appointment (the reconciler settles it).
            if (
                cmd.request_id
                and not held
                and not await self._idempotency.claim_in(
                    session, ctx.account_id, cmd.request_id, "Book", digest, appointment_id
                )
            ):
                raise _DuplicateRequest()
            row = t.Appointment(
                id=appointment_id,
                account_id=ctx.account_id,
                agent_id=ctx.settings.agent_id,
                connection_id=ctx.connection.connection_id,
                calendar_id=ctx.calendar_id,
                event_type_id=event_type.event_type_id,
                status=AppointmentStatus.PENDING.value,
                start_at=start,
                end_at=end,
                time_zone=rules.time_zone,
                caller_name=caller.name,
                caller_email=caller.email,
                caller_phone=caller.phone,
                caller_time_zone=caller.time_zone,
                title=title,
                notes=cmd.notes,
                call_id=cmd.call_id,
                # The injected clock, so the reconciler's "older than a minute" is consistent.
                created_at=self._deps.clock(),
                updated_at=self._deps.clock(),
            )
            session.add(row)
            if await self._insert_claim(session, ctx, appointment_id, padded, rules, start) is None:
                # Nothing of this attempt may survive: the transaction rolls back whole.
                raise _ClaimRefused()
            if cmd.request_id and held:
                await Idempotency.attach(session, ctx.account_id, cmd.request_id, appointment_id)
        return row

    async def _release(self, ctx: AgentContext, appointment_id: str, request_id: str) -> None:
        async with self._deps.db.write() as session:
            row = await self._load(session, ctx.account_id, appointment_id)
            row.status = AppointmentStatus.FAILED.value
            await session.execute(
                delete(t.TimeClaim).where(t.TimeClaim.appointment_id == appointment_id)
            )
            if request_id:
                await Idempotency.forget(session, ctx.account_id, request_id)
        await self._changed(row.connection_id, (row.start_at, row.end_at))

    # Reschedule --------------------------------------------------------------------------

    async def reschedule(
        self, account_id: str, cmd: RescheduleCommand, deadline: Deadline
    ) -> Appointment:
        ctx = await self._agents.context(account_id, cmd.agent_id)
        _, provider = ctx.require(Scope.RESCHEDULE_EVENTS)
        current = await self.get(account_id, cmd.appointment_id)
        if cmd.request_id:
            digest = request_hash(
                "Reschedule",
                {
                    "appointment": cmd.appointment_id,
                    "agent": cmd.agent_id,
                    "start": cmd.start.isoformat(),
                },
            )
            outcome = await self._idempotency.begin(
                account_id, cmd.request_id, "Reschedule", digest, deadline
            )
            if isinstance(outcome, Replayed):
                return await self._replay(account_id, outcome)
        try:
            return await self._reschedule(ctx, provider, current, cmd, deadline)
        except CalendarError:
            if cmd.request_id:
                await self._idempotency.abandon(account_id, cmd.request_id)
            raise

    async def _reschedule(
        self,
        ctx: AgentContext,
        provider: CalendarProvider,
        current: Appointment,
        cmd: RescheduleCommand,
        deadline: Deadline,
    ) -> Appointment:
        if ctx.connection is None or current.connection_id != ctx.connection.connection_id:
            raise NotFound("appointment", cmd.appointment_id)
        if current.status is not AppointmentStatus.CONFIRMED:
            raise AppointmentNotActive(current.appointment_id, current.status.value)
        event_type = ctx.event_type(current.event_type_id)
        rules = ctx.rules(event_type)
        start = cmd.start.astimezone(UTC)
        end = start + rules.duration
        if start == current.start:
            return current
        own = (
            Interval(current.start - rules.buffer_before, current.end + rules.buffer_after),
            Interval(current.start, current.end),
        )
        await self._ensure_bookable(
            ctx, provider, rules, start, deadline, event_type=event_type, ignore=own
        )
        padded = Interval(start - rules.buffer_before, end + rules.buffer_after)
        try:
            new_claim = await self._claim_move(
                ctx, current.appointment_id, padded, rules, (start, end)
            )
        except _ClaimRefused:
            raise await self._unavailable(
                ctx, provider, rules, start, deadline, event_type=event_type, ignore=own
            ) from None
        request = EventRequest(
            appointment_id=current.appointment_id,
            calendar_id=current.calendar_id,
            event_type=event_type,
            start=start,
            end=end,
            title=current.title,
            caller=current.caller,
            time_zone=rules.time_zone,
            notes=current.notes,
            invite_caller=ctx.settings.confirmations.calendar_invite and bool(current.caller.email),
        )
        try:
            ref = await provider.move_event(EventRef(current.provider_reference), request, deadline)
        except CalendarError:
            # The old time stays booked: drop only the new claim.
            async with self._write_changing(current.connection_id, (start, end)) as session:
                await session.execute(delete(t.TimeClaim).where(t.TimeClaim.id == new_claim))
            raise
        async with self._write_changing(
            current.connection_id, (current.start, current.end), (start, end)
        ) as session:
            row = await self._load(session, ctx.account_id, current.appointment_id)
            row.start_at, row.end_at = start, end
            row.provider_reference = ref.reference
            if ref.leftovers:
                row.pending_cancellations = [*row.pending_cancellations, *ref.leftovers]
            row.call_id = cmd.call_id or row.call_id
            # The old time is released only now that the new one is confirmed.
            await session.execute(
                delete(t.TimeClaim).where(
                    t.TimeClaim.appointment_id == current.appointment_id,
                    t.TimeClaim.id != new_claim,
                )
            )
            if cmd.request_id:
                await Idempotency.finish(session, ctx.account_id, cmd.request_id, row.id)
            self._audit(
                session,
                ctx,
                "RESCHEDULE",
                row.id,
                cmd.call_id,
                previous_start=current.start.isoformat(),
            )
            await self._confirm(session, ctx, row, outbox.Kind.RESCHEDULED, event_type)
        return convert.appointment(row)

    async def _claim_move(
        self,
        ctx: AgentContext,
        appointment_id: str,
        padded: Interval,
        rules: SlotRules,
        times: tuple[datetime, datetime],
    ) -> str:
        assert ctx.connection is not None
        async with self._write_changing(ctx.connection.connection_id, times) as session:
            claim_id = await self._insert_claim(
                session, ctx, appointment_id, padded, rules, times[0]
            )
            if claim_id is None:
                raise _ClaimRefused()
        return claim_id

    # Cancel ------------------------------------------------------------------------------

    async def cancel(self, account_id: str, cmd: CancelCommand, deadline: Deadline) -> Appointment:
        ctx = await self._agents.context(account_id, cmd.agent_id)
        _, provider = ctx.require(Scope.RESCHEDULE_EVENTS)
        current = await self.get(account_id, cmd.appointment_id)
        if ctx.connection is None or current.connection_id != ctx.connection.connection_id:
            raise NotFound("appointment", cmd.appointment_id)
        if current.status is AppointmentStatus.CANCELLED:
            return current
        if current.status is not AppointmentStatus.CONFIRMED:
            raise AppointmentNotActive(current.appointment_id, current.status.value)
        if len(cmd.reason) > 500:
            raise InvalidArgument("reason", "must be at most 500 characters")
        await provider.cancel_event(EventRef(current.provider_reference), deadline)
        async with self._write_changing(
            current.connection_id, (current.start, current.end)
        ) as session:
            row = await self._load(session, ctx.account_id, current.appointment_id)
            row.status = AppointmentStatus.CANCELLED.value
            row.call_id = cmd.call_id or row.call_id
            await session.execute(delete(t.TimeClaim).where(t.TimeClaim.appointment_id == row.id))
            self._audit(session, ctx, "CANCEL", row.id, cmd.call_id)
            await self._confirm(session, ctx, row, outbox.Kind.CANCELLED, None)
        return convert.appointment(row)


class _ClaimRefused(Exception):
    """The database refused the claim; turned into SLOT_UNAVAILABLE by the caller."""


class _DuplicateRequest(Exception):
    """A concurrent call with the same request id claimed it first."""


def slot_of(appointment: Appointment) -> Slot:
    return Slot(appointment.start, appointment.end)
