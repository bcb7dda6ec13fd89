"""Our own count of Calendly "Create Event Invitee" calls, so we refuse before Calendly does.

Calendly limits ``POST /invitees`` separately from its general API limit (paid non-Enterprise
plans: 10 a minute, 50 an hour, 100 a day). A refusal from us costs nothing; a 429 from Calendly
costs a provider round trip during a live call. The counters are in-process sliding windows keyed
by connection id: each replica counts only its own calls, so with N replicas the provider may
still refuse first (its 429 then maps to the same PROVIDER_RATE_LIMITED); a shared store would be
needed for an exact cluster-wide count.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from service.errors import ProviderRateLimited

PROVIDER = "CALENDLY"

# Create Event Invitee limits of Calendly's paid non-Enterprise plans (since 2026-04-15).
INVITEES_PER_MINUTE = 10
INVITEES_PER_HOUR = 50
INVITEES_PER_DAY = 100
INVITEE_LIMITS: tuple[tuple[timedelta, int], ...] = (
    (timedelta(minutes=1), INVITEES_PER_MINUTE),
    (timedelta(hours=1), INVITEES_PER_HOUR),
    (timedelta(days=1), INVITEES_PER_DAY),
)
_LONGEST = max(window for window, _ in INVITEE_LIMITS)


class InviteeUsage:
    """Sliding-window counters of booking calls per connection, plus provider-imposed pauses."""

    def __init__(self, limits: tuple[tuple[timedelta, int], ...] = INVITEE_LIMITS) -> None:
        self._limits = limits
        self._calls: dict[str, deque[datetime]] = {}
        self._paused_until: dict[str, datetime] = {}

    def reserve(self, connection_id: str, now: datetime) -> None:
        """Counts one call, or raises ProviderRateLimited if it would exceed a limit.

        Check and count happen with no await between them, so concurrent bookings on one event
        loop cannot both take the last unit.
        """
        paused = self._paused_until.get(connection_id)
        if paused is not None:
            if paused > now:
                raise ProviderRateLimited(PROVIDER, (paused - now).total_seconds())
            del self._paused_until[connection_id]
        calls = self._calls.setdefault(connection_id, deque())
        while calls and calls[0] <= now - _LONGEST:
            calls.popleft()
        wait = 0.0
        for window, limit in self._limits:
            inside = [c for c in calls if c > now - window]
            if len(inside) >= limit:
                # Free again when the oldest call that counts against the limit leaves the window.
                oldest = inside[len(inside) - limit]
                wait = max(wait, (oldest + window - now).total_seconds())
        if wait > 0:
            raise ProviderRateLimited(PROVIDER, wait)
        calls.append(now)

    def pause(self, connection_id: str, until: datetime) -> None:
        """Calendly said 429: refuse locally until its reset instead of asking again."""
        current = self._paused_until.get(connection_id)
        if current is None or until > current:
            self._paused_until[connection_id] = until

    def forget(self, connection_id: str) -> None:
        self._calls.pop(connection_id, None)
        self._paused_until.pop(connection_id, None)


# One per process: adapters are built per request, the counts must outlive them.
USAGE = InviteeUsage()
