"""``drip enrollments pause|resume CONTACT [CAMPAIGN]``: held, released, recorded with who.

The real ``drip`` console script in a temporary folder (SQLite, console transport),
as in test_cli_operations.
"""

from __future__ import annotations

import getpass
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from test_cli_operations import CAMPAIGN, PHONES, REPO, SAM, Shell, _open_zone

from drip.store.models import Enrollment, ScheduledSend, SendDecision


@pytest.fixture
def shell(tmp_path: Path) -> Shell:
    """A folder with campaigns synced, an agent and one consenting contact enrolled."""
    shutil.copytree(REPO / "campaigns", tmp_path / "campaigns")
    sh = Shell(tmp_path)
    sh("db", "upgrade")
    sh("sync")
    sh("agents", "Sam", "Lee", SAM)
    sh(
        "contacts", "add", "--first-name", "Lead", "--last-name", "Test",
        "--phone", PHONES[0], "--agent", SAM, "--timezone", _open_zone(), "--sms-consent",
        "--consent-source", "registration", "--consent-text", "Yes, text me about homes.",
    )  # fmt: skip
    sh("enroll", PHONES[0], CAMPAIGN)
    return sh


def _rows(sh: Shell) -> tuple[Enrollment, list[ScheduledSend], list[SendDecision]]:
    engine = create_engine(f"sqlite:///{sh.db}")
    with Session(engine) as session:
        enrollment = session.scalars(select(Enrollment)).one()
        sends = list(
            session.scalars(
                select(ScheduledSend)
                .where(ScheduledSend.enrollment_id == enrollment.id)
                .order_by(ScheduledSend.id)
            )
        )
        decisions = list(session.scalars(select(SendDecision).order_by(SendDecision.id)))
        session.expunge_all()
    engine.dispose()
    return enrollment, sends, decisions


def test_pause_then_resume_records_the_operator_and_keeps_spacing(shell: Shell) -> None:
    """Pause holds every pending send with --as NAME; resume moves them by the paused span."""
    _, before, _ = _rows(shell)
    pending = [s for s in before if s.state.value == "pending"]
    assert pending
    out = shell("enrollments", "pause", PHONES[0], CAMPAIGN, "--as", "maria")
    assert out == f"contact 1 in {CAMPAIGN}: 1 enrollment(s) paused\n"
    enrollment, _, decisions = _rows(shell)
    assert enrollment.paused_at is not None and enrollment.paused_until is None
    assert enrollment.paused_by == "maria"
    held = [d for d in decisions if d.outcome == "held"]
    assert len(held) == len(pending)
    assert all("paused by maria" in d.reason for d in held)

    assert shell("enrollments", "pause", PHONES[0]) == "contact 1: 0 enrollment(s) paused\n"

    out = shell("enrollments", "resume", PHONES[0])
    assert out == f"contact 1: 1 enrollment(s) resumed, {len(pending)} send(s) moved\n"
    enrollment, after, decisions = _rows(shell)
    assert enrollment.paused_at is None
    released = [d for d in decisions if d.outcome == "released"]
    assert len(released) == len(pending)
    assert all(f"resumed by {getpass.getuser()}" in d.reason for d in released)
    moved = {s.id: s.due_at for s in after}
    shifts = {moved[s.id] - s.due_at for s in pending}
    assert len(shifts) == 1  # every step moved by the same span: spacing kept
    (shift,) = shifts
    assert timedelta(0) < shift < timedelta(minutes=5)
    assert all(moved[s.id] > datetime.now(UTC) - timedelta(minutes=5) for s in pending[1:])


def test_unknown_campaign_is_refused(shell: Shell) -> None:
    """A campaign name that does not exist is an error naming it, and nothing is held."""
    out = shell("enrollments", "pause", PHONES[0], "no-such-plan", code=1)
    assert "no campaign named 'no-such-plan'" in out
    enrollment, _, _ = _rows(shell)
    assert enrollment.paused_at is None
