"""How messages leave drip: the transport protocols and their implementations.

- :mod:`drip.transports.base`: ``OutboundSms`` / ``OutboundEmail``, receipts,
  the ``SmsTransport`` / ``EmailTransport`` protocols, ``SmsSendError`` and
  ``classify_twilio_error``.
- :class:`ConsoleTransport`: embedded mode, prints and keeps a JSON Lines outbox.
- :class:`RecordingTransport`: in memory, for replay and QA, with failure injection.
- :class:`TwilioSmsTransport`: Twilio's Messages API through the official SDK.
- :class:`SmtpEmailTransport`: email over SMTP (plain, STARTTLS or TLS).
- :mod:`drip.transports.pacing`: each sender number's throughput, shared by every
  worker through Redis (:class:`~drip.transports.pacing.RedisPacer`) or kept in
  process (:class:`~drip.transports.pacing.LocalPacer`).

The Twilio and SMTP transports are imported on first use, so that importing
this package does not load the twilio SDK and requests (about 0.1 s); the
recording transport too (replay and tests only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drip.transports.base import (
    EmailReceipt,
    EmailTransport,
    ErrorClass,
    OutboundEmail,
    OutboundSms,
    SmsReceipt,
    SmsSendError,
    SmsTransport,
    classify_twilio_error,
)
from drip.transports.console import ConsoleTransport

if TYPE_CHECKING:
    from drip.transports.recording import RecordingTransport
    from drip.transports.smtp_email import SmtpEmailTransport
    from drip.transports.twilio_sms import TwilioSmsTransport

__all__ = [
    "ConsoleTransport",
    "EmailReceipt",
    "EmailTransport",
    "ErrorClass",
    "OutboundEmail",
    "OutboundSms",
    "RecordingTransport",
    "SmsReceipt",
    "SmsSendError",
    "SmsTransport",
    "SmtpEmailTransport",
    "TwilioSmsTransport",
    "classify_twilio_error",
]


def __getattr__(name: str) -> Any:
    if name == "RecordingTransport":
        from drip.transports.recording import RecordingTransport

        return RecordingTransport
    if name == "TwilioSmsTransport":
        from drip.transports.twilio_sms import TwilioSmsTransport

        return TwilioSmsTransport
    if name == "SmtpEmailTransport":
        from drip.transports.smtp_email import SmtpEmailTransport

        return SmtpEmailTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
