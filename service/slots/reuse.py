"""How long a computed answer stays the answer while only the clock moves.

Between two calls with the same rules, range, busy time and day counts, only ``now`` differs,
and ``now`` enters through two rules (see the package docstring, rule 5):

- NOTICE: the earliest bookable start is now + minimum notice, so a later ``now`` only removes
  slots, earliest first. The answer holds while the earliest slot is still far enough away.
- ADVANCE: the last bookable local date moves later with ``now`` and can add slots at the far
  end. A range that ends more than a day before now + max_advance_days was not cut by it, and
  will not be; nearer the edge the answer is not reused at all.

An empty answer is not reused: its rejection counts (which explain it) shift as now moves.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .results import SlotResult
from .rules import SlotRules


def reusable_until(
    rules: SlotRules, result: SlotResult, now: datetime, range_end: datetime
) -> datetime | None:
    """The instant before which ``result`` (computed at ``now`` for a range ending at
    ``range_end``) is also the answer at any later now; None when it may not be reused."""
    if not result.slots:
        return None
    if rules.max_advance_days is not None and range_end + timedelta(days=1) > now + timedelta(
        days=rules.max_advance_days
    ):
        return None
    return result.slots[0].start - rules.minimum_notice
