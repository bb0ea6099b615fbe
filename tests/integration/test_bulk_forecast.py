"""``drip bulk --dry-run`` says when the last text leaves and how many slip (SPEC §4a)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner
from freezegun import freeze_time

from drip.cli import app as drip_cli
from drip.domain.pacing import Senders
from drip.services.bulk import BulkFilters, plan_bulk, schedule_bulk
from drip.services.pacing import forecast_bulk, forecast_lines, forecast_pending

if TYPE_CHECKING:
    from conftest import Rig

TEN_AM_NY = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # the rig's start: Monday 10:00 in New York
BODY = "Hi {VisitorFirstName}, new homes just listed near you this week. Want the list?"


def _default_rate(rig: Rig) -> None:
    """The rig's account with the default senders (1 segment/s), not the tests' fast ones."""
    rig.deps = replace(rig.deps, account=replace(rig.deps.account, senders=Senders()))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"])  # 20,000 contacts: one backend is enough
def test_a_dry_run_bulk_to_20000_contacts_of_one_agent_prints_when_its_last_text_leaves(
    rig: Rig, tmp_path: Path
) -> None:
    """At 10:00, 20,000 two-segment texts of one long code, paced at 1 segment/s less drip's
    20 % margin: the last leaves at 20:59:57 and 3,500 slip to the next day."""
    rig.add_contacts(20_000)
    project = tmp_path / "new-user"  # no account.yaml: the defaults a new user gets
    project.mkdir()
    env = {
        "DRIP_DATABASE_URL": rig.deps.settings.database_url,
        "DRIP_HOME": str(project),
        "DRIP_CAMPAIGNS_DIR": str(project),
        "DRIP_LOG_LEVEL": "WARNING",
        "DRIP_LOG_FORMAT": "json",
    }
    with freeze_time(TEN_AM_NY):
        result = CliRunner().invoke(drip_cli, ["bulk", BODY, "--dry-run"], env=env)

    assert result.exit_code == 0, result.output
    out = result.output
    assert "20000 of 20000 contacts will get this text" in out
    assert (
        "pacing forecast: 20000 texts from 1 sender number(s); the last leaves at "
        "2026-03-02 20:59:57 America/New_York"
    ) in out
    assert "3500 slip to the next opening of their window" in out
    assert re.search(
        r"\+16175550100 at 1 segment\(s\)/s \(drip paces 0.833/s, a 20% margin\): "
        r"20000 texts, 33000 segments today",
        out,
    )
    assert "dry run: nothing scheduled" in out
    assert rig.states() == {}


def test_the_forecast_of_pending_sends_is_what_drip_queue_shows(rig: Rig) -> None:
    """forecast_pending: scheduled bulk texts leave from now at the sender's paced rate."""
    _default_rate(rig)
    rig.add_contacts(30)
    plan = plan_bulk(rig.deps, BODY, BulkFilters(), rig.now)
    planned = forecast_bulk(rig.deps, BODY, plan.recipients, rig.now)
    schedule_bulk(rig.deps, plan, rig.now)

    pending = forecast_pending(rig.deps, rig.now)
    again = forecast_bulk(rig.deps, BODY, plan.recipients, rig.now)

    assert pending == planned
    # A second bulk to the same contacts goes after the 30 texts now queued.
    assert again.ahead == 30
    assert again.last_at == planned.last_at + timedelta(seconds=30 * 2 * 1.2)
    assert "after 30 text(s) already queued" in forecast_lines(again, "America/New_York")[1]
    assert pending.texts == 30
    assert pending.slipping == 0
    # Two segments each (the first text carries the footer) at 1 / 1.2 segment/s.
    assert pending.last_at == rig.now + timedelta(seconds=29 * 2 * 1.2)
    lines = forecast_lines(pending, "America/New_York")
    assert lines[0].endswith("the last leaves at 2026-03-02 10:01:09 America/New_York")


def test_drip_queue_shows_each_senders_forecast(rig: Rig) -> None:
    """queue_view: the SMS row of a sender says when its last text leaves; the lines say it too."""
    from drip.services.queue import queue_view

    _default_rate(rig)
    rig.add_contacts(30)
    plan = plan_bulk(rig.deps, BODY, BulkFilters(), rig.now)
    schedule_bulk(rig.deps, plan, rig.now)

    view = queue_view(rig.deps, rig.now)

    (row,) = view.rows
    assert row.due_now == 30
    assert row.pacing == "last leaves 2026-03-02 10:01 (America/New_York)"
    assert view.forecast[0].endswith("the last leaves at 2026-03-02 10:01:09 America/New_York")
    assert view.as_dict()["rows"][0]["pacing"] == row.pacing
