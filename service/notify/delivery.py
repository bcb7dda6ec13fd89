"""What a channel reports when a delivery attempt fails, and the text each message carries.

``DeliveryError.reason`` is stored in ``outbox.last_error`` and logged, so it never holds an
address, a phone number or a message body: only codes and the kind of failure.
"""

from __future__ import annotations

from dataclasses import dataclass


class DeliveryError(Exception):
    """An attempt failed. Permanent ones are not retried (e.g. the recipient was refused)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason[:500]
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class Rendered:
    """One message's words, after the account's templates were filled in."""

    subject: str
    text: str
    html: str
    sms: str
