"""A stateful Calendly API v2 emulator (Starlette, served to httpx through ASGITransport).

It keeps one user with event types, a weekly availability in the user's zone that bookings
consume, scheduled events with their invitees, and tokens the test can revoke. It behaves like
the real API where the adapter depends on it: keyset pagination (``count``, ``page_token``,
``pagination.next_page``), available times only in the future (against the emulator's ``now``,
which the test sets) and for at most 31 days per call, 429 with ``X-RateLimit-*`` headers when
scripted, cancellations that fail when scripted. Every exchange is checked against the official
OpenAPI file, except ``POST /invitees`` (newer than that file), which is checked against
``INVITEE_REQUEST_SCHEMA`` written from NOTES.md; its response is checked against the file's
``Invitee`` schema.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
import jsonschema
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.openapi import SpecValidator, SpecViolation

BASE = "https://api.calendly.test"
MAX_WINDOW = timedelta(days=31)
# The invitee tracking fields, as accepted by POST /invitees and echoed on the Invitee resource.
TRACKING_KEYS = (
    "utm_campaign",
    "utm_source",
    "utm_medium",
    "utm_content",
    "utm_term",
    "salesforce_uuid",
)

# POST /invitees request, from NOTES.md section 3 (Scheduling API, "Create Event Invitee").
INVITEE_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event_type", "start_time", "invitee"],
    "properties": {
        "event_type": {"type": "string", "pattern": "^https?://"},
        "start_time": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"},
        "invitee": {
            "type": "object",
            "required": ["email", "timezone"],
            "anyOf": [{"required": ["name"]}, {"required": ["first_name"]}],
            "properties": {
                "email": {"type": "string", "pattern": "^[^@\\s]+@[^@\\s]+$"},
                "timezone": {"type": "string", "minLength": 1},
                "name": {"type": "string", "minLength": 1},
                "first_name": {"type": "string"},
                "last_name": {"type": "string"},
                "text_reminder_number": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "location": {
            "type": "object",
            "required": ["kind"],
            "properties": {"kind": {"type": "string"}, "location": {"type": "string"}},
        },
        "questions_and_answers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["question", "answer", "position"],
            },
        },
        "event_guests": {"type": "array", "items": {"type": "string"}},
        "tracking": {
            "type": "object",
            "properties": {k: {"type": "string"} for k in TRACKING_KEYS},
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}


def fmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _uid() -> str:
    return uuid.uuid4().hex[:16].upper()


@dataclass
class EmulatedEventType:
    uuid: str
    name: str
    duration: int
    active: bool = True
    deleted: bool = False

    @property
    def uri(self) -> str:
        return f"{BASE}/event_types/{self.uuid}"


@dataclass
class Invitee:
    uuid: str
    body: dict[str, Any]
    created_at: datetime


@dataclass
class ScheduledEvent:
    uuid: str
    event_type: EmulatedEventType
    start: datetime
    end: datetime
    created_at: datetime
    invitees: list[Invitee] = field(default_factory=list)
    status: str = "active"
    cancel_reason: str = ""

    @property
    def uri(self) -> str:
        return f"{BASE}/scheduled_events/{self.uuid}"


@dataclass
class Logged:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0


@dataclass
class CalendlyEmulator:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    time_zone: str = "America/New_York"
    # Open 08:00-18:00 local, Monday to Friday (wider than the agents' 9-17 on purpose).
    open_from: time = time(8, 0)
    open_until: time = time(18, 0)
    tokens: set[str] = field(default_factory=lambda: {"pat-good"})
    revoked: set[str] = field(default_factory=set)
    event_types: list[EmulatedEventType] = field(default_factory=list)
    events: dict[str, ScheduledEvent] = field(default_factory=dict)
    log: list[Logged] = field(default_factory=list)
    # Scripted failures.
    cancel_failures: int = 0
    rate_limited: dict[str, int] = field(default_factory=dict)  # path -> reset seconds
    fail_after_booking: int = 0
    user_uuid: str = field(default_factory=_uid)
    org_uuid: str = field(default_factory=_uid)
    # Webhook subscriptions by uuid, with the signing key they were created with.
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Where ``push`` delivers (a test points it at the service's HTTP app).
    push_client: httpx.AsyncClient | None = None

    def __post_init__(self) -> None:
        self.spec = SpecValidator("calendly-v2.openapi.yaml")
        if not self.event_types:
            self.event_types = [
                EmulatedEventType(_uid(), "Consultation", 60),
                EmulatedEventType(_uid(), "Quick call", 15),
                EmulatedEventType(_uid(), "Old offer", 30, active=False),
            ]

    # Test controls ------------------------------------------------------------------------

    @property
    def user_uri(self) -> str:
        return f"{BASE}/users/{self.user_uuid}"

    @property
    def org_uri(self) -> str:
        return f"{BASE}/organizations/{self.org_uuid}"

    def revoke(self, token: str) -> None:
        self.revoked.add(token)

    def rate_limit(self, path: str, reset_seconds: int) -> None:
        """The next request to ``path`` answers 429 with these X-RateLimit headers."""
        self.rate_limited[path] = reset_seconds

    def calls(self, method: str, path: str) -> list[Logged]:
        return [c for c in self.log if c.method == method and c.path == path]

    def active_events(self) -> list[ScheduledEvent]:
        return [e for e in self.events.values() if e.status == "active"]

    def app(self) -> Starlette:
        routes = [
            Route("/users/me", self.me),
            Route("/event_types", self.list_event_types),
            Route("/event_type_available_times", self.available_times),
            Route("/invitees", self.create_invitee, methods=["POST"]),
            Route("/scheduled_events", self.list_events),
            Route("/scheduled_events/{uuid}", self.get_event),
            Route("/scheduled_events/{uuid}/invitees", self.list_invitees),
            Route("/scheduled_events/{uuid}/cancellation", self.cancel, methods=["POST"]),
            Route("/webhook_subscriptions", self.create_webhook, methods=["POST"]),
            Route("/webhook_subscriptions/{uuid}", self.delete_webhook, methods=["DELETE"]),
        ]
        return Starlette(routes=routes)

    # Plumbing -----------------------------------------------------------------------------

    async def _begin(self, request: Request) -> tuple[Logged, JSONResponse | None]:
        raw = await request.body()
        body = json.loads(raw) if raw else None
        query = dict(request.query_params)
        entry = Logged(request.method, request.url.path, query, body)
        self.log.append(entry)
        if request.url.path == "/invitees":
            try:
                jsonschema.validate(body, INVITEE_REQUEST_SCHEMA)
            except jsonschema.ValidationError as error:
                raise SpecViolation(f"POST /invitees request body: {error.message}") from error
        else:
            self.spec.check_request(
                request.method, request.url.path, query=query, headers=request.headers, body=body
            )
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        if not auth.startswith("Bearer ") or token not in self.tokens or token in self.revoked:
            return entry, self._error(entry, 401, "Unauthenticated", "The access token is invalid")
        reset = self.rate_limited.pop(request.url.path, None)
        if reset is not None:
            response = self._error(
                entry, 429, "Too Many Requests", "You have exceeded the rate limit"
            )
            response.headers.update(
                {
                    "X-RateLimit-Limit": "10",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(reset),
                }
            )
            return entry, response
        return entry, None

    def _error(
        self,
        entry: Logged,
        status: int,
        title: str,
        message: str,
        details: list[dict[str, str]] | None = None,
    ) -> JSONResponse:
        body: dict[str, Any] = {"title": title, "message": message}
        if details:
            body["details"] = details
        return self._respond(entry, status, body)

    def _respond(self, entry: Logged, status: int, body: Any) -> JSONResponse:
        entry.status = status
        if entry.path == "/invitees":
            if status == 201:
                schema = {
                    "type": "object",
                    "properties": {"resource": {"$ref": "#/components/schemas/Invitee"}},
                    "required": ["resource"],
                }
                self.spec._validate(body, schema, "POST /invitees response 201")
        else:
            # Error statuses too: the spec documents 400/401/403/404/500 bodies (not 429).
            self.spec.check_response(entry.method, entry.path, status, body)
        if status == 204:
            return Response(status_code=204)  # type: ignore[return-value]
        return JSONResponse(body, status)

    def _page(
        self, entry: Logged, items: list[dict[str, Any]], path: str, extra: dict[str, str]
    ) -> JSONResponse:
        count = int(float(entry.query.get("count", "20")))
        if not 1 <= count <= 100:
            return self._error(
                entry,
                400,
                "Invalid Argument",
                "The supplied parameters are invalid.",
                [{"parameter": "count", "message": "must be between 1 and 100"}],
            )
        offset = int(entry.query.get("page_token", "0") or 0)
        chunk = items[offset : offset + count]
        more = offset + count < len(items)

        def link(token: int) -> str:
            return f"{BASE}{path}?" + urlencode({**extra, "count": count, "page_token": token})

        pagination = {
            "count": len(chunk),
            "next_page": link(offset + count) if more else None,
            "previous_page": link(max(0, offset - count)) if offset else None,
            "next_page_token": str(offset + count) if more else None,
            "previous_page_token": str(max(0, offset - count)) if offset else None,
        }
        return self._respond(entry, 200, {"collection": chunk, "pagination": pagination})

    # Resources ----------------------------------------------------------------------------

    def _user(self) -> dict[str, Any]:
        return {
            "uri": self.user_uri,
            "name": "Dr. Ada Smile",
            "slug": "ada-smile",
            "email": "ada@acme-dental.example",
            "scheduling_url": "https://calendly.com/ada-smile",
            "timezone": self.time_zone,
            "avatar_url": "https://example.com/ada.png",
            "created_at": "2024-01-02T03:04:05.678123Z",
            "updated_at": "2024-01-02T03:04:05.678123Z",
            "current_organization": self.org_uri,
        }

    def _event_type(self, et: EmulatedEventType) -> dict[str, Any]:
        slug = et.name.lower().replace(" ", "-")
        return {
            "uri": et.uri,
            "name": et.name,
            "active": et.active,
            "booking_method": "instant",
            "slug": slug,
            "scheduling_url": f"https://calendly.com/ada-smile/{slug}",
            "duration": et.duration,
            "kind": "solo",
            "pooling_type": None,
            "type": "StandardEventType",
            "color": "#fff200",
            "created_at": "2024-01-02T03:04:05.678123Z",
            "updated_at": "2024-01-02T03:04:05.678123Z",
            "internal_note": None,
            "description_plain": et.name,
            "description_html": f"<p>{et.name}</p>",
            "profile": {"type": "User", "name": "Dr. Ada Smile", "owner": self.user_uri},
            "secret": False,
            "deleted_at": "2025-01-01T00:00:00.000000Z" if et.deleted else None,
            "admin_managed": False,
            "custom_questions": [],
            "kind_description": "One-on-One",
        }

    def _event(self, ev: ScheduledEvent) -> dict[str, Any]:
        active = sum(1 for i in ev.invitees if ev.status == "active")
        body: dict[str, Any] = {
            "uri": ev.uri,
            "name": ev.event_type.name,
            "status": ev.status,
            "start_time": fmt(ev.start),
            "end_time": fmt(ev.end),
            "event_type": ev.event_type.uri,
            "location": {"type": "outbound_call", "location": None},
            "invitees_counter": {"total": len(ev.invitees), "active": active, "limit": 1},
            "created_at": fmt(ev.created_at),
            "updated_at": fmt(ev.created_at),
            "event_memberships": [{"user": self.user_uri}],
            "event_guests": [],
            "calendar_event": None,
        }
        if ev.status == "canceled":
            body["cancellation"] = {
                "canceled_by": "Dr. Ada Smile",
                "reason": ev.cancel_reason,
                "canceler_type": "host",
            }
        return body

    def _invitee(self, ev: ScheduledEvent, inv: Invitee) -> dict[str, Any]:
        who = inv.body["invitee"]
        tracking = inv.body.get("tracking") or {}
        return {
            "uri": f"{ev.uri}/invitees/{inv.uuid}",
            "email": who["email"],
            "first_name": who.get("first_name"),
            "last_name": who.get("last_name"),
            "name": who.get("name") or who.get("first_name", ""),
            "status": "active" if ev.status == "active" else "canceled",
            "questions_and_answers": inv.body.get("questions_and_answers", []),
            "timezone": who["timezone"],
            "event": ev.uri,
            "created_at": fmt(inv.created_at),
            "updated_at": fmt(inv.created_at),
            "tracking": {k: tracking.get(k) for k in TRACKING_KEYS},
            "text_reminder_number": who.get("text_reminder_number"),
            "rescheduled": False,
            "old_invitee": None,
            "new_invitee": None,
            "cancel_url": f"https://calendly.com/cancellations/{inv.uuid}",
            "reschedule_url": f"https://calendly.com/reschedulings/{inv.uuid}",
            "routing_form_submission": None,
            "payment": None,
            "no_show": None,
            "reconfirmation": None,
        }

    # Availability -------------------------------------------------------------------------

    def _free(self, et: EmulatedEventType, start: datetime) -> bool:
        end = start + timedelta(minutes=et.duration)
        return not any(e.start < end and e.end > start for e in self.active_events())

    def _open_starts(self, et: EmulatedEventType, start: datetime, end: datetime) -> list[datetime]:
        tz = ZoneInfo(self.time_zone)
        day = start.astimezone(tz).date()
        out = []
        while datetime.combine(day, time(0), tzinfo=tz) < end:
            if day.weekday() < 5:
                slot = datetime.combine(day, self.open_from, tzinfo=tz)
                close = datetime.combine(day, self.open_until, tzinfo=tz)
                step = timedelta(minutes=et.duration)
                while slot + step <= close:
                    moment = slot.astimezone(UTC)
                    if start <= moment < end and moment > self.now and self._free(et, moment):
                        out.append(moment)
                    slot += step
            day += timedelta(days=1)
        return out

    def _find_type(self, uri: str) -> EmulatedEventType | None:
        return next((e for e in self.event_types if e.uri == uri and not e.deleted), None)

    # Handlers -----------------------------------------------------------------------------

    async def me(self, request: Request) -> Response:
        entry, refused = await self._begin(request)
        if refused:
            return refused
        return self._respond(entry, 200, {"resource": self._user()})

    async def list_event_types(self, request: Request) -> Response:
        entry, refused = await self._begin(request)
        if refused:
            return refused
        q = entry.query
        if q.get("user") != self.user_uri and q.get("organization") != self.org_uri:
            return self._error(
                entry,
                400,
                "Invalid Argument",
                "The supplied parameters are invalid.",
                [{"parameter": "user", "message": "is required (or organization)"}],
            )
        items = [self._event_type(et) for et in self.event_types]
        extra = {k: v for k, v in q.items() if k in ("user", "organization")}
        return self._page(entry, items, "/event_types", extra)

    async def available_times(self, request: Request) -> Response:
        entry, refused = await self._begin(request)
        if refused:
            return refused
        q = entry.query

        def invalid(parameter: str, message: str) -> JSONResponse:
            return self._error(
                entry,
                400,
                "Invalid Argument",
                "The supplied parameters are invalid.",
                [{"parameter": parameter, "message": message}],
            )

        et = self._find_type(q.get("event_type", ""))
        if et is None:
            return invalid("event_type", "not found")
        try:
            start, end = parse(q["start_time"]), parse(q["end_time"])
        except (KeyError, ValueError):
            return invalid("start_time", "start_time and end_time are required UTC times")
        if start <= self.now:
            return invalid("start_time", "must be in the future")
        if end <= start:
            return invalid("end_time", "must be after start_time")
        if end - start > MAX_WINDOW:
            return invalid("end_time", "date range can be no greater than 31 days")
        collection = [
            {
                "status": "available",
                "invitees_remaining": 1,
                "start_time": fmt(moment),
                "scheduling_url": f"https://calendly.com/ada-smile/x/{fmt(moment)}",
            }
            for moment in self._open_starts(et, start, end)
        ]
        return self._respond(entry, 200, {"collection": collection})

    async def create_invitee(self, request: Request) -> Response:
        entry, refused = await self._begin(request)
        if refused:
            return refused
        body = entry.body
        et = self._find_type(body["event_type"])
        if et is None or not et.active:
            return self._error(
                entry,
                404,
                "Resource Not Found",
                "The server could not find the requested resource.",
            )
        start = parse(body["start_time"])
        if start not in self._open_starts(et, start, start + timedelta(minutes=1)):
            return self._error(
                entry,
                400,
                "Invalid Argument",
                "The selected time is no longer available.",
                [{"parameter": "start_time", "message": "is not available"}],
            )
        event = ScheduledEvent(
            _uid(), et, start, start + timedelta(minutes=et.duration), created_at=self.now
        )
        invitee = Invitee(_uid(), body, self.now)
        event.invitees.append(invitee)
        self.events[event.uuid] = event
        if self.fail_after_booking:
            # The booking happened, but the answer is lost: an unknown outcome for the client.
            self.fail_after_booking -= 1
            return self._error(
                entry,
                500,
                "Internal Server Error",
                "The server encountered an unexpected condition that prevented it from "
                "fulfilling the request.",
            )
        return self._respond(entry, 201, {"resource": self._invitee(event, invitee)})

    async def list_events(self, request: Request) -> Response:
        entry, refused = await self._begin(request)
        if refused:
            return refused
        q = entry.query
        if q.get("user") != self.user_uri:
            return self._error(entry, 403, "Permission Denied", "You do not have permission")
        events = sorted(self.events.values(), key=lambda e: e.start)
        if "status" in q:
            events = [e for e in events if e.status == q["status"]]
        if "min_start_time" in q:
            events = [e for e in events if e.start >= parse(q["min_start_time"])]
        if "max_start_time" in q:
            events = [e for e in events if e.start < parse(q["max_start_time"])]
        if "invitee_email" in q:
            events = [
                e
                for e in events
                if any(i.body["invitee"]["email"] == q["invitee_email"] for i in e.invitees)
            ]
        extra = {k: v for k, v in q.items() if k not in ("count", "page_token")}
        return self._page(entry, [self._event(e) for e in events], "/scheduled_events", extra)

    def _lookup(self, entry: Logged, uid: str) -> ScheduledEvent | JSONResponse:
        event = self.events.get(uid)
        if event is None:
            return self._error(
                entry,
                404,
                "Resource Not Found",
                "The server could not find the requested resource.",
            )
        return event

    async def get_event(self, request: Request) -> Response:
        entry, refused = await self._begin(request)
        if refused:
            return refused
        found = self._lookup(entry, request.path_params["uuid"])
        if isinstance(found, JSONResponse):
            return found
        return self._respond(entry, 200, {"resource": self._event(found)})

    async def list_invitees(self, request: Request) -> Response:
        entry, refused = await self._begin(request)
        if refused:
            return refused
        found = self._lookup(entry, request.path_params["uuid"])
        if isinstance(found, JSONResponse):
            return found
        items = [self._invitee(found, i) for i in found.invitees]
        return self._page(entry, items, entry.path, {})

    async def cancel(self, request: Request) -> Response:
        entry, refused = await self._begin(request)
        if refused:
            return refused
        found = self._lookup(entry, request.path_params["uuid"])
        if isinstance(found, JSONResponse):
            return found
        if self.cancel_failures:
            self.cancel_failures -= 1
            return self._error(
                entry,
                500,
                "Internal Server Error",
                "The server encountered an unexpected condition that prevented it from "
                "fulfilling the request.",
            )
        if found.status == "canceled":
            return self._error(entry, 403, "Permission Denied", "Event is already canceled")
        found.status = "canceled"
        found.cancel_reason = (entry.body or {}).get("reason", "")
        return self._respond(
            entry,
            201,
            {
                "resource": {
                    "canceled_by": "Dr. Ada Smile",
                    "reason": found.cancel_reason,
                    "canceler_type": "host",
                }
            },
        )

    # Webhook subscriptions ----------------------------------------------------------------

    def _subscription(self, uid: str, hook: dict[str, Any]) -> dict[str, Any]:
        return {
            "uri": f"{BASE}/webhook_subscriptions/{uid}",
            "callback_url": hook["url"],
            "created_at": fmt(self.now),
            "updated_at": fmt(self.now),
            "retry_started_at": None,
            "state": "active",
            "events": list(hook["events"]),
            "scope": hook["scope"],
            "organization": hook["organization"],
            "user": hook.get("user"),
            "creator": self.user_uri,
        }

    async def create_webhook(self, request: Request) -> Response:
        entry, refused = await self._begin(request)
        if refused:
            return refused
        body = entry.body
        if body["scope"] == "user" and body.get("user") != self.user_uri:
            return self._error(
                entry,
                400,
                "Invalid Argument",
                "The supplied parameters are invalid.",
                [{"parameter": "user", "message": "must be the token's user for scope user"}],
            )
        if any(h["url"] == body["url"] for h in self.webhooks.values()):
            return self._error(entry, 409, "Already Exists", "Hook with this url already exists")
        uid = _uid()
        self.webhooks[uid] = dict(body)
        return self._respond(entry, 201, {"resource": self._subscription(uid, body)})

    async def delete_webhook(self, request: Request) -> Response:
        entry, refused = await self._begin(request)
        if refused:
            return refused
        if self.webhooks.pop(request.path_params["uuid"], None) is None:
            return self._error(
                entry,
                404,
                "Resource Not Found",
                "The server could not find the requested resource.",
            )
        return self._respond(entry, 204, None)

    async def push(self, event: str, payload: dict[str, Any]) -> list[httpx.Response]:
        """Delivers ``event`` to every subscription that wants it, signed like Calendly:
        ``Calendly-Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256(key, "t.body")>``."""
        assert self.push_client is not None, "set push_client to deliver pushes"
        answers = []
        for hook in list(self.webhooks.values()):
            if event not in hook["events"]:
                continue
            raw = json.dumps(
                {"event": event, "created_at": fmt(self.now), "payload": payload}
            ).encode()
            stamp = str(int(self.now.timestamp()))
            key = str(hook.get("signing_key") or "")
            digest = hmac.new(key.encode(), stamp.encode() + b"." + raw, hashlib.sha256)
            answers.append(
                await self.push_client.post(
                    hook["url"],
                    content=raw,
                    headers={
                        "content-type": "application/json",
                        "calendly-webhook-signature": f"t={stamp},v1={digest.hexdigest()}",
                    },
                )
            )
        return answers
