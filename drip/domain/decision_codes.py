"""The codes of a send decision: why a text was skipped or deferred, and its footer rule.

:mod:`drip.domain.policy` decides and re-exports them; records, reports and
metrics label decisions with these values, so they never change once shipped.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DeferCode", "FooterRule", "SkipCode"]


class FooterRule(StrEnum):
    """Why a text did or did not carry the opt-out footer (F1-F5)."""

    F1_INITIAL = "F1"
    F2_TWO_WAY = "F2"
    F3_RECURRING = "F3"
    F4_RECENT = "F4"
    F5_ALWAYS = "F5"
    COMPLIANCE = "compliance"
    NOT_SMS = "not_sms"


class SkipCode(StrEnum):
    NO_PHONE = "no_phone"
    NO_CONSENT = "no_consent"
    OPTED_OUT = "opted_out"
    CANNOT_BE_TEXTED = "cannot_be_texted"
    UNDELIVERABLE = "undeliverable"
    NO_EMAIL = "no_email"
    EMAIL_OPTED_OUT = "email_opted_out"
    #: The text could not go before its expiry (window, caps): never sent late.
    EXPIRED = "expired"
    #: The reassigned-numbers check says the number changed hands after the consent.
    NUMBER_REASSIGNED = "number_reassigned"


class DeferCode(StrEnum):
    WINDOW = "window"
    STATE_CAP = "state_cap"
    CATCH_UP = "catch_up"
    CLOSED_DAY = "closed_day"
    HOLIDAY = "holiday"
    BLACKOUT = "blackout"
    #: The sender has no capacity now (pacing).
    PACING = "pacing"
    #: Too little of the window is left for the text to leave the carrier's queue.
    CARRIER_CLOCK = "carrier_clock"
    #: The contact already had the account's most campaign and bulk texts in its span.
    FREQUENCY_CAP = "frequency_cap"
    #: The reassigned-numbers check gave no answer (``on_unknown: defer``).
    REASSIGNED_CHECK_UNAVAILABLE = "reassigned_check_unavailable"
