"""Confirmation emails: composing the MIME message and handing it to the SMTP server.

The message is multipart/mixed: a text/plain + text/html alternative, and the invite as a
``text/calendar; method=...`` attachment. Its Message-ID and Date come from the outbox row, so
every attempt at the same row produces the same message: if a crash falls between the server's
"250 accepted" and our commit, the resend carries the same Message-ID and receivers (and
people) can tell it is the same mail. SMTP has no idempotency of its own; that is the one
at-least-once window left.
"""

from __future__ import annotations

import re
import ssl
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

import aiosmtplib

from service.config import Settings
from service.notify.delivery import DeliveryError, Rendered

MESSAGE_ID_DOMAIN = "calendar.gleam.dev"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# CRLF, and headers folded only past RFC 5322's hard limit: Python's folding at 78 puts a
# header that nearly fits on a line of its own ("Subject:" CRLF " text"), which some
# parsers read back with a leading space. Our headers are short (subjects <= 250).
WIRE = policy.SMTP.clone(max_line_length=998)


def message_id(outbox_id: str) -> str:
    """Stable per outbox row: the same row always becomes the same Message-ID."""
    return f"<{outbox_id}@{MESSAGE_ID_DOMAIN}>"


def one_line(value: str) -> str:
    """Header-safe text: caller- and account-supplied names must not add header lines."""
    return _CONTROL.sub(" ", value).strip()


def smtp_configured(config: Settings) -> bool:
    return bool(config.smtp_host and config.smtp_from)


def compose(
    *,
    outbox_id: str,
    created_at: datetime,
    sender: str,
    sender_name: str,
    recipient: str,
    recipient_name: str,
    reply_to: str,
    rendered: Rendered,
    ics: bytes,
    method: str,
) -> EmailMessage:
    msg = EmailMessage(policy=WIRE)
    msg["Message-ID"] = message_id(outbox_id)
    msg["Date"] = format_datetime(created_at)
    msg["From"] = formataddr((one_line(sender_name), sender))
    msg["To"] = formataddr((one_line(recipient_name), recipient))
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = one_line(rendered.subject)[:250]
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    msg.add_attachment(
        ics,
        maintype="text",
        subtype="calendar",
        filename="invite.ics" if method != "CANCEL" else "cancel.ics",
        params={"method": method},
    )
    return msg


async def send(config: Settings, msg: EmailMessage, recipient: str) -> None:
    """One SMTP delivery; DeliveryError (permanent for 5xx refusals) on failure."""
    wants_tls = config.smtp_tls or config.smtp_starttls
    tls_context = ssl.create_default_context() if wants_tls else None
    try:
        await aiosmtplib.send(
            msg.as_bytes(policy=WIRE),
            sender=config.smtp_from,
            recipients=[recipient],
            hostname=config.smtp_host,
            port=config.smtp_port,
            username=config.smtp_username or None,
            password=config.smtp_password or None,
            use_tls=config.smtp_tls,
            # False, not None: None would upgrade whenever offered, a choice config makes.
            start_tls=config.smtp_starttls and not config.smtp_tls,
            tls_context=tls_context,
            timeout=config.smtp_timeout_seconds,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = sorted({r.code for r in exc.recipients})
        raise DeliveryError(
            f"smtp: recipient refused ({codes})", permanent=all(500 <= c < 600 for c in codes)
        ) from exc
    except aiosmtplib.SMTPDataError as exc:
        # 5xx to the message itself is a definite no; 4xx asks us to come back later.
        raise DeliveryError(
            f"smtp: message refused ({exc.code})", permanent=500 <= exc.code < 600
        ) from exc
    except aiosmtplib.SMTPResponseException as exc:
        # Login or sender refusals are our configuration, not the message: keep retrying so
        # fixing the configuration delivers what is queued.
        raise DeliveryError(f"smtp: server answered {exc.code}") from exc
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise DeliveryError(f"smtp: {type(exc).__name__}") from exc
