"""The time an RPC has left, carried down to provider calls."""

from __future__ import annotations

import time
from dataclasses import dataclass

# Used when a client sends no deadline: a live call never waits longer than this anyway.
DEFAULT_BUDGET_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Deadline:
    expires_at: float  # time.monotonic() clock

    @classmethod
    def after(cls, seconds: float | None) -> Deadline:
        budget = DEFAULT_BUDGET_SECONDS if seconds is None else seconds
        return cls(time.monotonic() + budget)

    def remaining(self) -> float:
        return max(0.0, self.expires_at - time.monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0.0
