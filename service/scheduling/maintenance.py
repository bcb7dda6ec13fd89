"""Background upkeep: settle PENDING appointments, erase old caller contact data, keep
provider push subscriptions alive (renew Google channels before they expire, retry failed
subscriptions).

The reconciler makes "no lost booking" hold across crashes: an appointment left PENDING (the
process died, or the provider's answer was unknown) is settled by asking the provider whether
the event exists. Found: CONFIRMED. Not found: FAILED and its claim released, so the time is
offered again. Both run on every replica; row updates are idempotent, so two replicas settling
the same appointment agree.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from uuid import uuid4

from sqlalchemy import String, cast, delete, select, update

from service.deadline import Deadline
from service.errors import CalendarError
from service.model import AppointmentStatus, ConnectionStatus, ProviderKind
from service.notify import outbox
from service.providers.base import EventRef
from service.scheduling.cache import days_around
from service.scheduling.connections import (
    PUSH_CALL_SECONDS,
    PUSH_ON,
    subscribe_pushes,
    watched_calendars,
    webhook_secret_context,
    without_push,
)
from service.scheduling.deps import Deps
from service.scheduling.idempotency import Idempotency
from service.scheduling.invalidation import Invalidator
from service.scheduling.registry import provider_for
from service.scheduling.settings_codec import from_document
from service.store import tables as t
from service.store.crypto import DecryptionError

log = logging.getLogger("gleam.calendar.maintenance")

BATCH = 100
# A Google channel expiring sooner than this is replaced (new channel first, then the old one
# stopped), so a round or two may fail without a gap in notifications.
RENEW_BEFORE = timedelta(hours=1)
_PUSHED = (ProviderKind.CALCOM.value, ProviderKind.CALENDLY.value, ProviderKind.GOOGLE.value)


async def reconcile_pending(deps: Deps, invalidator: Invalidator | None = None) -> dict[str, int]:
    """Settles PENDING appointments older than ``reconcile_after_seconds``; returns counts.
    A FAILED one frees its time, which ``invalidator`` tells every replica's cache."""
    cutoff = deps.clock() - timedelta(seconds=deps.config.reconcile_after_seconds)
    counts = {"confirmed": 0, "failed": 0, "unknown": 0}
    async with deps.db.read() as session:
        rows = (
            await session.execute(
                select(t.Appointment, t.Connection)
                .join(t.Connection, t.Connection.id == t.Appointment.connection_id)
                .where(
                    t.Appointment.status == AppointmentStatus.PENDING.value,
                    t.Appointment.created_at < cutoff,
                )
                .order_by(t.Appointment.created_at)
                .limit(BATCH)
            )
        ).all()
    freed: list[tuple[str, datetime, datetime]] = []
    for appointment, connection in rows:
        try:
            provider = provider_for(deps, connection)
            ref = await provider.find_event(appointment.id, Deadline.after(10))
        except CalendarError as error:
            # The provider cannot answer now; try again next round.
            log.warning("reconcile %s: provider did not answer (%s)", appointment.id, error.reason)
            counts["unknown"] += 1
            continue
        async with deps.db.write() as session:
            current = await session.get(t.Appointment, appointment.id)
            if current is None or current.status != AppointmentStatus.PENDING.value:
                continue  # settled meanwhile by the request itself or another replica
            if ref is not None:
                current.status = AppointmentStatus.CONFIRMED.value
                current.provider_reference = ref.reference
                counts["confirmed"] += 1
                # The booking's confirmation was never written (the request did not see the
                # outcome); it goes into the outbox with the change that confirms it.
                settings = await session.get(
                    t.AgentSettings, (current.account_id, current.agent_id)
                )
                if settings is not None:
                    event_title = await session.scalar(
                        select(t.EventType.title).where(t.EventType.id == current.event_type_id)
                    )
                    await outbox.enqueue(
                        session,
                        current,
                        from_document(current.agent_id, settings.data),
                        ProviderKind(connection.provider),
                        outbox.Kind.BOOKED,
                        event_type_title=event_title or "",
                    )
            else:
                current.status = AppointmentStatus.FAILED.value
                await session.execute(
                    delete(t.TimeClaim).where(t.TimeClaim.appointment_id == current.id)
                )
                await Idempotency.forget_resource(session, current.account_id, current.id)
                counts["failed"] += 1
                freed.append((current.connection_id, current.start_at, current.end_at))
            session.add(
                t.AuditRecord(
                    id=uuid4().hex,
                    account_id=current.account_id,
                    agent_id=current.agent_id,
                    call_id=current.call_id,
                    action="RECONCILE",
                    appointment_id=current.id,
                    detail={"status": current.status},
                )
            )
    if invalidator is not None:
        for connection_id, start, end in freed:
            await invalidator.connection_changed(connection_id, days_around((start, end)))
    return counts


async def cancel_leftovers(deps: Deps) -> int:
    """Cancels provider events an appointment no longer uses; returns how many went."""
    async with deps.db.read() as session:
        rows = (
            await session.execute(
                select(t.Appointment.id, t.Appointment.pending_cancellations, t.Connection)
                .join(t.Connection, t.Connection.id == t.Appointment.connection_id)
                # PostgreSQL's json type has no equality operator; its text form does.
                .where(cast(t.Appointment.pending_cancellations, String) != "[]")
                .limit(BATCH)
            )
        ).all()
    done = 0
    for appointment_id, references, connection in rows:
        if not references:
            continue
        try:
            provider = provider_for(deps, connection)
        except CalendarError:
            continue
        cancelled = []
        for reference in references:
            try:
                await provider.cancel_event(EventRef(reference), Deadline.after(10))
            except CalendarError as error:
                log.warning("leftover cancel for %s failed (%s)", appointment_id, error.reason)
                continue
            cancelled.append(reference)
        if not cancelled:
            continue
        async with deps.db.write() as session:
            row = await session.get(t.Appointment, appointment_id)
            if row is not None:
                row.pending_cancellations = [
                    r for r in row.pending_cancellations if r not in cancelled
                ]
        done += len(cancelled)
    return done


async def erase_expired_contacts(deps: Deps) -> int:
    """Erases caller contact data (email, phone, notes) ``retention_days`` after the end."""
    now = deps.clock()
    cutoff = now - timedelta(days=deps.config.retention_days)
    async with deps.db.write() as session:
        result = await session.execute(
            update(t.Appointment)
            .where(t.Appointment.end_at < cutoff, t.Appointment.contact_erased_at.is_(None))
            .values(caller_email="", caller_phone="", notes="", contact_erased_at=now)
        )
    return int(getattr(result, "rowcount", 0) or 0)


def _needs_push(
    state: dict[str, object], provider: str, horizon_ms: int, wanted: tuple[str, ...]
) -> bool:
    if state.get("push") != PUSH_ON:
        return True  # failed at connect, or made before pushes existed
    if provider != ProviderKind.GOOGLE.value:
        return False  # Cal.com and Calendly subscriptions do not expire
    if wanted and state.get("google_watched") != list(wanted):
        return True  # an agent now books on (or blocks with) a calendar not watched yet
    expires = state.get("google_channel_expires_ms")
    # No expiration given: Google's default lifetime applies, unknown to us; renew anyway.
    return not isinstance(expires, int) or expires <= horizon_ms


async def renew_push_subscriptions(deps: Deps) -> dict[str, int]:
    """Subscribes connections whose push is off and replaces Google channels that expire
    within ``RENEW_BEFORE`` or no longer cover the agents' calendars; returns counts. A failure
    leaves the state as it was (retried next round); the cache TTL bounds staleness meanwhile.
    A change of an agent's calendars is therefore watched from the next round on."""
    horizon_ms = int((deps.clock() + RENEW_BEFORE).timestamp() * 1000)
    counts = {"subscribed": 0, "failed": 0}
    async with deps.db.read() as session:
        rows = (
            await session.scalars(
                select(t.Connection)
                .where(
                    t.Connection.status == ConnectionStatus.CONNECTED.value,
                    t.Connection.provider.in_(_PUSHED),
                )
                .order_by(t.Connection.id)
            )
        ).all()
        wanted = await watched_calendars(
            session, [r for r in rows if r.provider == ProviderKind.GOOGLE.value]
        )
    # JSON state is filtered here, not in SQL: the same query then works on both backends.
    due = [
        r
        for r in rows
        if _needs_push(dict(r.provider_state), r.provider, horizon_ms, wanted.get(r.id, ()))
    ]
    for row in due[:BATCH]:
        old = dict(row.provider_state)
        try:
            secret = deps.cipher.decrypt(
                str(old.get("webhook_secret") or ""), context=webhook_secret_context(row.id)
            )
            provider = provider_for(deps, row)
        except (DecryptionError, CalendarError) as error:
            log.warning("push renewal for %s skipped (%s)", row.id, type(error).__name__)
            counts["failed"] += 1
            continue
        kind = ProviderKind(row.provider)
        new = await subscribe_pushes(
            deps,
            provider,
            kind,
            row.id,
            secret,
            Deadline.after(PUSH_CALL_SECONDS),
            wanted.get(row.id, ()),
        )
        if new.get("push") != PUSH_ON:
            counts["failed"] += 1
            continue
        async with deps.db.write() as session:
            current = await session.get(t.Connection, row.id)
            still = current is not None and current.status == ConnectionStatus.CONNECTED.value
            if current is not None and still:
                current.provider_state = {**without_push(current.provider_state), **new}
        if not still:
            # Disconnected meanwhile: the new subscription must not outlive it.
            old, counts["failed"] = new, counts["failed"] + 1
        else:
            counts["subscribed"] += 1
        if old.get("push") == PUSH_ON or not still:
            try:
                await provider.unsubscribe(old, Deadline.after(PUSH_CALL_SECONDS))
            except CalendarError as error:
                # Left alone it expires by itself; its notifications are refused (not stored).
                log.warning("stopping the old push of %s failed (%s)", row.id, error.reason)
    return counts


async def run_forever(deps: Deps, invalidator: Invalidator | None = None) -> None:
    """The loop started next to the gRPC server."""
    while True:
        try:
            settled = await reconcile_pending(deps, invalidator)
            await cancel_leftovers(deps)
            erased = await erase_expired_contacts(deps)
            await renew_push_subscriptions(deps)
            if settled["confirmed"] or settled["failed"] or erased:
                log.info("maintenance: settled %s, erased contact data of %d", settled, erased)
        except Exception:
            log.exception("maintenance round failed")
        await asyncio.sleep(deps.config.reconcile_interval_seconds)
