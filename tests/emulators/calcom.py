"""A stateful Cal.com API v2 emulator (Starlette, served to httpx through ASGITransport).

State: one user with API keys (revocable), event types, a weekly schedule in the user's zone
that produces slots, bookings (a booked time disappears from ``/v2/slots``), reservations (a time
held by someone else is neither offered nor bookable nor reservable), reschedule (a new uid; the
old booking becomes cancelled with ``rescheduledToUid``) and cancel.

Strict where the adapter depends on it:
- ``cal-api-version`` must be exactly the value of the endpoint's group (``VERSIONS``); missing
  or wrong is a 400, because the real API silently answers with an old version instead.
- Every request is checked against the official OpenAPI file, and so is every response
  (``SpecValidator``); a violation is recorded in ``violations`` and raised, so the test fails.
  One documented exception: the file's ``GET /v2/slots`` 200 schema describes the date-keyed map,
  not the ``{status, data}`` envelope its own example shows, so the map (``data``) is checked
  against it and the envelope against ``SLOTS_ENVELOPE``.
  Another: the file types ``CreateWebhookInputDto.triggers`` as one enum string and the output's
  ``triggers`` as objects, while the API (and NOTES.md) take and give an array of trigger
  names; each request trigger is checked against the file's enum (``_webhook_body``) and the
  output is checked with its trigger list set aside.
- Webhooks: ``POST /v2/webhooks`` / ``DELETE /v2/webhooks/{id}`` are kept in ``webhooks``;
  ``push`` sends a signed ``X-Cal-Signature-256`` delivery to each active one through
  ``push_client`` (a test points it at the service's HTTP app).
- Errors use Cal.com's envelope ``{status: "error", timestamp, path, error: {code, message,
  details}}``.

Scripting (``Fault``): a status (429 with ``X-RateLimit-*`` and optionally ``Retry-After``, 5xx,
anything), "handle the request, then hang" (the response never arrives), or a hook run before
the request is handled (someone else takes the slot at that moment).

Time: slots and holds are judged against ``now`` (the test's clock, default the suite's NOW),
never the real date; ``createdAt`` stamps use the real clock, like the real server's (the adapter
looks bookings up by a real-time ``afterCreatedAt``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import jsonschema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from tests.emulators.openapi import SpecValidator, SpecViolation

BASE = "https://api.cal.test"
GOOD_KEY = "cal_live_goodkey0001"
VERSIONS = {"bookings": "2024-08-13", "slots": "2024-09-04", "event-types": "2024-06-14"}

SLOTS_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["status", "data"],
    "properties": {"status": {"enum": ["success"]}, "data": {"type": "object"}},
}


def version_for(path: str) -> str:
    """The cal-api-version the endpoint group of ``path`` requires ('' = none)."""
    parts = path.split("/")
    return VERSIONS.get(parts[2], "") if len(parts) > 2 else ""


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass
class EventTypeDef:
    id: int
    title: str
    slug: str
    minutes: int
    hidden: bool = False
    minimum_notice_minutes: int = 0


@dataclass
class Reservation:
    uid: str
    event_type_id: int
    start: datetime
    end: datetime
    owner: str  # the API key that holds it, or "someone-else"
    until: datetime


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int = 0


@dataclass
class Fault:
    """One scripted behaviour for requests matching ``method`` and the ``path`` regex."""

    method: str
    path: str
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    code: str = ""
    message: str = ""
    hang_after: bool = False
    before: Callable[[], object] | None = None
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        return (
            self.times > 0 and method == self.method and re.fullmatch(self.path, path) is not None
        )


Handler = Callable[[Request, str, Any, re.Match[str]], Awaitable[tuple[int, Any]]]


class CalcomEmulator:
    def __init__(self, *, now: datetime, time_zone: str = "America/New_York") -> None:
        self.now = now
        self.time_zone = time_zone
        self.user = {
            "id": 4242,
            "username": "acme-dental",
            "email": "owner@acme-dental.test",
            "timeFormat": 12,
            "defaultScheduleId": 7,
            "weekStart": "Monday",
            "timeZone": time_zone,
            "organizationId": None,
        }
        self.keys: dict[str, bool] = {GOOD_KEY: True}  # key -> still valid
        self.event_types = {
            101: EventTypeDef(101, "Consultation", "consultation", 15),
            102: EventTypeDef(102, "Meeting", "meeting", 30),
            103: EventTypeDef(103, "Internal sync", "internal-sync", 30, hidden=True),
        }
        # Weekday (0 = Monday) -> local (start hour, end hour) in the user's zone: 8-18 Mon-Fri.
        self.weekly: dict[int, tuple[int, int]] = {d: (8, 18) for d in range(5)}
        self.bookings: dict[str, dict[str, Any]] = {}
        self.reservations: dict[str, Reservation] = {}
        self.faults: list[Fault] = []
        self.log: list[Recorded] = []
        self.violations: list[str] = []
        self._next_id = 9000
        self.webhooks: dict[int, dict[str, Any]] = {}
        self.push_client: httpx.AsyncClient | None = None
        self.validator = SpecValidator("calcom-v2.openapi.json")
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/v2/me"), self._me),
            ("GET", re.compile(r"/v2/event-types"), self._event_types),
            ("GET", re.compile(r"/v2/slots"), self._slots),
            ("POST", re.compile(r"/v2/slots/reservations"), self._reserve),
            ("DELETE", re.compile(r"/v2/slots/reservations/([^/]+)"), self._release),
            ("GET", re.compile(r"/v2/bookings"), self._list_bookings),
            ("POST", re.compile(r"/v2/bookings"), self._book),
            ("POST", re.compile(r"/v2/bookings/([^/]+)/reschedule"), self._reschedule),
            ("POST", re.compile(r"/v2/bookings/([^/]+)/cancel"), self._cancel),
            ("POST", re.compile(r"/v2/webhooks"), self._create_webhook),
            ("DELETE", re.compile(r"/v2/webhooks/([^/]+)"), self._delete_webhook),
        ]

    # Test controls ---------------------------------------------------------------------------

    def revoke(self, key: str = GOOD_KEY) -> None:
        self.keys[key] = False

    def script(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def rate_limit(
        self, method: str, path: str, *, reset_in: int = 30, retry_after: int | None = None
    ) -> Fault:
        headers = {
            "X-RateLimit-Limit-Default": "120",
            "X-RateLimit-Remaining-Default": "0",
            # Unix time, as Cal.com's throttler sends it.
            "X-RateLimit-Reset-Default": str(int(time.time()) + reset_in),
        }
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return self.script(
            Fault(
                method,
                path,
                status=429,
                headers=headers,
                code="ThrottlerException",
                message="ThrottlerException: Too Many Requests",
            )
        )

    def requests(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.log if r.method == method and re.fullmatch(path, r.path)]

    def live_bookings(self) -> list[dict[str, Any]]:
        return [b for b in self.bookings.values() if b["status"] == "accepted"]

    def hold_as_someone_else(self, event_type_id: int, start: datetime) -> Reservation:
        et = self.event_types[event_type_id]
        uid = str(uuid.uuid4())
        held = Reservation(
            uid,
            event_type_id,
            start,
            start + timedelta(minutes=et.minutes),
            "someone-else",
            self.now + timedelta(minutes=5),
        )
        self.reservations[uid] = held
        return held

    def book_as_someone_else(self, event_type_id: int, start: datetime) -> dict[str, Any]:
        attendee = {"name": "Somebody Else", "email": "else@example.com", "timeZone": "UTC"}
        return self._create(event_type_id, start, attendee, {}, None)

    def provider_starts(self, event_type_id: int, day: date) -> list[datetime]:
        """What /v2/slots offers on one local day (for assertions)."""
        tz = ZoneInfo(self.time_zone)
        lo = datetime.combine(day, datetime.min.time(), tzinfo=tz).astimezone(UTC)
        return self._open(event_type_id, lo, lo + timedelta(days=1), owner=GOOD_KEY)

    # Model ----------------------------------------------------------------------------------

    def _candidates(self, et: EventTypeDef, lo: datetime, hi: datetime) -> list[datetime]:
        tz = ZoneInfo(self.time_zone)
        day = lo.astimezone(tz).date() - timedelta(days=1)
        last = hi.astimezone(tz).date() + timedelta(days=1)
        out = []
        while day <= last:
            hours = self.weekly.get(day.weekday())
            if hours is not None:
                # Local wall times converted per date (DST-correct).
                at = datetime(day.year, day.month, day.day, hours[0], tzinfo=tz)
                close = datetime(day.year, day.month, day.day, hours[1], tzinfo=tz)
                while at + timedelta(minutes=et.minutes) <= close:
                    moment = at.astimezone(UTC)
                    if lo <= moment <= hi:
                        out.append(moment)
                    at += timedelta(minutes=et.minutes)
            day += timedelta(days=1)
        return out

    def _busy(self, start: datetime, end: datetime, owner: str, ignore: str = "") -> bool:
        for b in self.bookings.values():
            live = b["status"] == "accepted" and b["uid"] != ignore
            if live and parse(b["start"]) < end and parse(b["end"]) > start:
                return True
        for r in self.reservations.values():
            if r.owner != owner and r.until > self.now and r.start < end and r.end > start:
                return True
        return False

    def _open(
        self, event_type_id: int, lo: datetime, hi: datetime, *, owner: str, ignore: str = ""
    ) -> list[datetime]:
        et = self.event_types[event_type_id]
        earliest = self.now + timedelta(minutes=et.minimum_notice_minutes)
        return [
            s
            for s in self._candidates(et, lo, hi)
            if s >= earliest and not self._busy(s, s + timedelta(minutes=et.minutes), owner, ignore)
        ]

    def _bookable(self, event_type_id: int, start: datetime, owner: str, ignore: str = "") -> bool:
        return start in self._open(event_type_id, start, start, owner=owner, ignore=ignore)

    def _create(
        self,
        event_type_id: int,
        start: datetime,
        attendee: dict[str, Any],
        metadata: dict[str, Any],
        rescheduled_from: str | None,
        responses: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        et = self.event_types[event_type_id]
        self._next_id += 1
        stamp = iso(datetime.now(UTC))
        booking: dict[str, Any] = {
            "id": self._next_id,
            "uid": uuid.uuid4().hex[:22],
            "title": f"{et.title} between {self.user['username']} and {attendee['name']}",
            "description": "",
            "hosts": [
                {
                    "id": self.user["id"],
                    "name": "Acme Dental",
                    "email": self.user["email"],
                    "username": self.user["username"],
                    "timeZone": self.time_zone,
                }
            ],
            "status": "accepted",
            "start": iso(start),
            "end": iso(start + timedelta(minutes=et.minutes)),
            "duration": et.minutes,
            "eventTypeId": et.id,
            "eventType": {"id": et.id, "slug": et.slug},
            "location": "integrations:daily",
            "absentHost": False,
            "createdAt": stamp,
            "updatedAt": stamp,
            "metadata": dict(metadata),
            "attendees": [
                {
                    "name": attendee["name"],
                    "email": attendee["email"],
                    "timeZone": attendee["timeZone"],
                    "absent": False,
                    **(
                        {"phoneNumber": attendee["phoneNumber"]}
                        if "phoneNumber" in attendee
                        else {}
                    ),
                }
            ],
            "bookingFieldsResponses": dict(responses or {}),
        }
        if rescheduled_from:
            booking["rescheduledFromUid"] = rescheduled_from
        self.bookings[booking["uid"]] = booking
        return booking

    # HTTP -------------------------------------------------------------------------------------

    def _error(self, path: str, status: int, code: str, message: str) -> tuple[int, Any]:
        return status, {
            "status": "error",
            "timestamp": iso(datetime.now(UTC)),
            "path": path,
            "error": {"code": code, "message": message, "details": {}},
        }

    def _violation(self, message: str) -> SpecViolation:
        self.violations.append(message)
        return SpecViolation(message)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self._handle(request)
        await response(scope, receive, send)

    async def _handle(self, request: Request) -> Response:
        method, path = request.method, request.url.path
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = Recorded(method, path, dict(request.query_params), dict(request.headers), body)
        self.log.append(record)
        status, payload, extra = await self._respond(request, method, path, body)
        record.status = status
        return JSONResponse(payload, status_code=status, headers=extra)

    async def _respond(
        self, request: Request, method: str, path: str, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        route = next(
            (
                (h, m)
                for meth, rx, h in self._routes
                if meth == method and (m := rx.fullmatch(path))
            ),
            None,
        )
        if route is None:
            raise self._violation(f"{method} {path}: the emulator does not serve it")
        expected = version_for(path)
        sent = request.headers.get("cal-api-version")
        if expected and sent != expected:
            status, payload = self._error(
                path,
                400,
                "BadRequestException",
                f"cal-api-version must be {expected} for this endpoint (got {sent!r})",
            )
            return status, payload, {}
        try:
            for checked in self._webhook_body(method, path, body):
                self.validator.check_request(
                    method,
                    path,
                    query=dict(request.query_params),
                    headers=dict(request.headers),
                    body=checked,
                )
        except SpecViolation as error:
            raise self._violation(str(error)) from error
        fault = next((f for f in self.faults if f.matches(method, path)), None)
        if fault is not None:
            fault.times -= 1
            if fault.before is not None:
                fault.before()
            if fault.status:
                status, payload = self._error(
                    path, fault.status, fault.code or "Error", fault.message or "scripted"
                )
                return status, payload, dict(fault.headers)
        auth = request.headers.get("authorization", "")
        key = auth.removeprefix("Bearer ").strip()
        if not self.keys.get(key):
            status, payload = self._error(path, 401, "UnauthorizedException", "Invalid API Key.")
            return status, payload, {}
        handler, match = route
        request.state.key = key
        status, payload = await handler(request, path, body, match)
        # Error statuses are checked too where the file documents them (it rarely does).
        self._check_response(method, path, status, payload)
        if fault is not None and fault.hang_after:
            # The work is done; the answer never comes (the client times out).
            await asyncio.sleep(3600)
        return status, payload, {}

    @staticmethod
    def _webhook_body(method: str, path: str, body: Any) -> list[Any]:
        """The bodies to check against the file: a webhook body once per trigger (see the
        module docstring), every other body as it is."""
        if not (method == "POST" and path == "/v2/webhooks" and isinstance(body, dict)):
            return [body]
        triggers = body.get("triggers")
        if not isinstance(triggers, list) or not triggers or len(set(triggers)) != len(triggers):
            raise SpecViolation("POST /v2/webhooks: triggers must be a non-empty unique array")
        return [{**body, "triggers": trigger} for trigger in triggers]

    def _check_response(self, method: str, path: str, status: int, payload: Any) -> None:
        if path.startswith("/v2/webhooks") and status < 300:
            payload = {**payload, "data": {**payload["data"], "triggers": []}}
        try:
            if method == "GET" and path == "/v2/slots":
                try:
                    jsonschema.validate(payload, SLOTS_ENVELOPE)
                except jsonschema.ValidationError as error:
                    raise SpecViolation(f"GET /v2/slots envelope: {error.message}") from error
                self.validator.check_response(method, path, status, payload["data"])
            else:
                self.validator.check_response(method, path, status, payload)
        except SpecViolation as error:
            raise self._violation(str(error)) from error

    # Handlers ---------------------------------------------------------------------------------

    async def _me(
        self, request: Request, path: str, body: Any, m: re.Match[str]
    ) -> tuple[int, Any]:
        return 200, {"status": "success", "data": dict(self.user)}

    async def _event_types(
        self, request: Request, path: str, body: Any, m: re.Match[str]
    ) -> tuple[int, Any]:
        data = [
            {
                "id": et.id,
                "lengthInMinutes": et.minutes,
                "title": et.title,
                "slug": et.slug,
                "description": "",
                "locations": [],
                "bookingFields": [],
                "disableGuests": False,
                "slotInterval": None,
                "minimumBookingNotice": et.minimum_notice_minutes,
                "beforeEventBuffer": 0,
                "afterEventBuffer": 0,
                "recurrence": None,
                "metadata": {},
                "price": 0,
                "currency": "usd",
                "lockTimeZoneToggleOnBookingPage": False,
                "seatsPerTimeSlot": None,
                "forwardParamsSuccessRedirect": None,
                "successRedirectUrl": None,
                "isInstantEvent": False,
                "seatsShowAvailabilityCount": None,
                "scheduleId": self.user["defaultScheduleId"],
                "hidden": et.hidden,
                "bookingRequiresAuthentication": False,
                "ownerId": self.user["id"],
                "users": [self.user["username"]],
            }
            for et in self.event_types.values()
        ]
        return 200, {"status": "success", "data": data}

    def _event_type(self, raw: Any) -> EventTypeDef | None:
        try:
            return self.event_types.get(int(raw))
        except (TypeError, ValueError):
            return None

    async def _slots(
        self, request: Request, path: str, body: Any, m: re.Match[str]
    ) -> tuple[int, Any]:
        q = request.query_params
        et = self._event_type(q.get("eventTypeId"))
        if et is None:
            return self._error(path, 404, "NotFoundException", "Event type not found")
        try:
            lo, hi = parse(q["start"]), parse(q["end"])
            tz = ZoneInfo(q.get("timeZone") or "UTC")
        except (KeyError, ValueError):
            return self._error(path, 400, "BadRequestException", "invalid start, end or timeZone")
        days: dict[str, list[dict[str, str]]] = {}
        for s in self._open(et.id, lo, hi, owner=request.state.key):
            local = s.astimezone(tz)
            text = local.isoformat(timespec="milliseconds")
            days.setdefault(local.date().isoformat(), []).append({"start": text})
        return 200, {"status": "success", "data": days}

    async def _reserve(
        self, request: Request, path: str, body: Any, m: re.Match[str]
    ) -> tuple[int, Any]:
        et = self._event_type(body.get("eventTypeId"))
        if et is None:
            return self._error(path, 404, "NotFoundException", "Event type not found")
        start = parse(body["slotStart"])
        key = request.state.key
        if not self._bookable(et.id, start, key):
            return self._error(
                path,
                422,
                "UnprocessableEntityException",
                "This time slot is already reserved by another user or booked",
            )
        minutes = int(body.get("reservationDuration") or 5)
        held = Reservation(
            str(uuid.uuid4()),
            et.id,
            start,
            start + timedelta(minutes=et.minutes),
            key,
            self.now + timedelta(minutes=minutes),
        )
        self.reservations[held.uid] = held
        return 201, {
            "status": "success",
            "data": {
                "eventTypeId": et.id,
                "slotStart": iso(held.start),
                "slotEnd": iso(held.end),
                "slotDuration": et.minutes,
                "reservationUid": held.uid,
                "reservationDuration": minutes,
                "reservationUntil": iso(held.until),
            },
        }

    async def _release(
        self, request: Request, path: str, body: Any, m: re.Match[str]
    ) -> tuple[int, Any]:
        held = self.reservations.get(m.group(1))
        if held is None or held.owner != request.state.key:
            return self._error(path, 404, "NotFoundException", "Reservation not found")
        del self.reservations[held.uid]
        return 200, {"status": "success"}

    async def _list_bookings(
        self, request: Request, path: str, body: Any, m: re.Match[str]
    ) -> tuple[int, Any]:
        q = request.query_params
        items = list(self.bookings.values())
        if "afterCreatedAt" in q:
            after = parse(q["afterCreatedAt"])
            items = [b for b in items if parse(b["createdAt"]) >= after]
        if "attendeeEmail" in q:
            items = [
                b for b in items if any(a["email"] == q["attendeeEmail"] for a in b["attendees"])
            ]
        items.sort(key=lambda b: (b["createdAt"], b["id"]), reverse=q.get("sortCreated") == "desc")
        take, skip = int(q.get("take", 100)), int(q.get("skip", 0))
        page = items[skip : skip + take]
        total = len(items)
        return 200, {
            "status": "success",
            "data": page,
            "pagination": {
                "totalItems": total,
                "remainingItems": max(0, total - skip - len(page)),
                "returnedItems": len(page),
                "itemsPerPage": take,
                "currentPage": skip // take + 1,
                "totalPages": (total + take - 1) // take,
                "hasNextPage": skip + len(page) < total,
                "hasPreviousPage": skip > 0,
            },
        }

    async def _book(
        self, request: Request, path: str, body: Any, m: re.Match[str]
    ) -> tuple[int, Any]:
        et = self._event_type(body.get("eventTypeId"))
        if et is None:
            return self._error(path, 404, "NotFoundException", "Event type not found")
        attendee = body["attendee"]
        if not attendee.get("email"):
            return self._error(path, 400, "BadRequestException", "attendee email is required")
        start = parse(body["start"])
        if not self._bookable(et.id, start, request.state.key):
            return self._error(
                path,
                400,
                "BadRequestException",
                "User either already has booking at this time or is not available",
            )
        booking = self._create(
            et.id,
            start,
            attendee,
            body.get("metadata") or {},
            None,
            body.get("bookingFieldsResponses"),
        )
        return 201, {"status": "success", "data": booking}

    async def _reschedule(
        self, request: Request, path: str, body: Any, m: re.Match[str]
    ) -> tuple[int, Any]:
        old = self.bookings.get(m.group(1))
        if old is None:
            return self._error(path, 404, "NotFoundException", "Booking not found")
        if old["status"] not in ("accepted", "pending"):
            return self._error(path, 400, "BadRequestException", "Booking cannot be rescheduled")
        start = parse(body["start"])
        et_id = old["eventType"]["id"]
        if not self._bookable(et_id, start, request.state.key, ignore=old["uid"]):
            return self._error(
                path,
                400,
                "BadRequestException",
                "User either already has booking at this time or is not available",
            )
        new = self._create(
            et_id,
            start,
            old["attendees"][0],
            old.get("metadata") or {},
            old["uid"],
            old.get("bookingFieldsResponses"),
        )
        old["status"] = "cancelled"
        old["rescheduledToUid"] = new["uid"]
        old["updatedAt"] = iso(datetime.now(UTC))
        return 201, {"status": "success", "data": new}

    async def _cancel(
        self, request: Request, path: str, body: Any, m: re.Match[str]
    ) -> tuple[int, Any]:
        booking = self.bookings.get(m.group(1))
        if booking is None:
            return self._error(path, 404, "NotFoundException", "Booking not found")
        if booking["status"] == "cancelled":
            return self._error(
                path, 400, "BadRequestException", "This booking has already been cancelled."
            )
        booking["status"] = "cancelled"
        if body and body.get("cancellationReason"):
            booking["cancellationReason"] = body["cancellationReason"]
        booking["updatedAt"] = iso(datetime.now(UTC))
        return 200, {"status": "success", "data": booking}

    # Webhooks ---------------------------------------------------------------------------------

    def _webhook_output(self, hook: dict[str, Any]) -> dict[str, Any]:
        # The secret is write-only here: the output never echoes it.
        return {k: v for k, v in hook.items() if k != "secret"}

    async def _create_webhook(
        self, request: Request, path: str, body: Any, m: re.Match[str]
    ) -> tuple[int, Any]:
        self._next_id += 1
        hook = {
            "id": self._next_id,
            "userId": self.user["id"],
            "payloadTemplate": body.get("payloadTemplate") or "",
            "triggers": list(body["triggers"]),
            "subscriberUrl": body["subscriberUrl"],
            "active": bool(body["active"]),
            "secret": body.get("secret") or "",
        }
        self.webhooks[hook["id"]] = hook
        return 201, {"status": "success", "data": self._webhook_output(hook)}

    async def _delete_webhook(
        self, request: Request, path: str, body: Any, m: re.Match[str]
    ) -> tuple[int, Any]:
        hook = self.webhooks.pop(int(m.group(1)), None) if m.group(1).isdigit() else None
        if hook is None:
            return self._error(path, 404, "NotFoundException", "Webhook not found")
        return 200, {"status": "success", "data": self._webhook_output(hook)}

    async def push(self, trigger: str, payload: dict[str, Any]) -> list[httpx.Response]:
        """Delivers ``trigger`` to every active webhook subscribed to it, signed like Cal.com
        (hex HMAC-SHA256 of the raw body; ``no-secret-provided`` without a secret)."""
        assert self.push_client is not None, "set push_client to deliver pushes"
        answers = []
        for hook in list(self.webhooks.values()):
            if not hook["active"] or trigger not in hook["triggers"]:
                continue
            raw = json.dumps(
                {"triggerEvent": trigger, "createdAt": iso(self.now), "payload": payload}
            ).encode()
            secret = hook["secret"]
            signature = (
                hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
                if secret
                else "no-secret-provided"
            )
            answers.append(
                await self.push_client.post(
                    hook["subscriberUrl"],
                    content=raw,
                    headers={
                        "content-type": "application/json",
                        "x-cal-signature-256": signature,
                    },
                )
            )
        return answers
