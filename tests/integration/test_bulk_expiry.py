"""``drip bulk --expires-at``: a bulk text that cannot go by its expiry is skipped, never late.

The "Open house Saturday 1-3pm" of the issue: a bulk about Saturday must
never go out on Sunday. The command runs in-process (click's runner, the
real ``drip`` app) at frozen instants on the rig's database; the sends fire
through dispatch against the fake Twilio server.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from click.testing import CliRunner, Result
from freezegun import freeze_time
from sqlalchemy import select

from drip.cli import app as drip_cli
from drip.domain.enums import SendState
from drip.domain.pacing import Senders
from drip.services.bulk import BulkFilters, BulkPlan, plan_bulk, schedule_bulk
from drip.services.pacing import forecast_bulk
from drip.store.models import ScheduledSend

if TYPE_CHECKING:
    from conftest import Rig

NY = "America/New_York"
BODY = "Hi {VisitorFirstName}, open house Saturday 1-3pm at 12 Elm St. Come by!"


def ny(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant of June 2026 given as New York wall time (EDT, UTC-4)."""
    return datetime(2026, 6, day, hour, minute, tzinfo=ZoneInfo(NY)).astimezone(UTC)


FRIDAY_22 = ny(5, 22)
SATURDAY_9 = ny(6, 9)
SATURDAY_1PM = ny(6, 13)
SATURDAY_2130 = ny(6, 21, 30)
SUNDAY_10 = ny(7, 10)


def drip(rig: Rig, project: Path, at: datetime, *args: str) -> Result:
    """``drip ARGS`` on the rig's database with ``project`` as home, the clock frozen at ``at``."""
    env = {
        "DRIP_DATABASE_URL": rig.deps.settings.database_url,
        "DRIP_HOME": str(project),
        "DRIP_CAMPAIGNS_DIR": str(project),
        "DRIP_DEFAULT_TIMEZONE": NY,
        "DRIP_LOG_LEVEL": "WARNING",
        "DRIP_LOG_FORMAT": "json",
    }
    with freeze_time(at):
        return CliRunner().invoke(drip_cli, list(args), env=env)


def project_with(tmp_path: Path, account_yaml: str = "") -> Path:
    """A project folder whose account.yaml holds ``account_yaml`` (none when empty)."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    if account_yaml:
        (project / "account.yaml").write_text(account_yaml, encoding="utf-8")
    return project


def bulk_rows(rig: Rig) -> list[tuple[int, SendState, datetime | None]]:
    """Every bulk send as (contact, state, expires_at)."""
    with rig.deps.sessions() as session:
        sends = session.scalars(
            select(ScheduledSend)
            .where(ScheduledSend.bulk_id.is_not(None))
            .order_by(ScheduledSend.id)
        )
        return [(s.contact_id, s.state, s.expires_at) for s in sends]


def test_an_open_house_bulk_queued_saturday_evening_with_a_saturday_expiry_never_goes_sunday(
    rig: Rig, tmp_path: Path
) -> None:
    """Saturday 21:30 (window closed), --expires-at "Saturday 13:00": exit 1, nothing queued,
    and Sunday's dispatch sends nothing."""
    rig.add_contacts(3)
    rig.at(SATURDAY_2130)

    result = drip(
        rig, project_with(tmp_path), SATURDAY_2130,
        "bulk", BODY, "--expires-at", "2026-06-06 13:00", "--yes",
    )  # fmt: skip

    assert result.exit_code == 1
    assert (
        "--expires-at 2026-06-06 13:00 America/New_York is already past "
        "(it is 2026-06-06 21:30 America/New_York); nothing scheduled"
    ) in result.output
    assert bulk_rows(rig) == []
    rig.at(SUNDAY_10)
    assert rig.fire_due() == []
    assert rig.twilio.requests == []


def test_an_expiry_before_any_window_opens_is_refused_naming_the_first_opening(
    rig: Rig, tmp_path: Path
) -> None:
    """Friday 22:00 with an expiry Saturday 07:30, before the 08:00 opening: the bulk could not
    start, so exit 1, with the opening named, and nothing scheduled (a dry run says so too)."""
    rig.add_contacts(2)
    rig.at(FRIDAY_22)
    project = project_with(tmp_path)

    dry = drip(
        rig, project, FRIDAY_22, "bulk", BODY, "--expires-at", "2026-06-06 07:30", "--dry-run"
    )
    real = drip(rig, project, FRIDAY_22, "bulk", BODY, "--expires-at", "2026-06-06 07:30", "--yes")

    for result in (dry, real):
        assert result.exit_code == 1, result.output
        assert "excluded      2  expired: cannot get it before the expiry" in result.output
        assert (
            "--expires-at 2026-06-06 07:30 America/New_York comes before the bulk could start: "
            "none of the 2 selected contact(s) could get the text by then; the earliest any of "
            "them could get it is 2026-06-06 08:00 America/New_York; nothing scheduled"
        ) in result.output
    assert bulk_rows(rig) == []


def test_an_expiry_not_written_as_a_time_is_refused_with_the_form_it_takes(
    rig: Rig, tmp_path: Path
) -> None:
    """--expires-at "Saturday 1pm": exit 1 naming the option and the two forms it accepts."""
    rig.add_contacts(1)
    rig.at(SATURDAY_9)

    result = drip(
        rig,
        project_with(tmp_path),
        SATURDAY_9,
        "bulk",
        BODY,
        "--expires-at",
        "Saturday 1pm",
        "--yes",
    )

    assert result.exit_code == 1
    assert "--expires-at: 'Saturday 1pm' is not a time like 2026-06-06 13:00" in result.output
    assert "2026-06-06 13:00-04:00 (with its UTC offset)" in result.output
    assert bulk_rows(rig) == []


def test_the_expiry_is_local_to_the_account_zone_unless_it_gives_an_offset(
    rig: Rig, tmp_path: Path
) -> None:
    """ "2026-06-06 13:00" is 13:00 in New York (the account's zone) and "12:00-05:00" the same
    instant given with its offset: every send of both bulks keeps 17:00 UTC as its expiry."""
    contacts = rig.add_contacts(2)
    rig.at(SATURDAY_9)
    project = project_with(tmp_path)

    local = drip(rig, project, SATURDAY_9, "bulk", BODY, "--expires-at", "2026-06-06 13:00", "-y")
    offset = drip(
        rig, project, SATURDAY_9, "bulk", BODY, "--expires-at", "2026-06-06 12:00-05:00", "-y"
    )

    for result in (local, offset):
        assert result.exit_code == 0, result.output
        assert "expires at 2026-06-06 13:00 America/New_York" in result.output
        assert re.search(
            r"bulk \d+: scheduled 2 sends.*what has not gone by 2026-06-06 13:00 "
            r"America/New_York is skipped \(expired\)",
            result.output,
        )
    assert sorted(bulk_rows(rig)) == sorted(
        (cid, SendState.PENDING, SATURDAY_1PM) for cid in contacts * 2
    )


def test_a_scheduled_bulk_that_cannot_go_by_its_expiry_is_skipped_never_sent_late(
    rig: Rig,
) -> None:
    """Queued Saturday 09:00 to expire at 13:00, the dispatcher down until Sunday 10:00:
    every send is skipped (expired) and no text reaches the provider."""
    contacts = rig.add_contacts(3)
    rig.at(SATURDAY_9)
    plan = plan_bulk(rig.deps, BODY, BulkFilters(), rig.now, expires_at=SATURDAY_1PM)
    assert schedule_bulk(rig.deps, plan, rig.now) == 3

    rig.at(SUNDAY_10)
    results = rig.fire_due()

    assert sorted((r.outcome, r.code) for r in results) == [("skipped", "expired")] * 3
    assert all("never sent late" in r.reason for r in results)
    assert sorted(bulk_rows(rig)) == [(c, SendState.SKIPPED, SATURDAY_1PM) for c in contacts]
    assert rig.twilio.requests == []


def test_a_bulk_sent_before_its_expiry_tells_the_carrier_not_to_deliver_after_it(
    rig: Rig,
) -> None:
    """Sent Saturday 12:00 with an expiry at 13:00, the text's ValidityPeriod is the hour left
    (not the nine hours to the window's close), so the carrier cannot deliver it late."""
    rig.add_contacts(2)
    rig.at(ny(6, 12))
    plan = plan_bulk(rig.deps, BODY, BulkFilters(), rig.now, expires_at=SATURDAY_1PM)
    schedule_bulk(rig.deps, plan, rig.now)

    assert {r.outcome for r in rig.fire_due()} == {"sent"}

    validities = [int(r.param("ValidityPeriod") or 0) for r in rig.twilio.requests]
    assert len(validities) == 2
    assert all(abs(v - 3600) <= 2 for v in validities), validities


CAP_YAML = "frequency_cap: {texts: 1, days: 1}\n"


def test_a_dry_run_shows_how_many_texts_the_frequency_cap_holds_back(
    rig: Rig, tmp_path: Path
) -> None:
    """With at most 1 text a day, the contact texted at 09:00 is held back at 10:00: the dry
    run counts it as waiting, and with an expiry at 18:00 as expiring (left out) instead."""
    first, *_ = rig.add_contacts(3)
    rig.at(SATURDAY_9)
    schedule_bulk(rig.deps, BulkPlan("Open house Saturday!", [first]), rig.now)
    assert [r.outcome for r in rig.fire_due()] == ["sent"]
    project = project_with(tmp_path, CAP_YAML)
    ten = ny(6, 10)

    plain = drip(rig, project, ten, "bulk", BODY, "--dry-run")
    expiring = drip(
        rig, project, ten, "bulk", BODY, "--expires-at", "2026-06-06 18:00", "--dry-run"
    )

    assert plain.exit_code == 0, plain.output
    assert "3 of 3 contacts will get this text; 0 excluded" in plain.output
    assert (
        "the frequency cap (1 campaign or bulk text in 1 day) holds back 1 of these texts: "
        "1 wait until it allows"
    ) in plain.output
    assert expiring.exit_code == 0, expiring.output
    assert "2 of 3 contacts will get this text; 1 excluded" in expiring.output
    assert "excluded      1  expired" in expiring.output
    assert (
        "the frequency cap (1 campaign or bulk text in 1 day) holds back 1 of these texts: "
        "1 would expire first"
    ) in expiring.output
    assert "dry run: nothing scheduled" in expiring.output
    assert len(bulk_rows(rig)) == 1  # the 09:00 one only
    rig.at(ny(7, 10))  # a day later the cap holds nobody, and says so
    later = drip(rig, project, ny(7, 10), "bulk", BODY, "--dry-run")
    assert "holds back 0 of these texts\n" in later.output


def test_a_dry_run_counts_the_texts_pacing_would_let_expire(rig: Rig, tmp_path: Path) -> None:
    """600 texts from one long code (1 segment/s less drip's 20 % margin) with 10 minutes to
    their expiry: the forecast counts those that cannot leave in time as expiring."""
    contacts = rig.add_contacts(600)
    rig.at(SATURDAY_9)
    project = project_with(tmp_path, "senders:\n  default: 1\n")
    deps = replace(rig.deps, account=replace(rig.deps.account, senders=Senders()))
    expected = forecast_bulk(deps, BODY, contacts, rig.now, expires_at=ny(6, 9, 10))

    result = drip(
        rig, project, SATURDAY_9, "bulk", BODY, "--expires-at", "2026-06-06 09:10", "--dry-run"
    )

    assert result.exit_code == 0, result.output
    # 0.833 segments/s for 600 s: 500 segments leave, the rest cannot by 09:10.
    assert 0 < expected.expiring < 600
    assert expected.texts == 600
    assert (
        f"  {expected.expiring} would expire: their sender cannot send them before the expiry"
    ) in result.output
    assert expected.slipping == 0
