"""``retention: {message_bodies_days: N}`` in account.yaml: read, defaulted from data, refused when wrong."""

from __future__ import annotations

import json
import re
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drip.campaigns.account_file import load_account
from drip.domain.account import AccountSettings
from drip.domain.retention import Retention
from drip.errors import CampaignError, ValidationError
from drip.facts import retention_days

ROOT = Path(__file__).resolve().parents[2]


def _load(tmp_path: Path, text: str) -> AccountSettings:
    path = tmp_path / "account.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_account(path)


def test_the_default_is_the_four_year_limitation_period_from_cited_data() -> None:
    """Without the section, bodies are kept 1,461 days, a number read from a file citing
    28 U.S.C. 1658 with the date it was checked."""
    data = json.loads((ROOT / "drip" / "data" / "retention.json").read_text("utf-8"))
    period = data["limitation_period"]
    assert "28 U.S.C. 1658" in period["source"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", period["checked"])
    assert retention_days() == period["message_bodies_days"] == 1461
    assert AccountSettings().retention == Retention(1461)
    assert load_account(ROOT / "campaigns").retention.message_bodies_days == 1461


def test_a_given_period_is_read_and_sets_the_cutoff(tmp_path: Path) -> None:
    """message_bodies_days: 90 reaches the settings; the cutoff is now minus 90 days."""
    account = _load(tmp_path, "retention: {message_bodies_days: 90}\n")
    now = datetime(2026, 12, 7, tzinfo=UTC)
    assert account.retention.cutoff(now) == now - timedelta(days=90)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("retention: {message_bodies_days: 0}\n", "message_bodies_days"),
        ("retention: {message_bodies_days: 2.5}\n", "whole number"),
        ("retention: {message_bodies_days: 1461, consent_days: 3}\n", "consent_days"),
        ("retention: 1461\n", "retention"),
    ],
)
def test_a_wrong_retention_is_a_located_error(tmp_path: Path, text: str, message: str) -> None:
    """Zero, a fraction, an unknown key or a bare number: an error with file:line:col."""
    with pytest.raises(CampaignError) as info:
        _load(tmp_path, text)
    assert any(
        re.search(r"account\.yaml:1:\d+: error: .*" + message, p) for p in info.value.problems
    )


def test_the_value_is_frozen_and_checked() -> None:
    """Retention is immutable and refuses a period below one day."""
    with pytest.raises(ValidationError):
        Retention(0)
    with pytest.raises(AttributeError):
        Retention(10).message_bodies_days = 5  # type: ignore[misc]
