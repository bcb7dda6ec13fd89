"""ListSlots: the agent's rules plus live busy time, through the pure slot engine.

Also the availability questions Book and Reschedule ask: is this exact start bookable now, and
what are the nearest alternatives if not.
"""

from __future__ import annotations

import enum
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from service.deadline import Deadline
from service.errors import InvalidArgument, InvalidTimeRange, ProviderUnavailable
from service.model import EventType, Scope
from service.providers.base import AvailabilityShape, CalendarProvider
from service.providers.builtin import calendar_key
from service.scheduling.agents import AgentContext, AgentDirectory
from service.scheduling.appointments import active_on_calendar
from service.scheduling.cache import AvailabilityCache, day_start, utc_days
from service.scheduling.deps import Deps
from service.scheduling.validation import check_time_zone, local_day_span, zone
from service.slots import (
    Interval,
    Slot,
    SlotRejection,
    SlotResult,
    SlotRules,
    compute_slots,
    filter_offered_starts,
    first_available,
    nearest,
    reusable_until,
    spread,
)
from service.store import tables as t

ALTERNATIVES = 3
MAX_RESULTS = 500
# How far past an empty range we look for "the next date that has times".
LOOKAHEAD = timedelta(days=62)
SLOT_PROVIDER_LOOKAHEAD = timedelta(days=14)


class NoAvailability(enum.Enum):
    FULLY_BOOKED = "FULLY_BOOKED"
    OUTSIDE_BUSINESS_HOURS = "OUTSIDE_BUSINESS_HOURS"
    INSIDE_NOTICE_PERIOD = "INSIDE_NOTICE_PERIOD"
    BEYOND_ADVANCE_WINDOW = "BEYOND_ADVANCE_WINDOW"
    DAILY_CAP_REACHED = "DAILY_CAP_REACHED"
    IN_THE_PAST = "IN_THE_PAST"


@dataclass(frozen=True, slots=True)
class SlotQuery:
    agent_id: str
    event_type_id: str
    range_start: datetime | None
    range_end: datetime | None
    local_date: date | None
    caller_time_zone: str
    requested: datetime | None
    max_results: int


@dataclass(frozen=True, slots=True)
class SlotsAnswer:
    slots: tuple[Slot, ...]
    time_zone: str
    caller_time_zone: str
    requested_available: bool = False
    alternatives: tuple[Slot, ...] = ()
    no_availability: NoAvailability | None = None
    next_available_date: date | None = None
    from_cache: bool = False
    data_age: timedelta = timedelta(0)
    stale: bool = False


def _why_empty(result: SlotResult, range_end: datetime, now: datetime) -> NoAvailability:
    if range_end <= now:
        return NoAvailability.IN_THE_PAST
    if result.candidates == 0:
        return NoAvailability.OUTSIDE_BUSINESS_HOURS
    rejected = result.rejected
    busy, cap = rejected.get(SlotRejection.BUSY, 0), rejected.get(SlotRejection.DAILY_CAP, 0)
    # Taken time beats "too soon": "we're fully booked today" is what a receptionist would say.
    if busy or cap:
        return NoAvailability.FULLY_BOOKED if busy >= cap else NoAvailability.DAILY_CAP_REACHED
    if rejected.get(SlotRejection.ADVANCE, 0):
        return NoAvailability.BEYOND_ADVANCE_WINDOW
    return NoAvailability.INSIDE_NOTICE_PERIOD


@dataclass(frozen=True, slots=True)
class Freshness:
    from_cache: bool = False
    age: timedelta = timedelta(0)
    stale: bool = False
    # Which held entries the data came from (Lookup.version); None: read live or fetched for
    # this reader only, so nothing computed from it may be reused.
    version: tuple[int, ...] | None = None

    def merge(self, other: Freshness) -> Freshness:
        return Freshness(
            self.from_cache and other.from_cache,
            max(self.age, other.age),
            self.stale or other.stale,
            None if self.version is None or other.version is None else self.version + other.version,
        )


LIVE = Freshness()
# What merging leaves unchanged: an input that is not read at all (no daily cap, say).
NEUTRAL = Freshness(from_cache=True, version=())
# Slot results computed from held data are reused while that data and the clock allow
# (``_Computed``): at most this many, least recently used out, and none for longer than this.
RESULTS_KEPT = 1024
RESULT_REUSE_SECONDS = 60.0
# Time kept back from the RPC deadline to build and send the answer after a fetch.
ANSWER_MARGIN = 0.02


def _by_day(
    items: tuple[Interval, ...], start: datetime, end: datetime
) -> list[tuple[date, tuple[Interval, ...]]]:
    out = []
    for day in utc_days(start, end):
        lo, hi = day_start(day), day_start(day) + timedelta(days=1)
        out.append((day, tuple(i for i in items if i.start < hi and i.end > lo)))
    return out


@dataclass(frozen=True, slots=True)
class _Computed:
    """A slot result and what it was computed from. It stays right while the held entries
    (named by ``version``, part of the key) are the same, the rules object is the same (a
    settings change builds new rules), and the clock has not passed ``valid_until`` (the
    engine's ``reusable_until``, capped at ``RESULT_REUSE_SECONDS``)."""

    rules: SlotRules
    result: SlotResult
    valid_until: datetime


def _starts_by_day(
    starts: tuple[datetime, ...], start: datetime, end: datetime
) -> list[tuple[date, tuple[datetime, ...]]]:
    return [
        (d, tuple(s for s in starts if s.astimezone(UTC).date() == d)) for d in utc_days(start, end)
    ]


class AvailabilityService:
    def __init__(self, deps: Deps, agents: AgentDirectory) -> None:
        self._deps = deps
        self._agents = agents
        self._computed: OrderedDict[tuple[object, ...], _Computed] = OrderedDict()
        config = deps.config
        self.busy_cache: AvailabilityCache[Interval] = AvailabilityCache(
            ttl=config.cache_ttl_seconds, max_days=config.cache_max_days
        )
        self.slots_cache: AvailabilityCache[datetime] = AvailabilityCache(
            ttl=config.cache_ttl_seconds, max_days=config.cache_max_days
        )

    def invalidate(self, connection_id: str, days: list[date] | None = None) -> None:
        self.busy_cache.invalidate(connection_id, days)
        self.slots_cache.invalidate(connection_id, days)

    def _fetch_deadline(self) -> Deadline:
        # A fetch fills the cache for later callers too, so it may outlive this RPC's deadline.
        return Deadline.after(self._deps.config.provider_timeout_seconds)

    async def _cached(
        self,
        cache: AvailabilityCache[Any],
        ctx: AgentContext,
        source: str,
        start: datetime,
        end: datetime,
        fetch: Any,
        deadline: Deadline,
    ) -> Any:
        assert ctx.connection is not None
        try:
            return await cache.get(
                ctx.connection.connection_id,
                source,
                start,
                end,
                fetch,
                budget=deadline.remaining() - ANSWER_MARGIN,
            )
        except TimeoutError as error:
            raise ProviderUnavailable(
                ctx.connection.provider.value, "did not answer in time and nothing is cached"
            ) from error

    # Reading busy time -------------------------------------------------------------------

    async def busy(
        self,
        ctx: AgentContext,
        provider: CalendarProvider,
        rules: SlotRules,
        start: datetime,
        end: datetime,
        deadline: Deadline,
        *,
        live: bool = False,
    ) -> tuple[tuple[Interval, ...], Freshness]:
        """Busy time that can affect candidates starting in [start, end)."""
        pad = rules.buffer_before + rules.buffer_after + rules.duration
        lo, hi = start - pad, end + pad
        calendars = (ctx.calendar_id, *ctx.settings.blocking_calendar_ids)
        builtin = ctx.connection is not None and ctx.connection.provider.value == "BUILTIN"

        async def read(a: datetime, b: datetime, budget: Deadline) -> tuple[Interval, ...]:
            intervals = await provider.busy(calendars, a, b, budget)
            if not builtin:
                # Our own claims cover bookings the provider may not show yet.
                intervals = intervals + await self._claims(ctx, a, b)
            return intervals

        if live:
            return await read(lo, hi, deadline), LIVE

        async def fetch(a: datetime, b: datetime) -> list[tuple[date, tuple[Interval, ...]]]:
            return _by_day(await read(a, b, self._fetch_deadline()), a, b)

        found = await self._cached(
            self.busy_cache, ctx, "busy:" + ",".join(calendars), lo, hi, fetch, deadline
        )
        return found.items, Freshness(found.from_cache, found.age, found.stale, found.version)

    async def _claims(
        self, ctx: AgentContext, start: datetime, end: datetime
    ) -> tuple[Interval, ...]:
        assert ctx.connection is not None
        key = calendar_key(ctx.connection.connection_id, ctx.calendar_id)
        async with self._deps.db.read() as session:
            rows = await session.execute(
                select(t.TimeClaim.start_at, t.TimeClaim.end_at).where(
                    t.TimeClaim.calendar_key == key,
                    t.TimeClaim.start_at < end,
                    t.TimeClaim.end_at > start,
                )
            )
            return tuple(Interval(a, b) for a, b in rows)

    async def _booked_starts(
        self, ctx: AgentContext, start: datetime, end: datetime
    ) -> tuple[datetime, ...]:
        """Starts of our active appointments on the agent's calendar in [start, end)."""
        async with self._deps.db.read() as session:
            starts = await session.scalars(
                select(t.Appointment.start_at).where(*active_on_calendar(ctx, start, end))
            )
            return tuple(starts)

    async def day_counts(
        self,
        ctx: AgentContext,
        rules: SlotRules,
        start: datetime,
        end: datetime,
        deadline: Deadline,
        live: bool = False,
    ) -> tuple[dict[date, int], Freshness]:
        """Our appointments per local date, for the daily cap. Held like busy time (per UTC
        day, dropped by the same invalidations: every booking, move, cancel or failure), so a
        capped agent's ListSlots reads no database either; ``live`` reads them now (Book)."""
        if rules.daily_cap is None or ctx.connection is None:
            return {}, NEUTRAL
        lo, hi = start - timedelta(days=1), end + timedelta(days=1)
        if live:
            starts, fresh = await self._booked_starts(ctx, lo, hi), LIVE
        else:

            async def fetch(a: datetime, b: datetime) -> list[tuple[date, tuple[datetime, ...]]]:
                return _starts_by_day(await self._booked_starts(ctx, a, b), a, b)

            found = await self._cached(
                self.slots_cache, ctx, "booked:" + ctx.calendar_id, lo, hi, fetch, deadline
            )
            starts = tuple(x for x in found.items if lo <= x < hi)
            fresh = Freshness(found.from_cache, found.age, found.stale, found.version)
        tz = zone(rules.time_zone)
        return dict(Counter(x.astimezone(tz).date() for x in starts)), fresh

    async def compute(
        self,
        ctx: AgentContext,
        provider: CalendarProvider,
        rules: SlotRules,
        start: datetime,
        end: datetime,
        deadline: Deadline,
        *,
        ignore: tuple[Interval, ...] = (),
        event_type: EventType | None = None,
        live: bool = False,
    ) -> tuple[SlotResult, Freshness]:
        """Slots in [start, end). ``live`` bypasses the cache (Book: a cached answer must never
        book a taken time)."""
        now = self._deps.clock()
        counts, fresh_counts = await self.day_counts(ctx, rules, start, end, deadline, live)
        if provider.availability_shape is AvailabilityShape.SLOTS:
            assert event_type is not None, "slot-based providers answer per event type"
            offered, fresh = await self._offered(
                ctx, provider, event_type, start, end, deadline, live
            )
            pad = rules.buffer_before + rules.buffer_after + rules.duration
            claims, fresh_claims = await self._claims_cached(
                ctx, start - pad, end + pad, deadline, live
            )
            fresh = fresh.merge(fresh_claims).merge(fresh_counts)
            key = self._result_key(ctx, rules, event_type, start, end, ignore, fresh)
            if (kept := self._kept(key, rules, now)) is not None:
                return kept, fresh
            busy = tuple(b for b in claims if b not in ignore)
            result = filter_offered_starts(
                rules,
                offered,
                range_start=start,
                range_end=end,
                now=now,
                busy=busy,
                day_counts=counts,
            )
            self._keep(key, rules, result, now, end)
            return result, fresh
        busy, fresh = await self.busy(ctx, provider, rules, start, end, deadline, live=live)
        fresh = fresh.merge(fresh_counts)
        key = self._result_key(ctx, rules, event_type, start, end, ignore, fresh)
        if (kept := self._kept(key, rules, now)) is not None:
            return kept, fresh
        if ignore:
            busy = tuple(b for b in busy if b not in ignore)
        result = compute_slots(
            rules, range_start=start, range_end=end, now=now, busy=busy, day_counts=counts
        )
        self._keep(key, rules, result, now, end)
        return result, fresh

    # Reusing computed slots (the warm ListSlots path) --------------------------------------

    @staticmethod
    def _result_key(
        ctx: AgentContext,
        rules: SlotRules,
        event_type: EventType | None,
        start: datetime,
        end: datetime,
        ignore: tuple[Interval, ...],
        fresh: Freshness,
    ) -> tuple[object, ...] | None:
        """None when the result may not be reused: some input was read live."""
        if fresh.version is None:
            return None
        return (
            ctx.account_id,
            ctx.settings.agent_id,
            event_type.event_type_id if event_type else "",
            start,
            end,
            ignore,
            fresh.version,
        )

    def _kept(
        self, key: tuple[object, ...] | None, rules: SlotRules, now: datetime
    ) -> SlotResult | None:
        if key is None:
            return None
        kept = self._computed.get(key)
        if kept is None or kept.rules is not rules or now >= kept.valid_until:
            return None
        self._computed.move_to_end(key)
        return kept.result

    def _keep(
        self,
        key: tuple[object, ...] | None,
        rules: SlotRules,
        result: SlotResult,
        now: datetime,
        end: datetime,
    ) -> None:
        until = None if key is None else reusable_until(rules, result, now, end)
        if key is None or until is None:
            return
        valid_until = min(now + timedelta(seconds=RESULT_REUSE_SECONDS), until)
        self._computed[key] = _Computed(rules, result, valid_until)
        self._computed.move_to_end(key)
        while len(self._computed) > RESULTS_KEPT:
            self._computed.popitem(last=False)

    async def _offered(
        self,
        ctx: AgentContext,
        provider: CalendarProvider,
        event_type: EventType,
        start: datetime,
        end: datetime,
        deadline: Deadline,
        live: bool,
    ) -> tuple[tuple[datetime, ...], Freshness]:
        if live:
            return await provider.open_starts(event_type, start, end, deadline), LIVE

        async def fetch(a: datetime, b: datetime) -> list[tuple[date, tuple[datetime, ...]]]:
            starts = await provider.open_starts(event_type, a, b, self._fetch_deadline())
            return _starts_by_day(starts, a, b)

        found = await self._cached(
            self.slots_cache, ctx, "slots:" + event_type.event_type_id, start, end, fetch, deadline
        )
        return found.items, Freshness(found.from_cache, found.age, found.stale, found.version)

    async def _claims_cached(
        self, ctx: AgentContext, start: datetime, end: datetime, deadline: Deadline, live: bool
    ) -> tuple[tuple[Interval, ...], Freshness]:
        if live:
            return await self._claims(ctx, start, end), LIVE

        async def fetch(a: datetime, b: datetime) -> list[tuple[date, tuple[Interval, ...]]]:
            return _by_day(await self._claims(ctx, a, b), a, b)

        found = await self._cached(self.busy_cache, ctx, "claims", start, end, fetch, deadline)
        return found.items, Freshness(found.from_cache, found.age, found.stale, found.version)

    async def next_open(
        self,
        ctx: AgentContext,
        provider: CalendarProvider,
        rules: SlotRules,
        after: datetime,
        k: int,
        deadline: Deadline,
        *,
        ignore: tuple[Interval, ...] = (),
        event_type: EventType | None = None,
        live: bool = False,
    ) -> tuple[Slot, ...]:
        now = self._deps.clock()
        after = max(after, now)
        if provider.availability_shape is AvailabilityShape.SLOTS:
            # Each look-ahead costs provider calls: a shorter horizon, one request.
            result, _ = await self.compute(
                ctx,
                provider,
                rules,
                after,
                after + SLOT_PROVIDER_LOOKAHEAD,
                deadline,
                ignore=ignore,
                event_type=event_type,
                live=live,
            )
            return result.slots[:k]
        horizon = after + LOOKAHEAD
        busy, _ = await self.busy(ctx, provider, rules, after, horizon, deadline, live=live)
        if ignore:
            busy = tuple(b for b in busy if b not in ignore)
        counts, _ = await self.day_counts(ctx, rules, after, horizon, deadline, live)
        found = first_available(rules, after=after, now=now, busy=busy, k=k, day_counts=counts)
        return tuple(s for s in found if s.start < horizon)

    # PrepareCall -------------------------------------------------------------------------

    async def prepare(
        self, account_id: str, agent_id: str, days: int, deadline: Deadline
    ) -> Freshness:
        """Fetches the agent's next ``days`` into the cache, so the call's first ListSlots is a
        hit. Every bookable event type is warmed (slot-based providers answer per type)."""
        if not 0 <= days <= 62:
            raise InvalidArgument("days", "must be between 0 and 62")
        ctx = await self._agents.context(account_id, agent_id)
        _, provider = ctx.require(Scope.READ_CALENDAR)
        tz = zone(ctx.settings.availability.time_zone)
        today = self._deps.clock().astimezone(tz).date()
        # A day either side: busy reads are padded by buffers and the appointment length.
        start = datetime.combine(today - timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
        end = datetime.combine(
            today + timedelta(days=(days or 14) + 1), time(0), tzinfo=tz
        ).astimezone(UTC)
        allowed = ctx.settings.allowed_event_type_ids or tuple(ctx.event_types)
        types = [ctx.event_types[e] for e in allowed if e in ctx.event_types]
        if provider.availability_shape is AvailabilityShape.BUSY:
            types = types[:1]  # busy time does not depend on the type
        freshness = Freshness(from_cache=True)
        for event_type in types:
            rules = ctx.rules(event_type)
            _, fresh = await self.compute(
                ctx, provider, rules, start, end, deadline, event_type=event_type
            )
            freshness = freshness.merge(fresh)
        return freshness

    # ListSlots ---------------------------------------------------------------------------

    def _range(self, query: SlotQuery, tz_name: str) -> tuple[datetime, datetime]:
        if query.local_date is not None:
            return local_day_span(query.local_date, tz_name)
        if query.range_start is None or query.range_end is None:
            raise InvalidArgument("range", "give time_range or date")
        if query.range_end <= query.range_start:
            raise InvalidTimeRange("time_range.end_time", "must be after start_time")
        days = self._deps.config.max_range_days
        if query.range_end - query.range_start > timedelta(days=days):
            err = InvalidTimeRange("time_range", f"may span at most {days} days")
            err.metadata["max_days"] = str(days)
            raise err
        return query.range_start, query.range_end

    async def list_slots(
        self, account_id: str, query: SlotQuery, deadline: Deadline
    ) -> SlotsAnswer:
        if query.max_results < 0:
            raise InvalidArgument("max_results", "must not be negative")
        if query.caller_time_zone:
            check_time_zone(query.caller_time_zone, "caller_time_zone")
        ctx = await self._agents.context(account_id, query.agent_id)
        _, provider = ctx.require(Scope.READ_CALENDAR)
        event_type = ctx.event_type(query.event_type_id)
        business_tz = ctx.settings.availability.time_zone
        caller_tz = query.caller_time_zone or business_tz
        start, end = self._range(query, business_tz)
        rules = ctx.rules(event_type)
        result, fresh = await self.compute(
            ctx, provider, rules, start, end, deadline, event_type=event_type
        )
        slots = result.slots
        answer = SlotsAnswer(slots=(), time_zone=business_tz, caller_time_zone=caller_tz)
        requested_available = False
        alternatives: tuple[Slot, ...] = ()
        if query.requested is not None:
            requested_available = any(s.start == query.requested for s in slots)
            if not requested_available:
                alternatives = nearest(
                    slots, query.requested, ALTERNATIVES
                ) or await self.next_open(
                    ctx,
                    provider,
                    rules,
                    query.requested,
                    ALTERNATIVES,
                    deadline,
                    event_type=event_type,
                )
        limit = min(query.max_results or MAX_RESULTS, MAX_RESULTS)
        if query.local_date is not None and query.max_results and len(slots) > limit:
            picked = spread(slots, query.local_date, business_tz, limit)
        else:
            picked = slots[:limit]
        reason = None
        next_date = None
        if not slots:
            reason = _why_empty(result, end, self._deps.clock())
            upcoming = await self.next_open(
                ctx, provider, rules, end, 1, deadline, event_type=event_type
            )
            if upcoming:
                next_date = upcoming[0].start.astimezone(zone(business_tz)).date()
        return SlotsAnswer(
            slots=picked,
            time_zone=answer.time_zone,
            caller_time_zone=caller_tz,
            requested_available=requested_available,
            alternatives=alternatives,
            no_availability=reason,
            next_available_date=next_date,
            from_cache=fresh.from_cache,
            data_age=fresh.age,
            stale=fresh.stale,
        )
