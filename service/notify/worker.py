"""The outbox worker: claims due confirmation rows, delivers them, marks each SENT or FAILED.

Claiming is safe across replicas and crashes:

* One write transaction selects due rows (PENDING, or SENDING whose lease ran out) and marks
  them SENDING with ``attempts + 1`` and ``next_attempt_at = now + lease``. On PostgreSQL the
  select is ``FOR UPDATE SKIP LOCKED``, so two replicas never claim the same row; SQLite's
  write transactions are serialised (BEGIN IMMEDIATE), which gives the same guarantee.
* Delivery happens outside any transaction. The outcome is written in a second transaction
  that first checks the row is still ours (SENDING with the attempt number we claimed): a
  worker whose lease ran out does not overwrite the row's newer state.
* A worker that dies after claiming loses nothing: at lease expiry the row is due again.

The one at-least-once window is a crash after the channel accepted the message and before
the SENT commit. Email then goes out again with the same Message-ID (see ``mail``); SMS
checks the provider's log before resending (see ``sms``). The lease must be longer than one
delivery (SMTP and HTTP timeouts), or a slow send could overlap its own retry.

Retries back off exponentially (base * 2^(attempt-1), capped at an hour, +-20 % jitter so
replicas and messages spread out); after ``notify_max_attempts`` the row is FAILED. Channels
that are not configured are not claimed at all: their rows wait, PENDING, for configuration.
Logs and ``last_error`` carry row ids and error codes, never addresses or message text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from service.notify import ics, mail, sms, templates
from service.notify.delivery import DeliveryError, Rendered
from service.notify.outbox import Channel, Kind, Status
from service.scheduling.deps import Deps
from service.scheduling.settings_codec import from_document
from service.slots.render import voice_label
from service.slots.zones import get_zone
from service.store import tables as t

log = logging.getLogger("gleam.calendar.notify")

MAX_BACKOFF = timedelta(hours=1)

# What the business's own copy says; not account-editable (it is the business reading it).
_BUSINESS = templates.Template(
    subject="{event_type} with {caller_name}: {start_local}",
    text="{event_type} with {caller_name}, {start_local} to {end_local} ({time_zone}).\n",
    html="<p><b>{event_type}</b> with {caller_name}, {start_local} to {end_local} "
    "({time_zone}).</p>",
)
_BUSINESS_PREFIX = {Kind.BOOKED: "New", Kind.RESCHEDULED: "Moved", Kind.CANCELLED: "Cancelled"}


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row this worker holds until ``lease_until``; ``in_doubt``: an earlier attempt's
    outcome is unknown (its worker died or timed out mid-delivery)."""

    id: str
    account_id: str
    appointment_id: str
    agent_id: str
    channel: Channel
    kind: Kind
    payload: dict[str, Any]
    attempts: int
    created_at: datetime
    in_doubt: bool


@dataclass(frozen=True, slots=True)
class _Recipient:
    address: str  # email address or E.164 number
    name: str
    time_zone: str
    business_email: str  # organizer and Reply-To of the caller's email, when configured


class _NoRecipient(Exception):
    """The address is gone (erased after retention) or was never configured."""


def backoff(attempts: int, base_seconds: float, rng: random.Random) -> timedelta:
    """Delay before the next attempt after ``attempts`` failed ones."""
    exponent = min(max(attempts - 1, 0), 30)
    delay = min(timedelta(seconds=base_seconds * 2**exponent), MAX_BACKOFF)
    return delay * rng.uniform(0.8, 1.2)


class OutboxWorker:
    def __init__(
        self,
        deps: Deps,
        *,
        clock: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._deps = deps
        self._config = deps.config
        self._clock = clock or deps.clock
        self._rng = rng or random.Random()
        self._warned: set[str] = set()

    # Claiming ----------------------------------------------------------------------------

    def _ready_channels(self) -> list[str]:
        """Channels whose transport is configured; the others are left PENDING (logged once)."""
        ready = []
        if mail.smtp_configured(self._config):
            ready += [Channel.EMAIL.value, Channel.BUSINESS_INVITE.value]
        else:
            self._warn_once("smtp", "SMTP is not configured: confirmation emails stay queued")
        if sms.sms_configured(self._config):
            ready.append(Channel.SMS.value)
        else:
            self._warn_once("sms", "SMS is not configured: confirmation texts stay queued")
        return ready

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)

    async def claim(self, limit: int | None = None) -> list[Claimed]:
        channels = self._ready_channels()
        if not channels:
            return []
        now = self._clock()
        lease_until = now + timedelta(seconds=self._config.notify_lease_seconds)
        query = (
            select(t.OutboxMessage, t.Appointment.agent_id)
            .join(t.Appointment, t.Appointment.id == t.OutboxMessage.appointment_id)
            .where(
                t.OutboxMessage.status.in_([Status.PENDING.value, Status.SENDING.value]),
                t.OutboxMessage.next_attempt_at <= now,
                t.OutboxMessage.channel.in_(channels),
            )
            .order_by(t.OutboxMessage.next_attempt_at)
            .limit(limit or self._config.notify_batch_size)
        )
        if self._deps.db.is_postgres:
            # Lock only the outbox rows: appointments are busy with bookings meanwhile.
            query = query.with_for_update(skip_locked=True, of=t.OutboxMessage)
        claimed = []
        async with self._deps.db.write() as session:
            for row, agent_id in (await session.execute(query)).all():
                in_doubt = row.status == Status.SENDING.value
                row.status = Status.SENDING.value
                row.attempts += 1
                row.next_attempt_at = lease_until
                claimed.append(
                    Claimed(
                        id=row.id,
                        account_id=row.account_id,
                        appointment_id=row.appointment_id,
                        agent_id=agent_id,
                        channel=Channel(row.channel),
                        kind=Kind(row.kind),
                        payload=dict(row.payload),
                        attempts=row.attempts,
                        created_at=row.created_at,
                        in_doubt=in_doubt,
                    )
                )
        return claimed

    # Running -----------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claims one batch and delivers it; returns how many rows were claimed."""
        batch = await self.claim()
        if batch:
            # Concurrently, so every row of the batch finishes well within its lease.
            results = await asyncio.gather(
                *(self.deliver(c) for c in batch), return_exceptions=True
            )
            for claimed, result in zip(batch, results, strict=True):
                if isinstance(result, Exception):
                    # A bug or the database: the lease makes the row due again.
                    log.error("outbox %s: delivery crashed (%s)", claimed.id, type(result).__name__)
        return len(batch)

    async def run_forever(self) -> None:
        while True:
            try:
                claimed = await self.run_once()
            except Exception:
                log.exception("outbox round failed")
                claimed = 0
            if claimed < self._config.notify_batch_size:
                await asyncio.sleep(self._config.notify_interval_seconds)

    # Delivering --------------------------------------------------------------------------

    async def deliver(self, claimed: Claimed) -> None:
        try:
            recipient = await self._recipient(claimed)
            if claimed.channel is Channel.SMS:
                await self._send_sms(claimed, recipient)
            else:
                await self._send_email(claimed, recipient)
        except _NoRecipient as gone:
            await self._finish(claimed, Status.FAILED, str(gone))
        except DeliveryError as error:
            if error.permanent or claimed.attempts >= self._config.notify_max_attempts:
                await self._finish(claimed, Status.FAILED, error.reason)
            else:
                delay = backoff(claimed.attempts, self._config.notify_retry_base_seconds, self._rng)
                await self._finish(claimed, Status.PENDING, error.reason, retry_in=delay)
            log.warning(
                "outbox %s (%s) attempt %d failed: %s",
                claimed.id,
                claimed.channel.value,
                claimed.attempts,
                error.reason,
            )
        else:
            await self._finish(claimed, Status.SENT, "")

    async def _finish(
        self, claimed: Claimed, status: Status, error: str, *, retry_in: timedelta | None = None
    ) -> None:
        now = self._clock()
        async with self._deps.db.write() as session:
            row = await session.get(t.OutboxMessage, claimed.id, with_for_update=True)
            if (
                row is None
                or row.status != Status.SENDING.value
                or row.attempts != claimed.attempts
            ):
                # Our lease ran out and another attempt owns the row now.
                log.warning("outbox %s: lease lost before marking %s", claimed.id, status.value)
                return
            row.status = status.value
            row.last_error = error
            if status is Status.SENT:
                row.sent_at = now
            if retry_in is not None:
                row.next_attempt_at = now + retry_in

    async def _recipient(self, claimed: Claimed) -> _Recipient:
        """Contact data is read now, not from the row: erasure also stops pending messages."""
        p = claimed.payload
        async with self._deps.db.read() as session:
            appointment = await session.get(t.Appointment, claimed.appointment_id)
            settings_row = await session.get(
                t.AgentSettings, (claimed.account_id, claimed.agent_id)
            )
        if appointment is None:
            raise _NoRecipient("appointment is gone")
        business_email = (
            from_document(claimed.agent_id, settings_row.data).confirmations.business_email
            if settings_row is not None
            else ""
        )
        if claimed.channel is Channel.BUSINESS_INVITE:
            if not business_email:
                raise _NoRecipient("no business address configured")
            return _Recipient(business_email, p["business_name"], p["time_zone"], business_email)
        address = (
            appointment.caller_phone if claimed.channel is Channel.SMS else appointment.caller_email
        )
        if not address:
            raise _NoRecipient("no caller address on file (erased?)")
        return _Recipient(address, appointment.caller_name, p["caller_time_zone"], business_email)

    def _values(self, claimed: Claimed, caller_name: str, time_zone: str) -> dict[str, str]:
        p = claimed.payload
        start = datetime.fromisoformat(p["start"])
        end = datetime.fromisoformat(p["end"])
        zone_abbreviation = start.astimezone(get_zone(time_zone)).tzname() or ""
        return {
            "caller_name": caller_name,
            "business_name": p["business_name"],
            "start_local": voice_label(start, time_zone),
            "end_local": voice_label(end, time_zone),
            "time_zone": f"{time_zone} ({zone_abbreviation})" if zone_abbreviation else time_zone,
            "event_type": p["event_type"] or p["title"] or "appointment",
            "agent_id": p["agent_id"],
        }

    async def _render(self, claimed: Claimed, values: dict[str, str]) -> Rendered:
        if claimed.channel is Channel.BUSINESS_INVITE:
            template = _BUSINESS
            prefix = _BUSINESS_PREFIX[claimed.kind] + ": "
        else:
            template = (await templates.load(self._deps, claimed.account_id)).for_kind(claimed.kind)
            prefix = ""
        return Rendered(
            subject=prefix + templates.render(template.subject, values),
            text=templates.render(template.text, values),
            html=templates.render(template.html, values, as_html=True),
            sms=templates.render(template.sms, values),
        )

    async def _send_email(self, claimed: Claimed, to: _Recipient) -> None:
        p = claimed.payload
        if claimed.channel is Channel.BUSINESS_INVITE:
            async with self._deps.db.read() as session:
                caller_name = await session.scalar(
                    select(t.Appointment.caller_name).where(
                        t.Appointment.id == claimed.appointment_id
                    )
                )
            values = self._values(claimed, caller_name or "", to.time_zone)
            organizer = (self._config.smtp_from, p["business_name"])
            attendee = (to.address, p["business_name"])
        else:
            values = self._values(claimed, to.name, to.time_zone)
            organizer = (to.business_email or self._config.smtp_from, p["business_name"])
            attendee = (to.address, to.name)
        rendered = await self._render(claimed, values)
        kind = claimed.kind
        invite = ics.build(
            ics.Invite(
                appointment_id=claimed.appointment_id,
                kind=kind,
                sequence=int(p["sequence"]),
                start=datetime.fromisoformat(p["start"]),
                end=datetime.fromisoformat(p["end"]),
                time_zone=to.time_zone,
                summary=p["title"] or values["event_type"],
                organizer_email=organizer[0],
                organizer_name=organizer[1],
                attendee_email=attendee[0],
                attendee_name=attendee[1],
                stamp=claimed.created_at,
            )
        )
        message = mail.compose(
            outbox_id=claimed.id,
            created_at=claimed.created_at,
            sender=self._config.smtp_from,
            sender_name=p["business_name"],
            recipient=to.address,
            recipient_name=to.name,
            reply_to=to.business_email if claimed.channel is Channel.EMAIL else "",
            rendered=rendered,
            ics=invite,
            method=ics.method_for(kind),
        )
        await mail.send(self._config, message, to.address)

    async def _send_sms(self, claimed: Claimed, to: _Recipient) -> None:
        values = self._values(claimed, to.name, to.time_zone)
        body = sms.shorten((await self._render(claimed, values)).sms)
        if claimed.in_doubt and await sms.already_sent(
            self._deps.http, self._config, to=to.address, body=body, since=claimed.created_at
        ):
            log.info("outbox %s: the provider already has this text; not resending", claimed.id)
            return
        await sms.send(self._deps.http, self._config, to=to.address, body=body, key=claimed.id)


async def run_forever(deps: Deps) -> None:
    """The worker loop, started by ``serve`` (or ``notify-worker`` on its own)."""
    await OutboxWorker(deps).run_forever()


async def run_until_signal(deps: Deps) -> None:
    """``gleam-calendar notify-worker``: the loop on its own, until SIGTERM or SIGINT."""
    task = asyncio.create_task(run_forever(deps), name="notify-worker")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("gleam-calendar notify-worker running", flush=True)
    await stop.wait()
    # Cancelling mid-delivery loses nothing: claimed rows come due again at lease expiry.
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
