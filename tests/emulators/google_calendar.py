"""Google Calendar API v3, emulated: a stateful Starlette app checked against the discovery doc.

One user's calendar list and events live in memory. Access tokens must be ones the token
emulator issued and has not expired or revoked (401 authError otherwise), with a scope the
discovery document lists for the method (403 insufficientPermissions otherwise). freeBusy is
computed from the stored events (cancelled and transparent ones excluded); inserting an id that
exists answers 409 duplicate; deleting twice answers 410. Tests script failures: per-calendar
freeBusy ``errors``, rate limits (403 rateLimitExceeded, or 429 with Retry-After), 5xx, and
"commit, then lose the answer".

Push channels: ``events.watch`` opens a channel (HTTPS address required, id at most 64
characters, unique) that lives ``channel_ttl`` from ``now``; ``channels.stop`` closes it (404
for an unknown one). ``notify`` posts a notification with Google's ``X-Goog-*`` headers (the
channel's token echoed, a message number per channel) through ``push_client``.

``DiscoveryValidator`` checks every request (query parameters and body) and every response body
against the discovery document's schemas ($ref, types, formats, known property names, fields
the discovery marks required for the method, parameter enums). Violations are recorded and
answered 400; the fixture fails the test on any (``assert_clean``).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.google_token import GoogleTokenEmulator
from tests.emulators.openapi import SpecViolation, load_spec

DISCOVERY = "google-calendar-v3.discovery.json"
API_PATH = "/calendar/v3"
_EVENT_ID = re.compile(r"^[0-9a-v]{5,1024}$")


# Discovery validation ------------------------------------------------------------------------


class DiscoveryValidator:
    """Checks bodies and parameters against the Calendar discovery document."""

    def __init__(self) -> None:
        self.doc = load_spec(DISCOVERY)
        self.schemas: dict[str, Any] = self.doc["schemas"]

    def method(self, method_id: str) -> dict[str, Any]:
        resource, name = method_id.split(".")
        found: dict[str, Any] = self.doc["resources"][resource]["methods"][name]
        return found

    def check_params(
        self, method_id: str, query: Mapping[str, str], path: Mapping[str, str]
    ) -> None:
        spec = self.method(method_id)
        known = {**self.doc["parameters"], **spec.get("parameters", {})}
        values = {**query, **path}
        for name, param in known.items():
            if param.get("required") and not values.get(name):
                raise SpecViolation(f"{method_id}: required parameter {name} missing")
        for name, value in query.items():
            param = known.get(name)
            if param is None or param.get("location") == "path":
                raise SpecViolation(f"{method_id}: unknown query parameter {name!r}")
            if "enum" in param and value not in param["enum"]:
                raise SpecViolation(f"{method_id}: {name}={value!r} not in {param['enum']}")
            if param.get("type") == "integer" and not re.fullmatch(r"-?\d+", value):
                raise SpecViolation(f"{method_id}: {name}={value!r} is not an integer")
            if param.get("type") == "boolean" and value not in ("true", "false"):
                raise SpecViolation(f"{method_id}: {name}={value!r} is not a boolean")
            if "maximum" in param and int(value) > int(param["maximum"]):
                raise SpecViolation(f"{method_id}: {name}={value} above {param['maximum']}")

    def check_body(self, ref: str, body: Any, method_id: str = "") -> None:
        """``method_id`` set: a request body, where the method's required fields apply."""
        self._check({"$ref": ref}, body, ref, method_id)

    def _check(self, schema: Mapping[str, Any], value: Any, where: str, method_id: str) -> None:
        if "$ref" in schema:
            schema = self.schemas[schema["$ref"]]
        kind = schema.get("type")
        if kind == "any" or (kind is None and "properties" not in schema):
            return
        if kind == "object" or "properties" in schema:
            self._object(schema, value, where, method_id)
        elif kind == "array":
            if not isinstance(value, list):
                raise SpecViolation(f"{where}: expected an array, got {value!r}")
            for i, item in enumerate(value):
                self._check(schema["items"], item, f"{where}[{i}]", method_id)
        elif kind == "string":
            self._string(schema, value, where)
        elif kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                raise SpecViolation(f"{where}: expected an integer, got {value!r}")
        elif kind == "boolean" and not isinstance(value, bool):
            raise SpecViolation(f"{where}: expected a boolean, got {value!r}")

    def _object(self, schema: Mapping[str, Any], value: Any, where: str, method_id: str) -> None:
        if not isinstance(value, dict):
            raise SpecViolation(f"{where}: expected an object, got {value!r}")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            if name in properties:
                self._check(properties[name], item, f"{where}.{name}", method_id)
            elif extra is not None:
                self._check(extra, item, f"{where}.{name}", method_id)
            else:
                raise SpecViolation(f"{where}: unknown field {name!r}")
        if method_id:
            for name, prop in properties.items():
                needed = prop.get("annotations", {}).get("required", [])
                if f"calendar.{method_id}" in needed and name not in value:
                    raise SpecViolation(f"{where}: {name} is required by {method_id}")

    @staticmethod
    def _string(schema: Mapping[str, Any], value: Any, where: str) -> None:
        if not isinstance(value, str):
            raise SpecViolation(f"{where}: expected a string, got {value!r}")
        fmt = schema.get("format")
        try:
            if fmt == "date-time":
                if datetime.fromisoformat(value).tzinfo is None:
                    raise ValueError("no offset")
            elif fmt == "date":
                date.fromisoformat(value)
            elif fmt == "int64":
                int(value)
        except ValueError as error:
            raise SpecViolation(f"{where}: {value!r} is not a valid {fmt}") from error


def check_error_envelope(body: Any) -> None:
    """Google's JSON error shape (not in the discovery schemas, documented separately)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), int):
        raise SpecViolation(f"error answer without error.code: {body!r}")
    for item in error.get("errors", []):
        if not {"domain", "reason", "message"} <= set(item):
            raise SpecViolation(f"error item missing domain/reason/message: {item!r}")


# The emulator --------------------------------------------------------------------------------


@dataclass
class CalendarEntry:
    id: str
    summary: str
    access_role: str = "owner"
    primary: bool = False
    time_zone: str = "America/New_York"

    def resource(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "kind": "calendar#calendarListEntry",
            "etag": f'"{abs(hash(self.id))}"',
            "id": self.id,
            "summary": self.summary,
            "timeZone": self.time_zone,
            "accessRole": self.access_role,
            "selected": True,
            "defaultReminders": [],
            "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
        }
        if self.primary:
            entry["primary"] = True
        return entry


@dataclass
class Scripted:
    """One scripted answer for the next request to ``method_id``."""

    method_id: str
    status: int
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    # Apply the request first, then answer with the failure (an answer lost on the way back).
    after_commit: bool = False


_ROLE_RANK = {"freeBusyReader": 0, "reader": 1, "writer": 2, "owner": 3}


class GoogleCalendarEmulator:
    def __init__(self, tokens: GoogleTokenEmulator, user: str = "owner@example.com") -> None:
        self.tokens = tokens
        self.user = user
        self.validator = DiscoveryValidator()
        self.calendars: dict[str, CalendarEntry] = {
            user: CalendarEntry(user, user, "owner", primary=True)
        }
        self.events: dict[str, dict[str, dict[str, Any]]] = {user: {}}
        self.script: list[Scripted] = []
        self.freebusy_errors: dict[str, str] = {}
        self.violations: list[str] = []
        self.calls: list[tuple[str, dict[str, str], Any]] = []  # (method id, query, body)
        # Open push channels by id; channel expirations are counted from ``now``.
        self.channels: dict[str, dict[str, Any]] = {}
        self.channel_ttl = timedelta(days=7)
        self.now = datetime.now(UTC)
        self.push_client: httpx.AsyncClient | None = None
        self._message_numbers: dict[str, int] = {}

    # Test-side helpers -------------------------------------------------------------------

    def add_calendar(self, calendar_id: str, summary: str, access_role: str = "owner") -> None:
        self.calendars[calendar_id] = CalendarEntry(calendar_id, summary, access_role)
        self.events[calendar_id] = {}

    def add_event(self, calendar_id: str, start: datetime, end: datetime, summary: str) -> str:
        """An event someone made in Google directly."""
        event_id = secrets.token_hex(8)
        self.events[calendar_id][event_id] = self._event(
            calendar_id,
            {
                "id": event_id,
                "summary": summary,
                "start": {"dateTime": start.isoformat()},
                "end": {"dateTime": end.isoformat()},
            },
        )
        return event_id

    def fail_next(self, method_id: str, status: int, reason: str = "", **kw: Any) -> None:
        self.script.append(Scripted(method_id, status, reason, **kw))

    def live_events(self, calendar_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events[calendar_id].values() if e["status"] != "cancelled"]

    def count(self, method_id: str) -> int:
        return sum(1 for m, _, _ in self.calls if m == method_id)

    def query_of(self, method_id: str) -> list[dict[str, str]]:
        return [q for m, q, _ in self.calls if m == method_id]

    def assert_clean(self) -> None:
        assert not self.violations, self.violations

    # Plumbing ----------------------------------------------------------------------------

    def app(self) -> Starlette:
        p = API_PATH
        return Starlette(
            routes=[
                Route(p + "/users/me/calendarList", self.calendar_list, methods=["GET"]),
                Route(p + "/users/me/calendarList/{calendarId}", self.calendar_get),
                Route(p + "/freeBusy", self.freebusy, methods=["POST"]),
                Route(p + "/calendars/{calendarId}/events", self.insert, methods=["POST"]),
                Route(p + "/calendars/{calendarId}/events/watch", self.watch, methods=["POST"]),
                Route(p + "/channels/stop", self.stop, methods=["POST"]),
                Route(
                    p + "/calendars/{calendarId}/events/{eventId}",
                    self.event,
                    methods=["GET", "PATCH", "DELETE"],
                ),
            ]
        )

    @staticmethod
    def _error(status: int, reason: str, message: str, **headers: str) -> JSONResponse:
        body = {
            "error": {
                "errors": [{"domain": "global", "reason": reason, "message": message}],
                "code": status,
                "message": message,
            }
        }
        check_error_envelope(body)
        return JSONResponse(body, status, headers=headers)

    def _violation(self, error: SpecViolation) -> JSONResponse:
        self.violations.append(str(error))
        return self._error(400, "invalid", f"spec violation: {error}")

    def _ok(self, ref: str, body: dict[str, Any]) -> JSONResponse:
        try:
            self.validator.check_body(ref, body)
        except SpecViolation as error:
            return self._violation(error)
        return JSONResponse(body)

    async def _enter(
        self, request: Request, method_id: str, body_ref: str = ""
    ) -> tuple[Any, Response | None, Scripted | None]:
        """Auth, scopes, validation and scripted failures shared by every method."""
        query = dict(request.query_params)
        body: Any = None
        try:
            self.validator.check_params(method_id, query, dict(request.path_params))
            if body_ref:
                body = json.loads(await request.body())
                self.validator.check_body(body_ref, body, method_id)
        except SpecViolation as error:
            return None, self._violation(error), None
        except ValueError:
            return None, self._error(400, "parseError", "This API does not support parsing"), None
        self.calls.append((method_id, query, body))
        auth = request.headers.get("authorization", "")
        grant = self.tokens.check_access(auth.removeprefix("Bearer "))
        if not auth.startswith("Bearer ") or grant is None:
            return None, self._error(401, "authError", "Invalid Credentials"), None
        if not set(grant.scopes) & set(self.validator.method(method_id)["scopes"]):
            return (
                None,
                self._error(403, "insufficientPermissions", "Insufficient Permission"),
                None,
            )
        for i, scripted in enumerate(self.script):
            if scripted.method_id == method_id:
                del self.script[i]
                if scripted.after_commit:
                    return body, None, scripted
                return None, self._scripted(scripted), None
        return body, None, None

    def _scripted(self, scripted: Scripted) -> JSONResponse:
        reason = scripted.reason or ("backendError" if scripted.status >= 500 else "error")
        return self._error(scripted.status, reason, f"scripted {reason}", **scripted.headers)

    def _calendar(self, calendar_id: str) -> CalendarEntry | None:
        if calendar_id == "primary":
            calendar_id = self.user
        return self.calendars.get(calendar_id)

    # calendarList ------------------------------------------------------------------------

    async def calendar_list(self, request: Request) -> Response:
        _, failed, _ = await self._enter(request, "calendarList.list")
        if failed is not None:
            return failed
        q = request.query_params
        floor = _ROLE_RANK[q.get("minAccessRole", "freeBusyReader")]
        entries = [c for c in self.calendars.values() if _ROLE_RANK[c.access_role] >= floor]
        size = min(int(q.get("maxResults", "100")), 250)
        offset = int(q.get("pageToken", "0") or 0)
        page = entries[offset : offset + size]
        body: dict[str, Any] = {
            "kind": "calendar#calendarList",
            "etag": '"list"',
            "items": [c.resource() for c in page],
        }
        if offset + size < len(entries):
            body["nextPageToken"] = str(offset + size)
        else:
            body["nextSyncToken"] = "sync-" + secrets.token_hex(4)
        return self._ok("CalendarList", body)

    async def calendar_get(self, request: Request) -> Response:
        _, failed, _ = await self._enter(request, "calendarList.get")
        if failed is not None:
            return failed
        entry = self._calendar(request.path_params["calendarId"])
        if entry is None:
            return self._error(404, "notFound", "Not Found")
        return self._ok("CalendarListEntry", entry.resource())

    # freeBusy ----------------------------------------------------------------------------

    async def freebusy(self, request: Request) -> Response:
        body, failed, _ = await self._enter(request, "freebusy.query", "FreeBusyRequest")
        if failed is not None:
            return failed
        lo, hi = _when(body["timeMin"]), _when(body["timeMax"])
        if hi <= lo:
            return self._error(400, "timeRangeEmpty", "The specified time range is empty.")
        calendars: dict[str, Any] = {}
        for item in body.get("items", []):
            calendar_id = item["id"]
            entry = self._calendar(calendar_id)
            if calendar_id in self.freebusy_errors or entry is None:
                reason = self.freebusy_errors.get(calendar_id, "notFound")
                calendars[calendar_id] = {
                    "errors": [{"domain": "global", "reason": reason}],
                    "busy": [],
                }
                continue
            busy = []
            for event in self.events[entry.id].values():
                if event["status"] == "cancelled" or event.get("transparency") == "transparent":
                    continue
                start, end = _when(event["start"]["dateTime"]), _when(event["end"]["dateTime"])
                if start < hi and end > lo:
                    busy.append({"start": _z(start), "end": _z(end)})
            calendars[calendar_id] = {"busy": sorted(busy, key=lambda b: b["start"])}
        answer = {
            "kind": "calendar#freeBusy",
            "timeMin": body["timeMin"],
            "timeMax": body["timeMax"],
            "calendars": calendars,
        }
        return self._ok("FreeBusyResponse", answer)

    # events ------------------------------------------------------------------------------

    def _event(self, calendar_id: str, body: dict[str, Any]) -> dict[str, Any]:
        now = _z(datetime.now(UTC))
        event = {
            "kind": "calendar#event",
            "etag": f'"{secrets.token_hex(6)}"',
            "status": "confirmed",
            "htmlLink": f"https://calendar.example/event?eid={body['id']}",
            "created": now,
            "updated": now,
            "creator": {"email": self.user},
            "organizer": {"email": calendar_id, "self": True},
            "iCalUID": f"{body['id']}@google.com",
            "sequence": 0,
            "reminders": {"useDefault": True},
            "eventType": "default",
            **body,
        }
        if "attendees" in event:
            event["attendees"] = [
                {**a, "responseStatus": "needsAction"} for a in event["attendees"]
            ]
        return event

    async def insert(self, request: Request) -> Response:
        body, failed, scripted = await self._enter(request, "events.insert", "Event")
        if failed is not None:
            return failed
        entry = self._calendar(request.path_params["calendarId"])
        if entry is None:
            return self._error(404, "notFound", "Not Found")
        if _ROLE_RANK[entry.access_role] < _ROLE_RANK["writer"]:
            return self._error(403, "requiredAccessLevel", "You need to have writer access")
        event_id = body.get("id") or secrets.token_hex(10)
        if not _EVENT_ID.match(event_id):
            return self._error(400, "invalid", "Invalid resource id value.")
        if event_id in self.events[entry.id]:
            return self._error(409, "duplicate", "The requested identifier already exists.")
        event = self._event(entry.id, {**body, "id": event_id})
        self.events[entry.id][event_id] = event
        if scripted is not None:
            return self._scripted(scripted)
        return self._ok("Event", event)

    async def event(self, request: Request) -> Response:
        method_id = {"GET": "events.get", "PATCH": "events.patch", "DELETE": "events.delete"}[
            request.method
        ]
        body, failed, scripted = await self._enter(
            request, method_id, "Event" if request.method == "PATCH" else ""
        )
        if failed is not None:
            return failed
        entry = self._calendar(request.path_params["calendarId"])
        event = self.events[entry.id].get(request.path_params["eventId"]) if entry else None
        if event is None:
            return self._error(404, "notFound", "Not Found")
        if request.method == "GET":
            return self._ok("Event", event)
        if event["status"] == "cancelled":
            return self._error(410, "deleted", "Resource has been deleted")
        if request.method == "DELETE":
            event["status"] = "cancelled"
            return Response(status_code=204)
        event.update(body)
        event["sequence"] += 1
        event["updated"] = _z(datetime.now(UTC))
        if scripted is not None:
            return self._scripted(scripted)
        return self._ok("Event", event)

    # Push channels -------------------------------------------------------------------------

    async def watch(self, request: Request) -> Response:
        body, failed, _ = await self._enter(request, "events.watch", "Channel")
        if failed is not None:
            return failed
        entry = self._calendar(request.path_params["calendarId"])
        if entry is None:
            return self._error(404, "notFound", "Not Found")
        channel_id, address = body.get("id", ""), body.get("address", "")
        if (
            not channel_id
            or len(channel_id) > 64
            or body.get("type") not in ("web_hook", "webhook")
        ):
            return self._error(400, "invalid", "Invalid channel id or type.")
        if not address.startswith("https://"):
            return self._error(400, "push.webhookUrlNotHttps", "WebHook callback must be HTTPS")
        if channel_id in self.channels:
            return self._error(400, "channelIdNotUnique", "Channel id not unique.")
        expires = int((self.now + self.channel_ttl).timestamp() * 1000)
        channel = {
            "kind": "api#channel",
            "id": channel_id,
            "resourceId": "res-" + secrets.token_hex(6),
            "resourceUri": f"{API_PATH}/calendars/{entry.id}/events?alt=json",
            "expiration": str(expires),
        }
        self.channels[channel_id] = {
            **channel,
            "calendar": entry.id,
            "address": address,
            "token": body.get("token", ""),
        }
        return self._ok("Channel", channel)

    async def stop(self, request: Request) -> Response:
        body, failed, _ = await self._enter(request, "channels.stop", "Channel")
        if failed is not None:
            return failed
        channel = self.channels.get(body.get("id", ""))
        if channel is None or channel["resourceId"] != body.get("resourceId"):
            return self._error(404, "notFound", "Channel not found")
        del self.channels[channel["id"]]
        return Response(status_code=204)

    async def notify(self, calendar_id: str, state: str = "exists") -> list[httpx.Response]:
        """What Google sends each open channel on ``calendar_id`` when it changes (``sync``
        is the first message of a new channel): headers only, no body."""
        assert self.push_client is not None, "set push_client to deliver notifications"
        answers = []
        for channel in list(self.channels.values()):
            if channel["calendar"] != calendar_id:
                continue
            number = self._message_numbers.get(channel["id"], 0) + 1
            self._message_numbers[channel["id"]] = number
            headers = {
                "x-goog-channel-id": channel["id"],
                "x-goog-channel-expiration": channel["expiration"],
                "x-goog-resource-id": channel["resourceId"],
                "x-goog-resource-uri": channel["resourceUri"],
                "x-goog-resource-state": state,
                "x-goog-message-number": str(number),
            }
            if channel["token"]:
                headers["x-goog-channel-token"] = channel["token"]
            answers.append(await self.push_client.post(channel["address"], headers=headers))
        return answers


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def google_client(
    token_url: str,
    api_url: str,
    tokens: GoogleTokenEmulator,
    calendar: GoogleCalendarEmulator,
) -> httpx.AsyncClient:
    """One client whose Google hosts reach the emulators; any other host fails loudly."""

    def elsewhere(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"test tried to reach {request.url.host}", request=request)

    def mount(url: str) -> str:
        parts = urlsplit(url)
        return f"all://{parts.netloc}"

    return httpx.AsyncClient(
        transport=httpx.MockTransport(elsewhere),
        mounts={
            mount(token_url): httpx.ASGITransport(app=tokens.app()),
            mount(api_url): httpx.ASGITransport(app=calendar.app()),
        },
    )
