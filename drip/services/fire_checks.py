"""Fire-time checks of the message itself, called from :mod:`drip.services.fire`.

Each returns a reason (or a value) and decides nothing about the send's
state; the fire path records the outcome. They live here so that the fire
path stays gather -> decide -> deliver -> record with one call per check.

- :func:`missing_values`: a text or email whose rendering lacks a value (an
  agent with no first name) is skipped, naming the variable;
- :func:`sms_refusal`: a text over 1,600 characters is refused before any
  provider call (Twilio error 21617);
- :func:`email_text`: every email carries the unsubscribe link and the
  account's postal address (CAN-SPAM); without an address the email
  is not sent;
- :func:`unsubscribe_headers`: ``List-Unsubscribe`` and RFC 8058
  ``List-Unsubscribe-Post``;
- :func:`confirmed_by_carrier`: Twilio answers 21610 to drip's own STOP
  confirmation when Twilio already blocks the sender (it sent its own), which
  confirms the opt-out rather than failing;
- :func:`counts_for_catch_up`: only a step that went out overdue holds back
  the next overdue step of its enrollment (catch-up).
"""

from __future__ import annotations

from datetime import datetime

from drip.domain.account import AccountSettings
from drip.domain.enums import MessageKind
from drip.domain.message import MAX_BODY_CHARS, missing_reason, missing_values, too_long
from drip.domain.policy import OVERDUE_AFTER

__all__ = [
    "NO_POSTAL_ADDRESS",
    "confirmed_by_carrier",
    "counts_for_catch_up",
    "email_text",
    "missing_reason",
    "missing_values",
    "sms_refusal",
    "unsubscribe_headers",
]

#: Twilio's "Attempt to send to unsubscribed recipient".
CARRIER_OPT_OUT = 21610


def sms_refusal(text: str) -> str | None:
    """Why Twilio would refuse ``text`` (over 1,600 characters, 21617), or None."""
    if too_long(text):
        return (
            f"refused before sending: the text is {len(text)} characters with the footer, "
            f"over Twilio's limit of {MAX_BODY_CHARS} (error 21617)"
        )
    return None


def email_text(body: str, link: str, account: AccountSettings) -> str | None:
    """The email body with the unsubscribe link and the postal address; None without an address."""
    if not account.postal_address:
        return None
    return (
        f"{body}\n\n--\n{account.company}, {account.postal_address}\nTo stop these emails: {link}"
    )


NO_POSTAL_ADDRESS = (
    "skipped: campaigns/account.yaml sets no postal_address, and every email must carry "
    "the account's postal address (CAN-SPAM)"
)


def unsubscribe_headers(link: str) -> dict[str, str]:
    """The one-click unsubscribe headers of RFC 2369 and RFC 8058."""
    return {
        "List-Unsubscribe": f"<{link}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def confirmed_by_carrier(kind: MessageKind, code: int | None) -> str | None:
    """The reason to record when the refusal of ``kind`` with ``code`` confirms an opt-out."""
    if kind is MessageKind.OPT_OUT_CONFIRMATION and code == CARRIER_OPT_OUT:
        return (
            "confirmed by the carrier: Twilio already blocks this sender for the contact "
            "(21610) and sent its own opt-out confirmation"
        )
    return None


def counts_for_catch_up(due_at: datetime, catching_up: bool, now: datetime) -> bool:
    """Whether a step sent at ``now`` was overdue, so it holds back the next overdue one."""
    return catching_up or now - due_at > OVERDUE_AFTER
