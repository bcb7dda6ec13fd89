"""The slot engine: business hours + busy time + booking rules -> times an agent can offer.

Pure: no I/O, no database, no clock (``now`` is always an argument). Inputs and outputs are
frozen, slotted dataclasses; every invalid input is a ``ValueError`` at construction or call.

The rules it enforces:

1. Opening hours are local times in the business zone; everything else is an absolute instant,
   and all comparisons are on absolute time.
2. The windows of local date D come from the weekly hours of D's weekday, unless D has an
   override, which replaces them entirely (an override with no windows closes the day). A window
   is [start, end) in local wall time: an end of 24:00 is the next midnight; an end earlier than
   the start crosses midnight into D+1; an end equal to the start is no window. A window belongs
   to the date it starts on (an override for D never cuts a window of D-1 that runs past
   midnight). Windows are not merged.
3. A local time that does not exist (spring-forward gap) is read with the offset in force before
   the change, i.e. moved forward by the gap (02:30 becomes 03:30); a local time that occurs
   twice (fall-back) is the first occurrence. This is zoneinfo with fold=0.
4. Candidates in a window [ws, we) are s = ws + k * step in absolute time while
   s + duration <= we. Nothing else moves the grid: range start, now and notice only filter.
5. A candidate s is bookable iff s >= range start and s + duration <= range end, and (checked in
   this order, the first failure is what `SlotResult.rejected` counts):
   s >= now + minimum notice (NOTICE); with max_advance_days N, s is before the local midnight
   that starts today + N + 1, today being now's local date in the business zone (ADVANCE); the
   padded interval [s - buffer_before, s + duration + buffer_after) overlaps no busy interval
   (half-open, touching is fine, busy intervals with end <= start are ignored, buffers are
   checked against busy time only, not window edges) (BUSY); and with daily_cap set,
   day_counts.get(local date of s, 0) < daily_cap (DAILY_CAP).
6. Output: unique starts, sorted, with end times, in UTC; `to_local` and `voice_label` render
   them in any caller time zone.

Modules: `rules` (inputs), `windows` (local windows -> absolute intervals), `busy` (busy-time
index), `engine` (candidates and filters), `offers` (which slots to read out), `render` (local
times and spoken labels), `reuse` (how long an answer holds as the clock moves), `zones` (zone
lookup and exact epoch arithmetic).
"""

from .engine import compute_slots, filter_offered_starts
from .offers import LOOKAHEAD_DAYS, first_available, nearest, spread
from .render import to_local, voice_label
from .results import Slot, SlotRejection, SlotResult
from .reuse import reusable_until
from .rules import Interval, LocalWindow, SlotRules
from .windows import windows_for_date

__all__ = [
    "LOOKAHEAD_DAYS",
    "Interval",
    "LocalWindow",
    "Slot",
    "SlotRejection",
    "SlotResult",
    "SlotRules",
    "compute_slots",
    "filter_offered_starts",
    "first_available",
    "nearest",
    "reusable_until",
    "spread",
    "to_local",
    "voice_label",
    "windows_for_date",
]
