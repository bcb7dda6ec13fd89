"""The Calendly API v2 adapter: a slot-based provider reached with a personal or OAuth token.

What lives here: ``CalendlyProvider`` (every ``CalendarProvider`` method), its one request
helper and its one error-mapping function, and ``calendly_adapter``, the factory the registry
uses. The Create Event Invitee usage counter is in ``calendly_usage``.

How Calendly maps onto our model:
- Connection: the token's user (``GET /users/me``); its user and organization URIs and time zone
  are kept in the connection's ``provider_state``. The user has one calendar: their own.
- Event types: Calendly's, mirrored by URI (``EventType.provider_ref``).
- Availability: ``GET /event_type_available_times`` answers open starts for at most
  ``AVAILABILITY_WINDOW`` per call and only in the future; longer ranges are split into windows
  fetched concurrently within the RPC deadline.
- Booking: ``POST /invitees`` (Calendly's Scheduling API). Reference = the scheduled event URI.
- Reschedule: Calendly has none. The new time is booked first, then the old event cancelled; a
  failed cancel is returned as a leftover that the maintenance loop cancels later.
- Lookup after an unknown outcome: every invitee we create carries ``tracking.utm_source =
  "gleam-calendar"`` and ``tracking.utm_content = <appointment id>``; ``find_event`` scans the
  user's recent active events for that marker.
- Pushes: ``POST /webhook_subscriptions`` (scope user, invitee created/canceled, our
  per-connection secret as ``signing_key``); ``DELETE /webhook_subscriptions/{uuid}`` stops them.

Every base URL comes from configuration (``calendly_api_url``); pagination is followed by page
token against that base, never by a URL taken from a response, so the token is never sent to a
host the configuration did not name.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
from service.providers.calendly_usage import USAGE, InviteeUsage
from service.slots import Interval

PROVIDER = ProviderKind.CALENDLY.value

# Longest range one event_type_available_times call accepts (31 days since 2026-07-09; 7 before).
AVAILABILITY_WINDOW = timedelta(days=31)
# Calendly refuses a start_time that is not in the future; keep a margin for clock skew and
# request latency.
FUTURE_MARGIN = timedelta(minutes=1)
# Calendly's maximum ``count``.
PAGE_SIZE = 100
# Booked or cancelled (a Calendly reschedule is a cancel plus a create): what changes slots.
WEBHOOK_EVENTS = ("invitee.created", "invitee.canceled")
# A runaway pagination (a provider bug) must not hold a live call.
MAX_PAGES = 50
# find_event: an appointment is left PENDING for minutes, at most days (provider outage); only
# events created this recently can be ours.
FIND_LOOKBACK = timedelta(days=7)
# How many invitee lists find_event asks for at once.
FIND_CONCURRENCY = 8

TRACKING_SOURCE = "gleam-calendar"
# Calendly requires an invitee email. A caller who gave none (or a business that turned calendar
# invites off) is booked with this address: RFC 2606 reserves ".invalid", so Calendly's
# confirmation mails can never reach anybody, and the appointment id in it keeps each address
# unique (Calendly refuses the same invitee twice on one event) and lets find_event match it.
PLACEHOLDER_EMAIL = "no-email+{appointment_id}@gleam-calendar.invalid"

# Calendly's wording for a start that is no longer bookable (the exact text is not documented).
_SLOT_TAKEN = re.compile(
    r"no longer available|not available|unavailable|already (been )?(booked|taken|scheduled)"
    r"|(time|slot) .*taken",
    re.IGNORECASE,
)
# 403 texts on cancellation that mean "nothing left to cancel".
_ALREADY_GONE = re.compile(r"already cancel|in the past", re.IGNORECASE)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """Calendly's format: UTC with microseconds and a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def placeholder_email(appointment_id: str) -> str:
    return PLACEHOLDER_EMAIL.format(appointment_id=appointment_id)


def _retry_after(response: httpx.Response, now: datetime) -> float:
    """Seconds until Calendly accepts calls again: X-RateLimit-Reset is seconds until reset;
    Retry-After is seconds or an HTTP date. Unknown: Calendly's usual minute."""
    for header in ("X-RateLimit-Reset", "Retry-After"):
        value = response.headers.get(header, "").strip()
        if not value:
            continue
        try:
            return max(1.0, float(value))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            continue
        return max(1.0, (when - now).total_seconds())
    return 60.0


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        parsed = response.json()
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def map_error(
    response: httpx.Response,
    operation: str,
    now: datetime,
    *,
    auth_call: bool = False,
    slot_start: datetime | None = None,
) -> Exception:
    """The one place a Calendly error status becomes one of ours (never INTERNAL).

    Error bodies are ``{title, message, details?[{parameter, message}]}``. Calendly's messages may
    quote caller data, so only the title and parameter names reach our error messages.
    """
    status = response.status_code
    body = _body(response)
    title = str(body.get("title") or "")
    text = f"{title} {body.get('message') or ''}".strip()
    params = [
        str(d.get("parameter"))
        for d in body.get("details") or []
        if isinstance(d, dict) and d.get("parameter")
    ]
    if status == 401 or (status == 403 and auth_call):
        return ProviderAuthError(f"{status} {title or 'Unauthenticated'}")
    if status == 429:
        return ProviderRateLimited(PROVIDER, _retry_after(response, now))
    if status >= 500 or status == 424:
        # 424 is "External Calendar Error": the user's own calendar behind Calendly failed.
        return ProviderUnavailable(PROVIDER, f"failed ({status}) on {operation}")
    if slot_start is not None and (
        status == 409 or (status in (400, 422) and _SLOT_TAKEN.search(text))
    ):
        return SlotUnavailable(slot_start, ())
    if status == 403 and operation == "cancel event" and _ALREADY_GONE.search(text):
        # "Event is already canceled" / "Event in the past": nothing is left to free.
        return NotFound(f"{PROVIDER.lower()} scheduled event", operation)
    if status == 403:
        return FailedPrecondition(
            f"{PROVIDER} denied {operation} ({title or 'Permission Denied'}); the token may lack "
            "a scope",
            reason="INSUFFICIENT_PROVIDER_SCOPES",
            metadata={"provider": PROVIDER, "missing_scopes": _SCOPES.get(operation, "")},
        )
    if status == 404:
        return NotFound(f"{PROVIDER.lower()} resource", operation)
    if status in (400, 422) and any(p.startswith("invitee.") for p in params):
        # The caller's details did not satisfy Calendly (e.g. an email it will not accept).
        field = {
            "invitee.email": "caller.email",
            "invitee.text_reminder_number": "caller.phone",
            "invitee.timezone": "caller.time_zone",
        }.get(params[0], "caller")
        return InvalidArgument(field, f"refused by {PROVIDER} ({title or status})")
    where = f" ({', '.join(params)})" if params else ""
    return FailedPrecondition(
        f"{PROVIDER} refused {operation}: {status} {title}{where}",
        reason="OPERATION_NOT_SUPPORTED",
        metadata={"provider": PROVIDER, "operation": operation},
    )


_SCOPES = {
    "list event types": "event_types:read",
    "list available times": "event_types:read",
    "create invitee": "scheduled_events:write",
    "cancel event": "scheduled_events:write",
    "list scheduled events": "scheduled_events:read",
    "list invitees": "scheduled_events:read",
}


class CalendlyProvider:
    """One connection's view of Calendly. Built per request; holds no state between requests
    except the process-wide invitee usage counter."""

    kind = ProviderKind.CALENDLY
    availability_shape = AvailabilityShape.SLOTS

    def __init__(
        self, ctx: ProviderContext, *, clock: Clock = utc_now, usage: InviteeUsage = USAGE
    ) -> None:
        self._http = ctx.http
        self._base = ctx.config.calendly_api_url.rstrip("/")
        self._timeout = ctx.config.provider_timeout_seconds
        self._token = ctx.credentials
        self._state: dict[str, Any] = dict(ctx.state)
        self._connection_id = ctx.connection_id
        self._clock = clock
        self._usage = usage

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
        auth_call: bool = False,
        slot_start: datetime | None = None,
        empty_ok: bool = False,
    ) -> dict[str, Any]:
        """One Calendly request. Raises only CalendarError or ProviderAuthError.

        ``empty_ok``: the operation answers 204 No Content (deletes)."""
        remaining = deadline.remaining()
        if remaining <= 0:
            raise ProviderUnavailable(PROVIDER, f"was not asked ({operation}): no time left")
        try:
            response = await self._http.request(
                method,
                self._base + path,
                params=params,
                json=json,
                headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
                timeout=min(remaining, self._timeout),
            )
        except httpx.TimeoutException:
            raise ProviderUnavailable(PROVIDER, f"did not answer in time ({operation})") from None
        except httpx.HTTPError:
            raise ProviderUnavailable(PROVIDER, f"could not be reached ({operation})") from None
        if response.status_code >= 400:
            raise map_error(
                response, operation, self._clock(), auth_call=auth_call, slot_start=slot_start
            )
        body = _body(response)
        if not body and not (empty_ok and response.status_code == 204):
            raise ProviderUnavailable(PROVIDER, f"answered {operation} with no JSON object")
        return body

    async def _collection(
        self, path: str, params: Mapping[str, str], deadline: Deadline, operation: str
    ) -> list[dict[str, Any]]:
        """All pages of a listing: follows ``pagination.next_page`` (by its page token, against
        the configured base) until it is null."""
        items: list[dict[str, Any]] = []
        query = {**params, "count": str(PAGE_SIZE)}
        for _ in range(MAX_PAGES):
            body = await self._call("GET", path, deadline, operation, params=query)
            items.extend(i for i in body.get("collection") or [] if isinstance(i, dict))
            pagination = body.get("pagination") or {}
            next_page = pagination.get("next_page")
            if not next_page:
                return items
            token = pagination.get("next_page_token") or _page_token(str(next_page))
            if not token:
                raise ProviderUnavailable(
                    PROVIDER, f"gave a next page without a token ({operation})"
                )
            query = {**query, "page_token": token}
        raise ProviderUnavailable(PROVIDER, f"returned more than {MAX_PAGES} pages ({operation})")

    # Identity ------------------------------------------------------------------------------

    async def identify(self, deadline: Deadline) -> ConnectedAccount:
        body = await self._call("GET", "/users/me", deadline, "identify", auth_call=True)
        user = body.get("resource") or {}
        uri = str(user.get("uri") or "")
        if not uri:
            raise ProviderUnavailable(PROVIDER, "answered /users/me without a user")
        state = {
            "user_uri": uri,
            "organization_uri": str(user.get("current_organization") or ""),
            "timezone": str(user.get("timezone") or ""),
            "name": str(user.get("name") or ""),
        }
        # Connect lists event types with this same instance before anything is stored.
        self._state.update(state)
        return ConnectedAccount(
            external_account=str(user.get("email") or uri),
            default_calendar_id=uri,
            provider_state=state,
        )

    async def _user_uri(self, deadline: Deadline) -> str:
        uri = str(self._state.get("user_uri") or "")
        if not uri:
            uri = (await self.identify(deadline)).default_calendar_id
        return uri

    async def check(self, deadline: Deadline) -> ConnectionCheck:
        try:
            await self.identify(deadline)
        except ProviderUnavailable as error:
            return ConnectionCheck(False, False, False, False, error.message)
        # Calendly does not report a PAT's scopes; a working token is taken as able to book.
        return ConnectionCheck(True, True, True, True)

    async def list_calendars(
        self, page_size: int, page_token: str, deadline: Deadline
    ) -> CalendarPage:
        if page_token:
            return CalendarPage(())
        uri = await self._user_uri(deadline)
        name = str(self._state.get("name") or "Calendly")
        tz = str(self._state.get("timezone") or "")
        return CalendarPage((CalendarInfo(uri, name, primary=True, writable=True, time_zone=tz),))

    async def list_event_types(self, deadline: Deadline) -> tuple[EventType, ...]:
        user = await self._user_uri(deadline)
        items = await self._collection("/event_types", {"user": user}, deadline, "list event types")
        types = []
        for item in items:
            uri = str(item.get("uri") or "")
            minutes = item.get("duration")
            if not uri or not isinstance(minutes, int | float) or minutes <= 0:
                continue  # nothing we could book
            types.append(
                EventType(
                    event_type_id="",
                    connection_id=self._connection_id,
                    title=str(item.get("name") or item.get("slug") or "Calendly event"),
                    slug=str(item.get("slug") or ""),
                    duration=timedelta(minutes=float(minutes)),
                    # Kept but not bookable: switched off, or deleted at Calendly.
                    active=bool(item.get("active")) and not item.get("deleted_at"),
                    provider_ref=uri,
                )
            )
        return tuple(types)

    # Availability --------------------------------------------------------------------------

    async def busy(
        self, calendar_ids: tuple[str, ...], start: datetime, end: datetime, deadline: Deadline
    ) -> tuple[Interval, ...]:
        # Slot-based: Calendly's available times already account for busy time.
        return ()

    async def open_starts(
        self, event_type: EventType, start: datetime, end: datetime, deadline: Deadline
    ) -> tuple[datetime, ...]:
        lo = max(start.astimezone(UTC), self._clock() + FUTURE_MARGIN)
        hi = end.astimezone(UTC)
        if lo >= hi:
            return ()
        windows = []
        while lo < hi:
            windows.append((lo, min(lo + AVAILABILITY_WINDOW, hi)))
            lo = windows[-1][1]
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self._available(event_type, a, b, deadline))
                    for a, b in windows
                ]
        except BaseExceptionGroup as failures:
            raise _most_telling(failures) from None
        starts = {s for task in tasks for s in task.result() if start <= s < end}
        return tuple(sorted(starts))

    async def _available(
        self, event_type: EventType, start: datetime, end: datetime, deadline: Deadline
    ) -> list[datetime]:
        body = await self._call(
            "GET",
            "/event_type_available_times",
            deadline,
            "list available times",
            params={
                "event_type": event_type.provider_ref,
                "start_time": format_time(start),
                "end_time": format_time(end),
            },
        )
        starts = []
        for item in body.get("collection") or []:
            if not isinstance(item, dict) or item.get("status", "available") != "available":
                continue
            try:
                starts.append(parse_time(str(item["start_time"])))
            except (KeyError, ValueError):
                continue
        return starts

    # Booking -------------------------------------------------------------------------------

    def _invitee(self, request: EventRequest) -> dict[str, Any]:
        caller = request.caller
        # The caller's real address only when the business wants the caller invited: Calendly
        # mails every invitee.
        email = caller.email if request.invite_caller and caller.email else ""
        invitee: dict[str, Any] = {
            "name": caller.name,
            "email": email or placeholder_email(request.appointment_id),
            "timezone": caller.time_zone or request.time_zone or "UTC",
        }
        if caller.phone:
            invitee["text_reminder_number"] = caller.phone
        return invitee

    async def create_event(self, request: EventRequest, deadline: Deadline) -> EventRef:
        if not request.event_type.provider_ref:
            raise FailedPrecondition(
                f"event type {request.event_type.event_type_id!r} has no Calendly URI",
                reason="OPERATION_NOT_SUPPORTED",
                metadata={"provider": PROVIDER, "operation": "Book"},
            )
        # Refuse before Calendly would (its 429 costs a round trip during a live call).
        self._usage.reserve(self._connection_id, self._clock())
        start = request.start.astimezone(UTC)
        body = {
            "event_type": request.event_type.provider_ref,
            "start_time": format_time(start),
            "invitee": self._invitee(request),
            # The marker find_event looks for; UTM fields are free text and on every plan.
            # No location: Calendly then uses the event type's configured one.
            "tracking": {"utm_source": TRACKING_SOURCE, "utm_content": request.appointment_id},
        }
        try:
            answer = await self._call(
                "POST", "/invitees", deadline, "create invitee", json=body, slot_start=start
            )
        except ProviderRateLimited as error:
            self._usage.pause(
                self._connection_id, self._clock() + timedelta(seconds=error.retry_after)
            )
            raise
        event = str((answer.get("resource") or {}).get("event") or "")
        if not event:
            # Created, but we cannot name it: leave it to the reconciler (find_event).
            raise ProviderUnavailable(PROVIDER, "booked without naming the scheduled event")
        return EventRef(event)

    async def find_event(self, appointment_id: str, deadline: Deadline) -> EventRef | None:
        """Scans the user's active events created in the last ``FIND_LOOKBACK`` for an invitee
        carrying our marker. Calendly cannot filter by tracking, so this costs one invitee list
        per candidate event; it never answers "not found" without having looked at them all."""
        user = await self._user_uri(deadline)
        now = self._clock()
        events = await self._collection(
            "/scheduled_events",
            {
                "user": user,
                "status": "active",
                "min_start_time": format_time(now - FIND_LOOKBACK),
                "sort": "start_time:asc",
            },
            deadline,
            "list scheduled events",
        )
        candidates = []
        for event in events:
            try:
                created = parse_time(str(event.get("created_at")))
            except ValueError:
                created = now
            if created >= now - FIND_LOOKBACK and event.get("uri"):
                candidates.append(str(event["uri"]))
        gate = asyncio.Semaphore(FIND_CONCURRENCY)
        email = placeholder_email(appointment_id)

        async def ours(uri: str) -> bool:
            async with gate:
                invitees = await self._collection(
                    f"/scheduled_events/{_uuid(uri)}/invitees", {}, deadline, "list invitees"
                )
            return any(
                (i.get("tracking") or {}).get("utm_content") == appointment_id
                or i.get("email") == email
                for i in invitees
            )

        try:
            async with asyncio.TaskGroup() as group:
                checks = [(uri, group.create_task(ours(uri))) for uri in candidates]
        except BaseExceptionGroup as failures:
            raise _most_telling(failures) from None
        for uri, task in checks:
            if task.result():
                return EventRef(uri)
        return None

    async def move_event(
        self, ref: EventRef, request: EventRequest, deadline: Deadline
    ) -> EventRef:
        """Book the new time first: if that fails nothing changed and the caller keeps the old
        time. Then cancel the old event; if that fails the new booking stands and the old event
        is handed back as a leftover for the maintenance loop to cancel."""
        new = await self.create_event(request, deadline)
        if not ref.reference:
            return new
        try:
            await self._cancel(
                ref.reference, deadline, f"Rescheduled to {format_time(request.start)}"
            )
        except (CalendarError, ProviderAuthError):
            return EventRef(new.reference, leftovers=(ref.reference,))
        return new

    async def cancel_event(self, ref: EventRef, deadline: Deadline) -> None:
        if ref.reference:
            await self._cancel(ref.reference, deadline, "Cancelled by the business's assistant")

    async def _cancel(self, reference: str, deadline: Deadline, reason: str) -> None:
        try:
            await self._call(
                "POST",
                f"/scheduled_events/{_uuid(reference)}/cancellation",
                deadline,
                "cancel event",
                json={"reason": reason},
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
        """A user-scoped webhook subscription; ``signing_key`` is ours, so Calendly signs
        ``Calendly-Webhook-Signature`` with the secret we verify against."""
        user = await self._user_uri(deadline)
        organization = str(self._state.get("organization_uri") or "")
        if not organization:
            raise ProviderUnavailable(PROVIDER, "named no organization for the user")
        answer = await self._call(
            "POST",
            "/webhook_subscriptions",
            deadline,
            "create webhook subscription",
            json={
                "url": callback_url,
                "events": list(WEBHOOK_EVENTS),
                "organization": organization,
                "user": user,
                "scope": "user",
                "signing_key": secret,
            },
        )
        resource = answer.get("resource") or {}
        uri = str(resource.get("uri") or "") if isinstance(resource, dict) else ""
        if not uri:
            raise ProviderUnavailable(PROVIDER, "created a webhook subscription without a URI")
        return {"calendly_webhook_uri": uri}

    async def unsubscribe(self, state: Mapping[str, Any], deadline: Deadline) -> None:
        uri = str(state.get("calendly_webhook_uri") or "")
        if not uri:
            return
        try:
            await self._call(
                "DELETE",
                f"/webhook_subscriptions/{_uuid(uri)}",
                deadline,
                "delete webhook subscription",
                empty_ok=True,
            )
        except NotFound:
            return  # already gone: what unsubscribing wanted


def _uuid(uri: str) -> str:
    """The last path segment of a Calendly resource URI (or a bare uuid)."""
    tail = urlsplit(uri).path.rstrip("/").rsplit("/", 1)[-1]
    if not tail or not re.fullmatch(r"[A-Za-z0-9_-]+", tail):
        raise InvalidArgument("provider_reference", "is not a Calendly scheduled event URI")
    return tail


def _page_token(next_page: str) -> str:
    values = parse_qs(urlsplit(next_page).query).get("page_token") or [""]
    return values[0]


def _most_telling(failures: BaseExceptionGroup[BaseException]) -> BaseException:
    """Of concurrent failures, the one that says most: a rejected token, then a rate limit,
    then any of ours; a non-calendar exception (a bug) is re-raised as it is."""
    flat: list[BaseException] = []
    stack: list[BaseException] = [failures]
    while stack:
        item = stack.pop()
        if isinstance(item, BaseExceptionGroup):
            stack.extend(item.exceptions)
        else:
            flat.append(item)
    for kind in (ProviderAuthError, ProviderRateLimited, CalendarError):
        for error in flat:
            if isinstance(error, kind):
                return error
    return flat[0]


def calendly_adapter(ctx: ProviderContext) -> CalendarProvider:
    """The registry's factory."""
    return CalendlyProvider(ctx, clock=ctx.clock)
