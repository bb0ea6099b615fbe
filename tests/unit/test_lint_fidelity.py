"""Lint errors of issue 11: 1,600 characters with the footer, postal address, reply sender."""

from __future__ import annotations

import textwrap
from pathlib import Path

from drip.campaigns.fidelity import WORST_CASE_VALUES, length_problem
from drip.campaigns.lint import lint_paths
from drip.domain.account import AccountSettings
from drip.domain.message import render, with_footer

FOOTER = "Reply STOP to opt out."
ACCOUNT = AccountSettings(company="Acme Realty", footer=FOOTER, postal_address="1 Main St, Boston")


def write(tmp_path: Path, steps: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(
        f"name: {path.stem}\nkind: smart_drip\nsteps:\n" + textwrap.dedent(steps), encoding="utf-8"
    )
    return path


def body_of_length(total: int) -> str:
    """A body that, with the footer appended (one blank between), is ``total`` characters."""
    return "x" * (total - len(FOOTER) - 1)


def test_1600_characters_with_the_footer_pass_and_1601_are_an_error(tmp_path: Path) -> None:
    """Exactly 1,600 with the footer lints clean; 1,601 is a located error naming 21617."""
    ok = write(tmp_path, f'- day: 0\n  body: "{body_of_length(1600)}"\n', "ok.yaml")
    bad = write(tmp_path, f'- day: 0\n  body: "{body_of_length(1601)}"\n', "bad.yaml")

    assert not [e for e in lint_paths([ok], account=ACCOUNT).errors if "1,600" in e]
    errors = lint_paths([bad], account=ACCOUNT).errors

    assert len(errors) == 1
    assert errors[0].startswith(f"{bad}:5:9: error: step 1")
    assert "21617" in errors[0] and "1601 characters" in errors[0]


def test_names_are_filled_in_before_measuring() -> None:
    """A body under the limit as written but over it with long names is an error."""
    body = "{AgentPhone} " + "y" * (1600 - len(FOOTER) - 1 - 14)
    assert len(with_footer(body, FOOTER)) <= 1600
    assert len(with_footer(render(body, WORST_CASE_VALUES), FOOTER)) > 1600
    assert length_problem(body, FOOTER, "Acme") is not None


def test_the_loader_refuses_a_text_too_long_even_with_its_own_footer(tmp_path: Path) -> None:
    """Without an account, the campaign's default footer is measured: the file loads nothing."""
    bad = write(tmp_path, '- day: 0\n  body: "' + "z" * 1700 + '"\n')
    report = lint_paths([bad])
    assert report.campaigns == 0
    assert any("21617" in e for e in report.errors)


def test_an_email_step_without_a_postal_address_is_an_error(tmp_path: Path) -> None:
    """CAN-SPAM: an email step while account.yaml has no postal_address is a lint error."""
    path = write(
        tmp_path,
        '- day: 0\n  body: "Hi {VisitorFirstName}, it\'s Acme Realty."\n'
        '- day: 2\n  channel: email\n  subject: "Homes"\n  body: "Hello"\n',
    )
    without = lint_paths([path], account=AccountSettings(company="Acme Realty"))
    with_address = lint_paths([path], account=ACCOUNT)

    assert [e for e in without.errors if "postal_address" in e] == [
        f"{path}:6:3: error: step 2: " + without.errors[0].split(": step 2: ", 1)[1]
    ]
    assert not [e for e in with_address.errors if "postal_address" in e]


def test_an_account_without_default_agent_or_default_sender_is_an_error(tmp_path: Path) -> None:
    """Nobody could send the opt-in confirmation of a registration without an agent."""
    (tmp_path / "account.yaml").write_text("company: Acme Realty\n", encoding="utf-8")
    write(tmp_path, '- day: 0\n  body: "Hi {VisitorFirstName}, it\'s Acme Realty."\n')
    assert any("default_sender" in e for e in lint_paths([tmp_path]).errors)

    (tmp_path / "account.yaml").write_text(
        'company: Acme Realty\ndefault_sender: "+16175550199"\n', encoding="utf-8"
    )
    assert lint_paths([tmp_path]).errors == []
