"""What Twilio refuses, with Twilio's error codes, messages and JSON error body.

The codes and messages are those of Twilio's error dictionary
(https://www.twilio.com/docs/api/errors, checked 2026-11-30); the rules are
what api.twilio.com checks on a Messages create before accepting it.
"""

from __future__ import annotations

import functools
import json

__all__ = [
    "API_VERSION",
    "ERROR_MESSAGES",
    "INVALID_VALIDITY_PERIOD",
    "MAX_BODY",
    "MAX_VALIDITY_PERIOD",
    "TWILIO_HELP_WORDS",
    "TWILIO_OPT_IN_WORDS",
    "TWILIO_OPT_OUT_WORDS",
    "VALIDITY_EXPIRED",
    "error_body",
    "error_message",
    "invalid_content",
    "keyword",
    "missing_parameter",
    "num_segments",
    "valid_to",
    "validity_refused",
]

API_VERSION = "2010-04-01"
#: Twilio's limit on a message body (21617 beyond it).
MAX_BODY = 1600
#: Twilio accepts a ValidityPeriod of 1 to 36,000 seconds (error 21624 otherwise;
#: https://www.twilio.com/docs/api/errors/21624, checked 2026-11-30).
MAX_VALIDITY_PERIOD = 36_000
INVALID_VALIDITY_PERIOD = 21624
#: A message that waited in the sender's queue longer than its ValidityPeriod.
VALIDITY_EXPIRED = 30036

#: The messages Twilio gives for the codes drip cares about; others get a generic one.
ERROR_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    21211: "The 'To' number {to} is not a valid phone number.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number: {to}, is not currently reachable using the 'From' phone"
    " number via SMS.",
    21614: "'To' number {to} is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    INVALID_VALIDITY_PERIOD: "Invalid validity period value",
    21635: "The 'To' number {to} is a landline and cannot receive SMS.",
    30001: "Queue overflow",
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered (carrier violation)",
    VALIDITY_EXPIRED: "Validity Period Expired",
}

#: Twilio's default opt-out and opt-in keywords (the STOP filter of every long
#: code): https://help.twilio.com/hc/en-us/articles/223134027 and
#: https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out (checked 2026-11-30).
TWILIO_OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
TWILIO_OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
TWILIO_HELP_WORDS = frozenset({"HELP", "INFO"})


def error_message(code: int, to: str = "") -> str:
    """Twilio's message for ``code`` (a generic one for a code injected by a test)."""
    template = ERROR_MESSAGES.get(code, f"Error {code} (injected by the fake server)")
    return template.format(to=to)


def error_body(status: int, code: int, message: str) -> bytes:
    """Twilio's JSON error body."""
    return json.dumps(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
    ).encode()


def keyword(body: str) -> str:
    """An inbound text as Twilio's keyword filter reads it: trimmed, upper case."""
    return " ".join(body.strip().strip(".!?").split()).upper()


def num_segments(body: str) -> int:
    """How many SMS segments ``body`` takes, counted as Twilio's segment calculator does.

    GSM-7 (160/153) or else UCS-2 (70/67 units), filled by grapheme cluster:
    see :func:`drip.domain.message.sms_size`.
    """
    from drip.domain.message import sms_size

    return sms_size(body).segments


@functools.lru_cache(maxsize=4096)
def valid_to(to: str) -> bool:
    """What Twilio accepts as a ``To`` phone number (else 21211): a possible E.164 number.

    ``+1`` and ten ASCII digits is answered without parsing (parsing costs
    about 20 us a number): for country code 1 libphonenumber's only
    possible national length is 10 (7 is local only), and it strips no
    national prefix ``1`` that would leave 9 digits. tests/unit pins this
    shortcut against ``phonenumbers`` itself.
    """
    if len(to) == 12 and to.startswith("+1") and to[2:].isascii() and to[2:].isdigit():
        return True
    import phonenumbers

    try:
        number = phonenumbers.parse(to, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_possible_number(number))


def missing_parameter(form: dict[str, str]) -> tuple[int, int] | None:
    """Twilio's 400 for a create without a To, a sender or content, else None."""
    if not form.get("To", ""):
        return (400, 21604)
    if not form.get("From") and not form.get("MessagingServiceSid"):
        return (400, 21603)
    if not form.get("Body") and not form.get("MediaUrl") and not form.get("ContentSid"):
        return (400, 21602)
    return None


def invalid_content(form: dict[str, str]) -> tuple[int, int] | None:
    """Twilio's 400 for a body over 1,600 characters (21617) or a ``To`` that is not a phone
    number (21211), else None."""
    if len(form.get("Body", "")) > MAX_BODY:
        return 400, 21617
    to = form.get("To", "")
    if not to.startswith("whatsapp:") and not valid_to(to):
        return 400, 21211
    return None


def validity_refused(form: dict[str, str]) -> bool:
    """Whether the ValidityPeriod is not a whole number in 1..36,000 (Twilio's 400/21624)."""
    raw = form.get("ValidityPeriod")
    return not (raw is None or (raw.isdigit() and 1 <= int(raw) <= MAX_VALIDITY_PERIOD))
