"""The Google Calendar v3 adapter: free/busy for availability, events for bookings.

Availability is read with ``freeBusy.query`` only (a busy-based provider): event details are
never listed. Bookings are events inserted with an id derived from our appointment id, so a
retry after an unknown outcome hits 409 and is settled by reading that one event back; there is
never a second event. Every request goes through ``_request`` (token, timeout, one refresh on
401, one bounded rate-limit retry) and every failure through ``_error`` (one mapping, never a
raw exception). Base URLs come from configuration.

Pushes: ``events.watch`` opens one channel per calendar the connection's agents book on or
block with (the primary calendar when no agent uses it yet). The token is the connection's
webhook secret and the channel id starts with the connection id, so the receiver finds the
connection by key and checks both. ``channels.stop`` closes them. Channels expire (Google picks
the lifetime), so the maintenance loop re-watches before the first one does, and also when the
agents' calendars change.

Event references are ``"<calendarId>/<eventId>"``: Google event ids are per calendar, and
cancel/move get only the reference, so it must name the calendar too.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from service.deadline import Deadline
from service.errors import (
    CalendarError,
    FailedPrecondition,
    NotFound,
    ProviderRateLimited,
    ProviderUnavailable,
)
from service.model import EventType, ProviderKind
from service.providers.base import (
    AvailabilityShape,
    CalendarInfo,
    CalendarPage,
    ConnectedAccount,
    ConnectionCheck,
    EventRef,
    EventRequest,
    ProviderAuthError,
    ProviderContext,
)
from service.providers.google_tokens import PROVIDER, TokenSource
from service.slots import Interval

_PREFIX = "https://www.googleapis.com/auth/"
# Granted scopes that cover each capability (broader ones included), per the discovery document.
_READ_SCOPES = frozenset(
    _PREFIX + s
    for s in ("calendar.freebusy", "calendar.events.freebusy", "calendar.readonly", "calendar")
)
_WRITE_SCOPES = frozenset(
    _PREFIX + s for s in ("calendar.events", "calendar.events.owned", "calendar")
)
_RATE_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "usageLimits"}
)
_AUTH_REASONS = frozenset({"authError", "insufficientPermissions", "invalidCredentials"})
# Google's own limit on calendars per freeBusy query.
_FREEBUSY_MAX_ITEMS = 50
# Used when a rate-limit answer carries no Retry-After (403 rate limits never do).
_DEFAULT_RETRY_AFTER = 1.0
# The longest we wait before the single rate-limit retry; longer waits go back to the caller.
_MAX_BACKOFF = 2.0
# What a retried call needs at least, beyond the wait, to be worth trying.
_RETRY_MARGIN = 1.0
_EVENT_ID_PREFIX = "gleam"
_BASE32HEX = re.compile(r"^[0-9a-v]+$")
_APPOINTMENT_KEY = "gleam_appointment_id"
# find_event looks at this many writable calendars at most (after the primary one).
_FIND_PAGES = 4
# provider_state key of the open push channels: [{id, resource_id, calendar_id, expires_ms}].
GOOGLE_CHANNELS = "google_channels"
# A failed subscribe stops what it opened with this budget of its own.
STOP_SECONDS = 5.0


def event_id(appointment_id: str) -> str:
    """Google event id for an appointment: deterministic, base32hex, 5 to 1024 characters.

    Our appointment ids are uuid hex (inside base32hex), kept readable behind a prefix that
    also keeps them apart from ids other tools choose; anything else is hashed."""
    if _BASE32HEX.match(appointment_id) and len(appointment_id) <= 1000:
        return _EVENT_ID_PREFIX + appointment_id
    return _EVENT_ID_PREFIX + hashlib.sha256(appointment_id.encode()).hexdigest()


def reference(calendar_id: str, google_event_id: str) -> str:
    return f"{calendar_id}/{google_event_id}"


def split_reference(ref: str, default_calendar: str) -> tuple[str, str]:
    # Event ids never contain "/", calendar ids might: split on the last one.
    calendar_id, _, google_event_id = ref.rpartition("/")
    return calendar_id or default_calendar, google_event_id


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("not a timestamp")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("timestamp without offset")
    return parsed.astimezone(UTC)


def _retry_after(response: httpx.Response) -> float:
    raw = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return _DEFAULT_RETRY_AFTER  # absent, or an HTTP date: a short default


def _reasons(response: httpx.Response) -> tuple[str, ...]:
    try:
        body = response.json()
    except ValueError:
        return ()
    error = body.get("error") if isinstance(body, dict) else None
    items = error.get("errors") if isinstance(error, dict) else None
    if not isinstance(items, list):
        return ()
    return tuple(str(e.get("reason", "")) for e in items if isinstance(e, dict))


def _error(
    response: httpx.Response, operation: str, resource_id: str = ""
) -> CalendarError | ProviderAuthError:
    """The one mapping from a Google error answer to ours."""
    status = response.status_code
    reasons = _reasons(response)
    if status == 429 or (status == 403 and _RATE_REASONS.intersection(reasons)):
        return ProviderRateLimited(PROVIDER, _retry_after(response))
    if status == 401 or (status == 403 and _AUTH_REASONS.intersection(reasons)):
        return ProviderAuthError(f"{operation}: {status} {','.join(reasons) or 'refused'}")
    if status >= 500 or status == 408:
        return ProviderUnavailable(PROVIDER, f"answered {status} to {operation}")
    if status in (404, 410):
        return NotFound("calendar event" if "event" in operation else "calendar", resource_id)
    # A definite refusal (400, 403 without a rate or auth reason, 412...): nothing changed.
    return FailedPrecondition(
        f"Google refused {operation} ({status} {','.join(reasons) or 'error'})",
        reason="OPERATION_NOT_SUPPORTED",
        metadata={
            "provider": PROVIDER,
            "operation": operation,
            "provider_status": str(status),
            "provider_reason": ",".join(reasons),
        },
    )


class GoogleCalendarProvider:
    kind = ProviderKind.GOOGLE
    availability_shape = AvailabilityShape.BUSY

    def __init__(self, ctx: ProviderContext) -> None:
        self._http = ctx.http
        self._config = ctx.config
        self._base = ctx.config.google_api_url.rstrip("/")
        self._tokens = TokenSource(ctx.http, ctx.config, ctx.credentials, ctx.connection_id)
        self._state = ctx.state
        self._connection_id = ctx.connection_id

    @property
    def _primary(self) -> str:
        return str(self._state.get("primary_calendar_id") or "primary")

    # Transport -----------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        token: str,
        deadline: Deadline,
        params: Mapping[str, str | int] | None,
        body: Mapping[str, Any] | None,
    ) -> httpx.Response:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise ProviderUnavailable(PROVIDER)
        try:
            return await self._http.request(
                method,
                self._base + path,
                params=dict(params or {}),
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=min(remaining, self._config.provider_timeout_seconds),
            )
        except httpx.TimeoutException as error:
            raise ProviderUnavailable(PROVIDER) from error
        except httpx.HTTPError as error:
            raise ProviderUnavailable(PROVIDER, "could not be reached") from error

    async def _request(
        self,
        method: str,
        path: str,
        deadline: Deadline,
        operation: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """One call: refresh once on 401, wait once on a rate limit that fits the deadline.

        Answers with a status in ``ok`` are returned; everything else raises via ``_error``."""
        refreshed = backed_off = False
        token = await self._tokens.token(deadline)
        while True:
            response = await self._send(method, path, token, deadline, params, body)
            if response.status_code in ok:
                return response
            error = _error(response, operation, path.rsplit("/", 1)[-1])
            if response.status_code == 401 and not refreshed:
                refreshed = True
                token = await self._tokens.token(deadline, fresh=True)
                continue
            if isinstance(error, ProviderRateLimited) and not backed_off:
                wait = error.retry_after
                if wait <= _MAX_BACKOFF and wait + _RETRY_MARGIN < deadline.remaining():
                    backed_off = True
                    await asyncio.sleep(wait)
                    continue
            if isinstance(error, ProviderAuthError):
                self._tokens.forget()
            raise error

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError as error:
            raise ProviderUnavailable(PROVIDER, "answered garbage") from error
        if not isinstance(body, dict):
            raise ProviderUnavailable(PROVIDER, "answered garbage")
        return body

    # Account -------------------------------------------------------------------------------

    async def _primary_entry(self, deadline: Deadline) -> dict[str, Any]:
        response = await self._request(
            "GET", "/users/me/calendarList/primary", deadline, "calendarList.get"
        )
        return self._json(response)

    async def identify(self, deadline: Deadline) -> ConnectedAccount:
        entry = await self._primary_entry(deadline)
        primary = entry.get("id")
        if not isinstance(primary, str) or not primary:
            raise ProviderUnavailable(PROVIDER, "named no primary calendar")
        return ConnectedAccount(
            external_account=primary,  # the primary calendar's id is the account's email
            default_calendar_id=primary,
            granted_scopes=self._tokens.secret.scopes,
            provider_state={"primary_calendar_id": primary},
        )

    async def check(self, deadline: Deadline) -> ConnectionCheck:
        await self._primary_entry(deadline)  # live: the token refreshes and the API answers
        granted = set(self._tokens.secret.scopes)
        read = bool(granted & _READ_SCOPES)
        write = bool(granted & _WRITE_SCOPES)
        missing = [name for name, has in (("free/busy", read), ("events", write)) if not has]
        detail = f"missing permissions: {', '.join(missing)}" if missing else ""
        return ConnectionCheck(read and write, read, write, write, detail)

    async def list_calendars(
        self, page_size: int, page_token: str, deadline: Deadline
    ) -> CalendarPage:
        params: dict[str, str | int] = {
            # Agents book into a calendar and block time with others: free/busy access at least.
            "minAccessRole": "freeBusyReader",
            "maxResults": max(1, min(page_size, 250)),
        }
        if page_token:
            params["pageToken"] = page_token
        response = await self._request(
            "GET", "/users/me/calendarList", deadline, "calendarList.list", params=params
        )
        body = self._json(response)
        calendars = []
        for item in body.get("items") or ():
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            calendars.append(
                CalendarInfo(
                    calendar_id=item["id"],
                    summary=str(item.get("summaryOverride") or item.get("summary") or item["id"]),
                    primary=bool(item.get("primary")),
                    writable=item.get("accessRole") in ("writer", "owner"),
                    time_zone=str(item.get("timeZone") or ""),
                )
            )
        return CalendarPage(tuple(calendars), str(body.get("nextPageToken") or ""))

    async def list_event_types(self, deadline: Deadline) -> tuple[EventType, ...]:
        return ()  # Google has no event types; ours live in our database.

    # Availability --------------------------------------------------------------------------

    async def busy(
        self, calendar_ids: tuple[str, ...], start: datetime, end: datetime, deadline: Deadline
    ) -> tuple[Interval, ...]:
        wanted = tuple(dict.fromkeys(c for c in calendar_ids if c))
        intervals: list[Interval] = []
        for first in range(0, len(wanted), _FREEBUSY_MAX_ITEMS):
            chunk = wanted[first : first + _FREEBUSY_MAX_ITEMS]
            intervals.extend(await self._freebusy(chunk, start, end, deadline))
        return tuple(intervals)

    async def _freebusy(
        self, calendar_ids: tuple[str, ...], start: datetime, end: datetime, deadline: Deadline
    ) -> list[Interval]:
        request = {
            "timeMin": _rfc3339(start),
            "timeMax": _rfc3339(end),
            "items": [{"id": c} for c in calendar_ids],
        }
        response = await self._request("POST", "/freeBusy", deadline, "freeBusy", body=request)
        calendars = self._json(response).get("calendars")
        if not isinstance(calendars, dict):
            raise ProviderUnavailable(PROVIDER, "answered free/busy without calendars")
        intervals = []
        for calendar_id in calendar_ids:
            entry = calendars.get(calendar_id)
            if not isinstance(entry, dict):
                raise ProviderUnavailable(PROVIDER, "left a calendar out of its free/busy answer")
            errors = entry.get("errors")
            if errors:
                # Inside a 200: an unreadable calendar is an error, never free time.
                reasons = sorted(
                    {str(e.get("reason", "")) for e in errors if isinstance(e, dict)} - {""}
                )
                raise ProviderUnavailable(
                    PROVIDER,
                    f"could not read a calendar's free/busy ({', '.join(reasons) or 'error'})",
                )
            for period in entry.get("busy") or ():
                try:
                    interval = Interval(_parse_time(period["start"]), _parse_time(period["end"]))
                except (KeyError, TypeError, ValueError) as error:
                    raise ProviderUnavailable(PROVIDER, "answered an unreadable period") from error
                if interval.end > interval.start:
                    intervals.append(interval)
        return intervals

    async def open_starts(
        self, event_type: EventType, start: datetime, end: datetime, deadline: Deadline
    ) -> tuple[datetime, ...]:
        raise NotImplementedError("Google Calendar is busy-based")

    # Events --------------------------------------------------------------------------------

    def _event_path(self, calendar_id: str, google_event_id: str = "") -> str:
        path = f"/calendars/{quote(calendar_id, safe='@')}/events"
        return f"{path}/{quote(google_event_id, safe='')}" if google_event_id else path

    @staticmethod
    def _send_updates(request: EventRequest) -> str:
        return "all" if request.invite_caller and request.caller.email else "none"

    def _event_body(self, request: EventRequest) -> dict[str, Any]:
        # Minimal on purpose: the calendar owner sees what and when, not the call's details.
        lines = [f"Booked by {request.event_type.title or 'the phone agent'} via Gleam."]
        if request.caller.name:
            lines.append(f"Caller: {request.caller.name}")
        body: dict[str, Any] = {
            "id": event_id(request.appointment_id),
            "summary": request.title,
            "description": "\n".join(lines),
            "start": {"dateTime": _rfc3339(request.start), "timeZone": request.time_zone},
            "end": {"dateTime": _rfc3339(request.end), "timeZone": request.time_zone},
            "extendedProperties": {"private": {_APPOINTMENT_KEY: request.appointment_id}},
        }
        if request.invite_caller and request.caller.email:
            attendee = {"email": request.caller.email}
            if request.caller.name:
                attendee["displayName"] = request.caller.name
            body["attendees"] = [attendee]
        return body

    async def _get_event(
        self, calendar_id: str, google_event_id: str, deadline: Deadline
    ) -> dict[str, Any] | None:
        """The event, or None when Google says it does not exist (or was deleted)."""
        response = await self._request(
            "GET",
            self._event_path(calendar_id, google_event_id),
            deadline,
            "events.get",
            ok=(200, 404, 410),
        )
        if response.status_code != 200:
            return None
        event = self._json(response)
        return None if event.get("status") == "cancelled" else event

    async def create_event(self, request: EventRequest, deadline: Deadline) -> EventRef:
        calendar_id = request.calendar_id or self._primary
        body = self._event_body(request)
        try:
            response = await self._insert(calendar_id, request, body, deadline)
        except ProviderUnavailable:
            # Unknown outcome (5xx, timeout): the event may exist. The same id makes a second
            # try safe: it creates the event or answers 409 and we read it back.
            if deadline.remaining() <= _RETRY_MARGIN:
                raise
            response = await self._insert(calendar_id, request, body, deadline)
        if response.status_code == 200:
            return EventRef(
                reference(calendar_id, str(self._json(response).get("id") or body["id"]))
            )
        # 409 duplicate: an earlier attempt whose answer we never saw made it. Read it back.
        existing = await self._get_event(calendar_id, body["id"], deadline)
        private = ((existing or {}).get("extendedProperties") or {}).get("private") or {}
        if existing is None or private.get(_APPOINTMENT_KEY) != request.appointment_id:
            raise FailedPrecondition(
                "Google already holds a different or deleted event with this appointment's id",
                reason="OPERATION_NOT_SUPPORTED",
                metadata={"provider": PROVIDER, "operation": "events.insert"},
            )
        return EventRef(reference(calendar_id, body["id"]))

    async def _insert(
        self, calendar_id: str, request: EventRequest, body: dict[str, Any], deadline: Deadline
    ) -> httpx.Response:
        return await self._request(
            "POST",
            self._event_path(calendar_id),
            deadline,
            "events.insert",
            params={"sendUpdates": self._send_updates(request)},
            body=body,
            ok=(200, 409),
        )

    async def find_event(self, appointment_id: str, deadline: Deadline) -> EventRef | None:
        """Looks on the primary calendar, then on every writable one (bounded).

        Only the appointment id is given, and the agent may book into any writable calendar,
        so a miss on the primary calendar alone must not be taken for "never created"."""
        google_event_id = event_id(appointment_id)
        checked = {self._primary}
        if await self._get_event(self._primary, google_event_id, deadline) is not None:
            return EventRef(reference(self._primary, google_event_id))
        token = ""
        for _ in range(_FIND_PAGES):
            page = await self.list_calendars(250, token, deadline)
            for calendar in page.calendars:
                if not calendar.writable or calendar.calendar_id in checked:
                    continue
                checked.add(calendar.calendar_id)
                if await self._get_event(calendar.calendar_id, google_event_id, deadline):
                    return EventRef(reference(calendar.calendar_id, google_event_id))
            token = page.next_page_token
            if not token:
                return None
        # Too many calendars to be sure: unknown, so the reconciler asks again later.
        raise ProviderUnavailable(PROVIDER, "has too many calendars to search for the event")

    async def move_event(
        self, ref: EventRef, request: EventRequest, deadline: Deadline
    ) -> EventRef:
        calendar_id, google_event_id = split_reference(
            ref.reference, request.calendar_id or self._primary
        )
        await self._request(
            "PATCH",
            self._event_path(calendar_id, google_event_id),
            deadline,
            "events.patch",
            params={"sendUpdates": self._send_updates(request)},
            body={
                "start": {"dateTime": _rfc3339(request.start), "timeZone": request.time_zone},
                "end": {"dateTime": _rfc3339(request.end), "timeZone": request.time_zone},
            },
        )
        return EventRef(reference(calendar_id, google_event_id))

    async def cancel_event(self, ref: EventRef, deadline: Deadline) -> None:
        calendar_id, google_event_id = split_reference(ref.reference, self._primary)
        await self._request(
            "DELETE",
            self._event_path(calendar_id, google_event_id),
            deadline,
            "events.delete",
            # Only attendees are notified, and the caller is one only when invites were on.
            params={"sendUpdates": "all"},
            ok=(200, 204, 404, 410),  # already gone counts as cancelled
        )

    # Pushes --------------------------------------------------------------------------------

    async def subscribe(
        self,
        callback_url: str,
        secret: str,
        deadline: Deadline,
        calendar_ids: tuple[str, ...] = (),
    ) -> Mapping[str, Any]:
        """A new ``web_hook`` channel on each calendar; the token is our secret. All or
        nothing: a failure stops the channels already opened and raises."""
        calendars = tuple(dict.fromkeys(calendar_ids)) or (self._primary,)
        channels: list[dict[str, Any]] = []
        try:
            for calendar_id in calendars:
                channels.append(await self._watch(calendar_id, callback_url, secret, deadline))
        except BaseException:
            await self.unsubscribe({GOOGLE_CHANNELS: channels}, Deadline.after(STOP_SECONDS))
            raise
        expirations = [c["expires_ms"] for c in channels if c["expires_ms"]]
        return {
            GOOGLE_CHANNELS: channels,
            # The first expiry decides when the set is renewed (0: unknown, renew soon).
            "google_channel_expires_ms": min(expirations) if expirations else 0,
            "google_watched": sorted(calendars),
        }

    async def _watch(
        self, calendar_id: str, callback_url: str, secret: str, deadline: Deadline
    ) -> dict[str, Any]:
        channel_id = channel_id_for(self._connection_id)
        response = await self._request(
            "POST",
            self._event_path(calendar_id) + "/watch",
            deadline,
            "events.watch",
            body={"id": channel_id, "type": "web_hook", "address": callback_url, "token": secret},
        )
        answer = self._json(response)
        resource_id = answer.get("resourceId")
        if not isinstance(resource_id, str) or not resource_id:
            raise ProviderUnavailable(PROVIDER, "opened a channel without a resource id")
        try:
            # Channel.expiration is an int64 in milliseconds, sent as a string.
            expires_ms = int(answer.get("expiration") or 0)
        except (TypeError, ValueError):
            expires_ms = 0
        return {
            "id": channel_id,
            "resource_id": resource_id,
            "calendar_id": calendar_id,
            "expires_ms": expires_ms,
        }

    async def unsubscribe(self, state: Mapping[str, Any], deadline: Deadline) -> None:
        for channel_id, resource_id in channel_pairs(state):
            await self._request(
                "POST",
                "/channels/stop",
                deadline,
                "channels.stop",
                body={"id": channel_id, "resourceId": resource_id},
                ok=(200, 204, 404),  # an unknown or expired channel is stopped already
            )


def channel_id_for(connection_id: str) -> str:
    """A new channel id that names its connection: ``<connection id>-<random>``. Google allows
    64 characters of [A-Za-z0-9-_+/=]; connection ids are 32 hex characters."""
    return f"{connection_id}-{uuid.uuid4().hex[:24]}"


def connection_of_channel(channel_id: str) -> str:
    return channel_id.rsplit("-", 1)[0]


def channel_pairs(state: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(channel id, resource id) of every channel a connection's state names."""
    pairs = []
    if state.get("google_channel_id") and state.get("google_resource_id"):
        # The one primary-calendar channel stored before channels were per calendar.
        pairs.append((str(state["google_channel_id"]), str(state["google_resource_id"])))
    for channel in state.get(GOOGLE_CHANNELS) or ():
        if isinstance(channel, dict) and channel.get("id") and channel.get("resource_id"):
            pairs.append((str(channel["id"]), str(channel["resource_id"])))
    return pairs


def google_provider(ctx: ProviderContext) -> GoogleCalendarProvider:
    return GoogleCalendarProvider(ctx)
