"""The Cal.com API v2 adapter: a slot-based provider reached with a Cal.com API key.

What lives here: ``CalcomProvider`` (every ``CalendarProvider`` method), its one request helper
(``_call``), its one error-mapping function (``map_error``) and ``calcom_adapter``, the factory
the registry uses.

How Cal.com maps onto our model:
- Connection: the key's user (``GET /v2/me``, checked live before Connect stores the key). Its
  id, username, email and time zone are kept in the connection's ``provider_state``. The user
  has one pseudo-calendar: their Cal.com account (Cal.com decides which real calendar a booking
  lands in).
- Event types: ``GET /v2/event-types``, mirrored by id (``EventType.provider_ref = str(id)``),
  duration from ``lengthInMinutes``. Cal.com's own event-type rules (its schedule, notice,
  buffers, limits) stay authoritative: we only ever offer starts ``GET /v2/slots`` returned,
  intersected with the agent's own windows by the availability engine.
- Availability: ``GET /v2/slots`` for the event type over the asked range (UTC bounds), asked in
  the Cal.com user's time zone; every returned start carries its own offset, so it is converted
  to UTC per slot (never with a fixed offset: DST).
- Booking: ``POST /v2/slots/reservations`` holds the slot, then ``POST /v2/bookings`` books it
  with ``metadata.gleam_appointment_id``; the hold is released (``DELETE``) whether the booking
  succeeded or failed, so a refused or later-cancelled time is not hidden from other bookers for
  the rest of the hold. A hold refused because someone else holds or booked the time is
  SLOT_UNAVAILABLE; a hold refused because Cal.com is down is skipped (the booking call is what
  decides, and Cal.com re-checks availability there).
- Reschedule: ``POST /v2/bookings/{uid}/reschedule``; Cal.com answers with a *new* booking uid
  (the old booking becomes cancelled with ``rescheduledToUid``), which becomes our reference.
- Cancel: ``POST /v2/bookings/{uid}/cancel``; already cancelled or unknown counts as done.
- Pushes: ``POST /v2/webhooks`` (user scope, booking triggers, our per-connection secret, which
  Cal.com uses for ``X-Cal-Signature-256``); ``DELETE /v2/webhooks/{id}`` stops them.
- Exactly once: when the booking call's outcome is unknown (timeout, transport error, 5xx) we
  look the booking up by its metadata (``find_event``) before answering; only if that lookup
  cannot answer either is the outcome reported as unknown (ProviderUnavailable: the appointment
  stays PENDING and the reconciler calls ``find_event`` later). ``find_event`` lists the user's
  bookings created in the last ``FIND_LOOKBACK`` (newest first, paged) and matches
  ``metadata.gleam_appointment_id``; the v2 list endpoint cannot filter by metadata.

Attendee email. Cal.com requires one. We send the caller's real address only when the caller
gave one *and* the business lets calendar invites go to callers (Cal.com mails every attendee).
Otherwise we send ``no-email+<appointment id>@gleam-calendar.invalid``: ".invalid" is reserved by
RFC 2606, so Cal.com's mails can never reach anybody, and the appointment id keeps the address
unique per booking.

Every request sends the ``cal-api-version`` its endpoint group needs (``API_VERSIONS``): without
it Cal.com silently answers with an older API version. The base URL comes from configuration
(``calcom_api_url``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from service.deadline import Deadline
from service.errors import (
    CalendarError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ProviderRateLimited,
    ProviderUnavailable,
    SlotUnavailable,
)
from service.model import EventType, ProviderKind
from service.providers.base import (
    AvailabilityShape,
    CalendarInfo,
    CalendarPage,
    CalendarProvider,
    ConnectedAccount,
    ConnectionCheck,
    EventRef,
    EventRequest,
    ProviderAuthError,
    ProviderContext,
)
from service.slots import Interval

PROVIDER = ProviderKind.CALCOM.value

# cal-api-version per endpoint group, as the saved OpenAPI file documents them. /v2/me takes none.
API_VERSIONS: tuple[tuple[str, str], ...] = (
    ("/v2/bookings", "2024-08-13"),
    ("/v2/slots", "2024-09-04"),
    ("/v2/event-types", "2024-06-14"),
)

METADATA_KEY = "gleam_appointment_id"
# What changes a connection's availability: a booking made, moved or cancelled at Cal.com.
WEBHOOK_TRIGGERS = ("BOOKING_CREATED", "BOOKING_RESCHEDULED", "BOOKING_CANCELLED")
PLACEHOLDER_EMAIL = "no-email+{appointment_id}@gleam-calendar.invalid"
# Minutes Cal.com holds a reserved slot: enough for the booking call that follows it.
RESERVATION_MINUTES = 2
# Of the RPC's remaining time, what the booking call leaves for the metadata lookup that settles
# an unknown outcome (a timeout must not eat the time needed to find out what happened).
LOOKUP_RESERVE_SECONDS = 1.5
# A hold release after the booking is housekeeping: it never waits long.
RELEASE_TIMEOUT_SECONDS = 1.0
# Releases running after their Book answered; held here so they are not collected mid-flight.
_RELEASES: set[asyncio.Task[None]] = set()
# find_event: a PENDING appointment is settled within minutes, at most days (provider outage).
FIND_LOOKBACK = timedelta(days=7)
PAGE_SIZE = 100
# A runaway pagination (a provider bug) must not hold a live call.
MAX_PAGES = 20
# Without rate-limit headers: Cal.com's throttler window.
DEFAULT_RETRY_AFTER = 60.0

# Cal.com's wording when the time can no longer be had (booking or hold). Not documented; the
# texts seen in its source and issues.
_SLOT_TAKEN = re.compile(
    r"already (has (a )?)?(booking|booked|reserved)|no_available_users_found|not available"
    r"|unavailable|no longer|slot.*(taken|reserved)|booking conflict",
    re.IGNORECASE,
)


_ALREADY_CANCELLED = re.compile(r"already (been )?cancel", re.IGNORECASE)


def api_version(path: str) -> str:
    """The ``cal-api-version`` the endpoint group of ``path`` needs ('' = send none)."""
    for prefix, version in API_VERSIONS:
        if path == prefix or path.startswith(prefix + "/"):
            return version
    return ""


def format_time(moment: datetime) -> str:
    """Cal.com's input format: UTC ISO 8601 with a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def placeholder_email(appointment_id: str) -> str:
    return PLACEHOLDER_EMAIL.format(appointment_id=appointment_id)


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        parsed = response.json()
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _seconds_until(value: str, now: float) -> float | None:
    """A rate-limit header as seconds from now: a delay in seconds, a Unix time (seconds or
    milliseconds) or an HTTP date."""
    value = value.strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        try:
            return parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError):
            return None
    if number > 1e12:  # Unix milliseconds
        return number / 1000 - now
    if number > 1e9:  # Unix seconds (Cal.com's X-RateLimit-Reset-*)
        return number - now
    return number


def retry_after(response: httpx.Response, now: float) -> float:
    """Seconds until Cal.com takes calls again. ``Retry-After`` first; else the latest reset
    among the exhausted ``X-RateLimit-Reset-<throttler>`` headers (the throttler name varies by
    credential, so every suffix is read)."""
    found = _seconds_until(response.headers.get("Retry-After", ""), now)
    if found is None:
        resets = []
        for name, value in response.headers.items():
            lowered = name.lower()
            if not lowered.startswith("x-ratelimit-reset"):
                continue
            suffix = lowered.removeprefix("x-ratelimit-reset")
            remaining = response.headers.get("x-ratelimit-remaining" + suffix, "0").strip()
            seconds = _seconds_until(value, now)
            if seconds is not None and remaining in ("0", ""):
                resets.append(seconds)
        found = max(resets) if resets else None
    if found is None:
        return DEFAULT_RETRY_AFTER
    return min(max(1.0, math.ceil(found)), 3600.0)


def map_error(
    response: httpx.Response,
    operation: str,
    *,
    slot_start: datetime | None = None,
    now: float | None = None,
) -> Exception:
    """The one place a Cal.com error status becomes one of ours (never INTERNAL).

    Error bodies are ``{status: "error", timestamp, path, error: {code, message, details}}``, or
    a bare ``{statusCode, message}``. Cal.com's messages may quote caller data, so only the code
    reaches our messages.
    """
    status = response.status_code
    body = _body(response)
    envelope = body.get("error")
    error: dict[str, Any] = envelope if isinstance(envelope, dict) else {}
    code = str(error.get("code") or (envelope if isinstance(envelope, str) else ""))[:80]
    text = f"{error.get('message') or body.get('message') or ''} {code}"
    if status in (401, 403):
        return ProviderAuthError(f"{status} {code or 'Unauthorized'} on {operation}")
    if status == 429:
        return ProviderRateLimited(
            PROVIDER, retry_after(response, time.time() if now is None else now)
        )
    if status >= 500:
        return ProviderUnavailable(PROVIDER, f"failed ({status}) on {operation}")
    if slot_start is not None and (
        status == 409 or (status in (400, 422) and _SLOT_TAKEN.search(text))
    ):
        # The booking layer fills in the alternatives from a fresh look at availability.
        return SlotUnavailable(slot_start, ())
    if status in (404, 410) or (
        operation == "cancel booking" and status == 400 and _ALREADY_CANCELLED.search(text)
    ):
        # Cancelling something already cancelled: nothing is left to free.
        return NotFound(f"{PROVIDER.lower()} booking", operation)
    if status in (400, 422) and re.search(r"attendee|email|phone", text, re.IGNORECASE):
        field = "caller.phone" if re.search(r"phone", text, re.IGNORECASE) else "caller"
        return InvalidArgument(field, f"refused by {PROVIDER} ({code or status})")
    return FailedPrecondition(
        f"{PROVIDER} refused {operation}: {status} {code}".rstrip(),
        reason="OPERATION_NOT_SUPPORTED",
        metadata={"provider": PROVIDER, "operation": operation},
    )


class CalcomProvider:
    """One connection's view of Cal.com. Built per request; holds no state between requests."""

    kind = ProviderKind.CALCOM
    availability_shape = AvailabilityShape.SLOTS

    def __init__(self, ctx: ProviderContext) -> None:
        self._http = ctx.http
        self._base = ctx.config.calcom_api_url.rstrip("/")
        self._timeout = ctx.config.provider_timeout_seconds
        self._key = ctx.credentials
        self._state: dict[str, Any] = dict(ctx.state)
        self._connection_id = ctx.connection_id

    # Transport -----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        deadline: Deadline,
        operation: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        slot_start: datetime | None = None,
        budget: float | None = None,
    ) -> dict[str, Any]:
        """One Cal.com request. Raises only CalendarError or ProviderAuthError.

        ``budget`` caps this call below the deadline (to keep time for what must follow)."""
        limit = min(deadline.remaining(), self._timeout)
        if budget is not None:
            limit = min(limit, budget)
        if limit <= 0:
            raise ProviderUnavailable(PROVIDER, f"was not asked ({operation}): no time left")
        headers = {"Authorization": f"Bearer {self._key}", "Accept": "application/json"}
        version = api_version(path)
        if version:
            headers["cal-api-version"] = version
        try:
            # httpx's timeout bounds each network step; the outer one bounds the whole call.
            async with asyncio.timeout(limit):
                response = await self._http.request(
                    method,
                    self._base + path,
                    params=params,
                    json=json,
                    headers=headers,
                    timeout=limit,
                )
        except (TimeoutError, httpx.TimeoutException):
            raise ProviderUnavailable(PROVIDER, f"did not answer in time ({operation})") from None
        except httpx.HTTPError:
            raise ProviderUnavailable(PROVIDER, f"could not be reached ({operation})") from None
        if response.status_code >= 400:
            raise map_error(response, operation, slot_start=slot_start)
        body = _body(response)
        if body.get("status") == "error":
            raise map_error(response, operation, slot_start=slot_start)
        return body

    # Identity ------------------------------------------------------------------------------

    async def identify(self, deadline: Deadline) -> ConnectedAccount:
        body = await self._call("GET", "/v2/me", deadline, "identify")
        user = body.get("data")
        if not isinstance(user, dict) or user.get("id") is None:
            raise ProviderUnavailable(PROVIDER, "answered /v2/me without a user")
        state = {
            "user_id": str(user.get("id")),
            "username": str(user.get("username") or ""),
            "email": str(user.get("email") or ""),
            "time_zone": str(user.get("timeZone") or ""),
        }
        self._state.update(state)
        return ConnectedAccount(
            external_account=state["email"] or state["username"] or state["user_id"],
            default_calendar_id=state["user_id"],
            provider_state=state,
        )

    async def check(self, deadline: Deadline) -> ConnectionCheck:
        try:
            await self.identify(deadline)
        except ProviderUnavailable as error:
            return ConnectionCheck(False, False, False, False, error.message)
        except ProviderRateLimited as error:
            return ConnectionCheck(False, False, False, False, error.message)
        # An API key has its user's full rights: a working key can read, book and change.
        return ConnectionCheck(True, True, True, True)

    async def list_calendars(
        self, page_size: int, page_token: str, deadline: Deadline
    ) -> CalendarPage:
        if page_token:
            return CalendarPage(())
        if not self._state.get("user_id"):
            await self.identify(deadline)
        name = str(self._state.get("username") or self._state.get("email") or "Cal.com")
        return CalendarPage(
            (
                CalendarInfo(
                    str(self._state["user_id"]),
                    name,
                    primary=True,
                    writable=True,
                    time_zone=str(self._state.get("time_zone") or ""),
                ),
            )
        )

    async def list_event_types(self, deadline: Deadline) -> tuple[EventType, ...]:
        body = await self._call("GET", "/v2/event-types", deadline, "list event types")
        types = []
        for item in body.get("data") or []:
            if not isinstance(item, dict):
                continue
            ident, minutes = item.get("id"), item.get("lengthInMinutes")
            if (
                isinstance(ident, bool)
                or not isinstance(ident, int | float)
                or not isinstance(minutes, int | float)
                or minutes <= 0
            ):
                continue  # nothing we could book
            types.append(
                EventType(
                    event_type_id="",
                    connection_id=self._connection_id,
                    title=str(item.get("title") or item.get("slug") or "Cal.com event"),
                    slug=str(item.get("slug") or ""),
                    duration=timedelta(minutes=float(minutes)),
                    # Hidden event types are kept, not offered (the business switched them off).
                    active=not item.get("hidden"),
                    provider_ref=str(int(ident)),
                )
            )
        return tuple(types)

    # Availability --------------------------------------------------------------------------

    async def busy(
        self, calendar_ids: tuple[str, ...], start: datetime, end: datetime, deadline: Deadline
    ) -> tuple[Interval, ...]:
        # Slot-based: Cal.com's slots already account for its busy time.
        return ()

    async def open_starts(
        self, event_type: EventType, start: datetime, end: datetime, deadline: Deadline
    ) -> tuple[datetime, ...]:
        lo, hi = start.astimezone(UTC), end.astimezone(UTC)
        if lo >= hi:
            return ()
        params = {
            "eventTypeId": _event_type_id(event_type),
            "start": format_time(lo),
            "end": format_time(hi),
            "timeZone": str(self._state.get("time_zone") or "UTC"),
        }
        body = await self._call("GET", "/v2/slots", deadline, "list slots", params=params)
        days = body.get("data")
        if not isinstance(days, dict):
            raise ProviderUnavailable(PROVIDER, "answered /v2/slots without a slot map")
        starts = set()
        for slots in days.values():
            for slot in slots if isinstance(slots, list) else ():
                # format=time gives strings; the default and format=range give {start, ...}.
                text = slot.get("start") if isinstance(slot, dict) else slot
                try:
                    moment = parse_time(str(text))
                except ValueError:
                    continue
                if lo <= moment < hi:
                    starts.add(moment)
        return tuple(sorted(starts))

    # Booking -------------------------------------------------------------------------------

    def _attendee(self, request: EventRequest) -> dict[str, Any]:
        caller = request.caller
        email = caller.email if request.invite_caller and caller.email else ""
        attendee: dict[str, Any] = {
            "name": caller.name,
            "email": email or placeholder_email(request.appointment_id),
            "timeZone": caller.time_zone or request.time_zone or "UTC",
        }
        if caller.phone:
            attendee["phoneNumber"] = caller.phone
        return attendee

    async def _reserve(self, event_type_id: int, start: datetime, deadline: Deadline) -> str:
        """Holds the slot; '' when Cal.com could not be asked (the booking still decides)."""
        try:
            body = await self._call(
                "POST",
                "/v2/slots/reservations",
                deadline,
                "reserve slot",
                json={
                    "eventTypeId": event_type_id,
                    "slotStart": format_time(start),
                    "reservationDuration": RESERVATION_MINUTES,
                },
                slot_start=start,
                budget=max(0.0, deadline.remaining() - LOOKUP_RESERVE_SECONDS) / 2,
            )
        except ProviderUnavailable:
            return ""
        data = body.get("data")
        return str(data.get("reservationUid") or "") if isinstance(data, dict) else ""

    async def _release(self, reservation: str, deadline: Deadline) -> None:
        """Best effort: an unreleased hold expires by itself after RESERVATION_MINUTES."""
        if not reservation:
            return
        with contextlib.suppress(CalendarError, ProviderAuthError):
            await self._call(
                "DELETE",
                f"/v2/slots/reservations/{reservation}",
                deadline,
                "release slot",
                budget=RELEASE_TIMEOUT_SECONDS,
            )

    def _release_later(self, reservation: str) -> None:
        """After a successful booking the hold is only tidiness (it expires by itself), so the
        caller on the line does not wait one more Cal.com round trip for it."""
        if not reservation:
            return
        task = asyncio.create_task(
            self._release(reservation, Deadline.after(RELEASE_TIMEOUT_SECONDS)),
            name="calcom-release-hold",
        )
        _RELEASES.add(task)
        task.add_done_callback(_RELEASES.discard)
        # Best effort to the end: a failure (say the client closed at shutdown) is dropped.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def create_event(self, request: EventRequest, deadline: Deadline) -> EventRef:
        event_type_id = int(_event_type_id(request.event_type))
        start = request.start.astimezone(UTC)
        reservation = await self._reserve(event_type_id, start, deadline)
        body: dict[str, Any] = {
            "start": format_time(start),
            "eventTypeId": event_type_id,
            "attendee": self._attendee(request),
            # What find_event matches after an unknown outcome.
            "metadata": {METADATA_KEY: request.appointment_id},
        }
        if request.notes:
            # Cal.com's default "Additional notes" booking field.
            body["bookingFieldsResponses"] = {"notes": request.notes[:500]}
        try:
            answer = await self._call(
                "POST",
                "/v2/bookings",
                deadline,
                "create booking",
                json=body,
                slot_start=start,
                budget=max(deadline.remaining() - LOOKUP_RESERVE_SECONDS, deadline.remaining() / 2),
            )
        except ProviderUnavailable:
            # Unknown outcome: the booking may exist. Ask before anyone books again.
            found = await self._settle(request.appointment_id, deadline)
            await self._release(reservation, deadline)
            if found is None:
                # Not there *yet*: a slow Cal.com may still be creating it, so the outcome stays
                # unknown (PENDING) and the reconciler asks again later.
                raise
            return found
        except (CalendarError, ProviderAuthError):
            await self._release(reservation, deadline)
            raise
        self._release_later(reservation)
        uid = _booking_uid(answer.get("data"))
        if uid:
            return EventRef(uid)
        found = await self._settle(request.appointment_id, deadline)
        if found is None:
            raise ProviderUnavailable(PROVIDER, "booked without naming the booking")
        return found

    async def _settle(self, appointment_id: str, deadline: Deadline) -> EventRef | None:
        """find_event after an unknown outcome; raises ProviderUnavailable when it cannot tell
        (None means: looked, and Cal.com has no such booking)."""
        try:
            found = await self.find_event(appointment_id, deadline)
        except ProviderUnavailable:
            raise ProviderUnavailable(
                PROVIDER, "did not confirm the booking in time; it is being checked"
            ) from None
        except ProviderRateLimited as error:
            # Not a refusal of the booking itself: the outcome stays unknown.
            raise ProviderUnavailable(PROVIDER, "did not confirm the booking in time") from error
        return found

    async def find_event(self, appointment_id: str, deadline: Deadline) -> EventRef | None:
        # Cal.com stamps createdAt with its own (real) clock, so the window is real time too.
        after = datetime.now(UTC) - FIND_LOOKBACK
        for page in range(MAX_PAGES):
            body = await self._call(
                "GET",
                "/v2/bookings",
                deadline,
                "list bookings",
                params={
                    "afterCreatedAt": format_time(after),
                    "sortCreated": "desc",
                    "take": str(PAGE_SIZE),
                    "skip": str(page * PAGE_SIZE),
                },
            )
            for item in body.get("data") or []:
                if not isinstance(item, dict):
                    continue
                metadata = item.get("metadata")
                if not isinstance(metadata, dict) or metadata.get(METADATA_KEY) != appointment_id:
                    continue
                if item.get("status") in ("cancelled", "rejected"):
                    # Not a live booking (e.g. the old half of a reschedule): not the answer.
                    continue
                uid = _booking_uid(item)
                if uid:
                    return EventRef(uid)
            pagination = body.get("pagination")
            if not isinstance(pagination, dict) or not pagination.get("hasNextPage"):
                return None
        raise ProviderUnavailable(PROVIDER, f"returned more than {MAX_PAGES} pages of bookings")

    async def move_event(
        self, ref: EventRef, request: EventRequest, deadline: Deadline
    ) -> EventRef:
        start = request.start.astimezone(UTC)
        answer = await self._call(
            "POST",
            f"/v2/bookings/{_uid(ref.reference)}/reschedule",
            deadline,
            "reschedule booking",
            json={"start": format_time(start), "reschedulingReason": "Rescheduled by phone"},
            slot_start=start,
        )
        uid = _booking_uid(answer.get("data"))
        if not uid:
            raise ProviderUnavailable(PROVIDER, "rescheduled without naming the new booking")
        return EventRef(uid)

    async def cancel_event(self, ref: EventRef, deadline: Deadline) -> None:
        if not ref.reference:
            return
        try:
            await self._call(
                "POST",
                f"/v2/bookings/{_uid(ref.reference)}/cancel",
                deadline,
                "cancel booking",
                json={"cancellationReason": "Cancelled by the business's assistant"},
            )
        except NotFound:
            return  # already cancelled, or gone: what cancelling wanted

    # Pushes --------------------------------------------------------------------------------

    async def subscribe(
        self,
        callback_url: str,
        secret: str,
        deadline: Deadline,
        calendar_ids: tuple[str, ...] = (),
    ) -> Mapping[str, Any]:
        """A user-scoped webhook for booking changes, signed with our per-connection secret."""
        answer = await self._call(
            "POST",
            "/v2/webhooks",
            deadline,
            "create webhook",
            json={
                "active": True,
                "subscriberUrl": callback_url,
                "triggers": list(WEBHOOK_TRIGGERS),
                "secret": secret,
            },
        )
        data = answer.get("data")
        webhook_id = data.get("id") if isinstance(data, dict) else None
        if webhook_id is None:
            raise ProviderUnavailable(PROVIDER, "created a webhook without naming it")
        # The spec types ids as numbers; keep the integer form ("12", not "12.0").
        if isinstance(webhook_id, float) and webhook_id.is_integer():
            webhook_id = int(webhook_id)
        return {"calcom_webhook_id": str(webhook_id)}

    async def unsubscribe(self, state: Mapping[str, Any], deadline: Deadline) -> None:
        webhook_id = str(state.get("calcom_webhook_id") or "")
        if not webhook_id:
            return
        try:
            await self._call("DELETE", f"/v2/webhooks/{webhook_id}", deadline, "delete webhook")
        except NotFound:
            return  # already gone: what unsubscribing wanted


def _event_type_id(event_type: EventType) -> str:
    ref = event_type.provider_ref
    if not ref.isdigit():
        raise FailedPrecondition(
            f"event type {event_type.event_type_id!r} has no Cal.com event type id",
            reason="OPERATION_NOT_SUPPORTED",
            metadata={"provider": PROVIDER, "operation": "slots"},
        )
    return ref


def _uid(reference: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", reference):
        raise InvalidArgument("provider_reference", "is not a Cal.com booking uid")
    return reference


def _booking_uid(data: Any) -> str:
    # A recurring event type answers with a list of bookings: the first one is ours.
    if isinstance(data, list):
        data = data[0] if data else {}
    return str(data.get("uid") or "") if isinstance(data, dict) else ""


def calcom_adapter(ctx: ProviderContext) -> CalendarProvider:
    """The registry's factory."""
    return CalcomProvider(ctx)
