"""The rule-pack table of docs/compliance.md says what ``drip/rules/us.yaml`` says (issue 10).

Each row of the table under "## The state rule pack" is checked against the
bundled row of its state: the same states, the weekday hours, every
per-weekday window, the days with no texts, the 24-hour cap, and a
reference that cites the row's own source (a section number of it).
"""

from __future__ import annotations

import re
from pathlib import Path

from drip.domain.window import StateRule
from drip.rules import bundled_state_rules

README = Path(__file__).resolve().parents[2] / "docs" / "compliance.md"
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SHORT = {"Saturday": "Sat", "Sunday": "Sunday"}
#: A section number in a citation: 501.616, 775C.1, 14-4501, 45:844.11, 770-X-5-.17.
#: The page writes hours with an en dash.
DASH = "\u2013"
CITATION = re.compile(r"\d[\w]*(?:[.:-][\w.]*\d\w*)+")


def _rows() -> dict[str, list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## The state rule pack", 1)[1]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"[A-Z]{2}", cells[0]):
            rows[cells[0]] = cells
        elif rows and not line.startswith("|"):
            break
    return rows


def _hours(window: object) -> str:
    return f"{window.start:%H:%M}{DASH}{window.end:%H:%M}"  # type: ignore[attr-defined]


def _check(rule: StateRule, cells: list[str]) -> list[str]:
    _state, hours, days, cap, reference = cells
    problems: list[str] = []
    if _hours(rule.window) not in hours:
        problems.append(f"hours {hours!r} lack {_hours(rule.window)}")
    for weekday, window in rule.days:
        name = DAYS[weekday]
        if window is None:
            if f"no {name}s" not in days:
                problems.append(f"days {days!r} do not say no {name}s")
        elif f"{SHORT.get(name, name)} {_hours(window)}" not in hours:
            problems.append(f"hours {hours!r} lack {name} {_hours(window)}")
    if rule.holidays != ("holidays" in days):
        problems.append(f"days {days!r} and holidays: {rule.holidays} disagree")
    wanted_cap = f"{rule.max_per_24h} per 24 h" if rule.max_per_24h else ""
    if cap != wanted_cap:
        problems.append(f"cap {cap!r}, the pack says {wanted_cap!r}")
    cited = CITATION.findall(reference)
    if not any(number in rule.source for number in cited):
        problems.append(f"reference {reference!r} cites none of the source {rule.source!r}")
    return problems


def test_the_readme_table_lists_every_bundled_row_and_no_other() -> None:
    """The states of the README table are the states of the bundled pack."""
    assert set(_rows()) == {rule.state for rule in bundled_state_rules()}


def test_each_readme_row_matches_its_bundled_row() -> None:
    """Hours, per-weekday windows, closed days, holidays, cap and citation agree with us.yaml."""
    rows = _rows()
    problems = {
        rule.state: found
        for rule in bundled_state_rules()
        if (found := _check(rule, rows[rule.state]))
    }
    assert problems == {}


def test_the_check_catches_a_wrong_row() -> None:
    """A README row with another cap or hours than the pack is reported."""
    florida = next(r for r in bundled_state_rules() if r.state == "FL")
    cells = list(_rows()["FL"])
    cells[1], cells[3] = f"08:00{DASH}21:00", ""
    problems = _check(florida, cells)
    assert any("hours" in p for p in problems)
    assert any("cap" in p for p in problems)
