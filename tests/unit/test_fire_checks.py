"""The pure fire-time checks of issue 11."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from drip.domain.account import AccountSettings
from drip.domain.enums import MessageKind
from drip.domain.message import ACCOUNT_TEMPLATE_VARIABLES
from drip.services import fire_checks

NOW = datetime(2026, 6, 2, 21, 0, tzinfo=UTC)


def test_missing_values_names_each_empty_variable_once_in_order() -> None:
    """Blank and absent values are missing; literal braces and unknown names are not."""
    values = {"AgentFirstName": "  ", "VisitorFirstName": "Dana", "CompanyName": "Acme"}
    missing = fire_checks.missing_values(
        ("I'm {AgentFirstName} {AgentLastName}, {VisitorFirstName} {x}", "{AgentFirstName}"),
        values,
        ACCOUNT_TEMPLATE_VARIABLES,
    )
    assert missing == ["AgentFirstName", "AgentLastName"]
    assert "{AgentFirstName}, {AgentLastName} have no value" in fire_checks.missing_reason(missing)


def test_sms_refusal_only_past_1600() -> None:
    """1,600 characters pass; 1,601 are refused, naming 21617."""
    assert fire_checks.sms_refusal("a" * 1600) is None
    reason = fire_checks.sms_refusal("a" * 1601)
    assert reason is not None and "21617" in reason and "1601" in reason


def test_email_text_carries_the_postal_address_and_the_link() -> None:
    """With an address, the body ends with it and the link; without one, no email."""
    account = AccountSettings(company="Acme Realty", postal_address="1 Main St, Boston, MA")
    text = fire_checks.email_text("Hello", "https://x.example/unsubscribe/1.a", account)
    assert text is not None
    assert "Acme Realty, 1 Main St, Boston, MA" in text
    assert text.endswith("https://x.example/unsubscribe/1.a")
    assert fire_checks.email_text("Hello", "https://x", AccountSettings()) is None


def test_unsubscribe_headers_are_rfc_8058() -> None:
    """List-Unsubscribe in angle brackets and the one-click POST header."""
    assert fire_checks.unsubscribe_headers("https://x/u/1") == {
        "List-Unsubscribe": "<https://x/u/1>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def test_only_21610_on_our_own_opt_out_confirmation_is_confirmed_by_the_carrier() -> None:
    """Any other kind or code is an ordinary refusal."""
    assert fire_checks.confirmed_by_carrier(MessageKind.OPT_OUT_CONFIRMATION, 21610)
    assert fire_checks.confirmed_by_carrier(MessageKind.HELP, 21610) is None
    assert fire_checks.confirmed_by_carrier(MessageKind.CAMPAIGN, 21610) is None
    assert fire_checks.confirmed_by_carrier(MessageKind.OPT_OUT_CONFIRMATION, 30003) is None


def test_only_overdue_steps_count_for_catch_up() -> None:
    """On time (or within the hour) does not count; overdue or already catching up does."""
    assert not fire_checks.counts_for_catch_up(NOW - timedelta(minutes=30), False, NOW)
    assert fire_checks.counts_for_catch_up(NOW - timedelta(hours=2), False, NOW)
    assert fire_checks.counts_for_catch_up(NOW, True, NOW)
