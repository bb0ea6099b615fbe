"""`drip preview` warns ahead about empty variables (SPEC §4, issue 11)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from drip.campaigns.loader import load_campaign
from drip.campaigns.preview import preview
from drip.domain.account import AccountSettings, AgentProfile

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
YAML = """\
name: empties
kind: nurture
steps:
  - id: hello
    day: 0
    body: "Hi {VisitorFirstName} {VisitorLastName}, it's {AgentFirstName} with {CompanyName}."
  - id: plain
    day: 1
    body: "Hi {VisitorFirstName}, any questions about the homes?"
"""


def test_a_step_with_an_empty_variable_is_shown_skipped_naming_it(tmp_path: Path) -> None:
    """A contact with no last name: the step using it is skipped, the other one sent."""
    path = tmp_path / "c.yaml"
    path.write_text(YAML, encoding="utf-8")
    result = preview(load_campaign(path), AccountSettings(), now=NOW, contact=("Dana", ""))

    rows = {r.label: r for r in result.rows}
    assert rows["hello"].outcome == "skipped"
    assert "{VisitorLastName}" in rows["hello"].reason
    assert rows["plain"].outcome == "sent"
    assert "{VisitorLastName}" not in rows["plain"].text


def test_warnings_name_steps_some_contacts_will_not_get(tmp_path: Path) -> None:
    """Without a default agent, agent variables are warned about; with one, only last names."""
    path = tmp_path / "c.yaml"
    path.write_text(YAML, encoding="utf-8")
    campaign = load_campaign(path)

    bare = preview(campaign, AccountSettings(), now=NOW).warnings
    agent = AccountSettings(default_agent=AgentProfile("Sam", "Lee", "+16175550100"))
    with_agent = preview(campaign, agent, now=NOW).warnings

    assert any("{AgentFirstName}" in w for w in bare)
    assert not any("{AgentFirstName}" in w for w in with_agent)
    assert [w.split(":")[0] for w in with_agent] == ["hello"]
    assert "{VisitorLastName}" in with_agent[0]
    assert "Subject: None" not in str(preview(campaign, agent, now=NOW).as_dict())
