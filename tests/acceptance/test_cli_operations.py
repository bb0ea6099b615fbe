"""Running campaigns from a shell (SPEC §7, §8): lifecycle, bulk enrollment, numbers, bulk cancel.

Every command is the real ``drip`` console script in a temporary folder with
a copy of ``campaigns/`` (SQLite file in ``DRIP_HOME``, console transport).
Time is real, so "days later" is made by moving due times into the past in
the database, as if the days had passed with the dispatcher idle.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.orm import Session

from drip.store.models import ScheduledSend

REPO = Path(__file__).resolve().parents[2]
DRIP = str(Path(sys.executable).with_name("drip"))
SAM = "+16175550100"
PHONES = ("+16175550121", "+16175550122", "+16175550123")
CAMPAIGN = "smart-drip-new-lead"
#: Zones tried for the contacts, so that "now" is inside their 08:00-21:00 send window.
ZONES = (
    "America/New_York",
    "America/Los_Angeles",
    "Pacific/Honolulu",
    "Europe/London",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Europe/Moscow",
)


def _open_zone() -> str:
    now = datetime.now(UTC)
    for zone in ZONES:
        if 10 <= now.astimezone(ZoneInfo(zone)).hour < 19:
            return zone
    raise AssertionError("no candidate zone is inside its send window now")  # pragma: no cover


class Shell:
    """Runs ``drip`` commands in one working folder with one environment."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_"))}
        self.env.update(
            DRIP_HOME=str(workdir / ".drip"),
            DRIP_CAMPAIGNS_DIR=str(workdir / "campaigns"),
            DRIP_OUTBOX=str(workdir / "outbox.jsonl"),
        )
        self.db = workdir / ".drip" / "drip.db"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DRIP, *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def __call__(self, *args: str, code: int = 0) -> str:
        """stdout of ``drip ARGS``, after checking its exit code and a quiet stderr."""
        result = self.run(*args)
        assert result.returncode == code, (args, result.stdout, result.stderr)
        if code == 0:
            assert result.stderr == "", (args, result.stderr)
        return result.stdout + (result.stderr if code else "")

    def json(self, *args: str) -> object:
        return json.loads(self(*args, "--json"))

    def age_sends(self, step_ids: dict[str, timedelta]) -> None:
        """Move the pending sends of these steps into the past (days passed)."""
        engine = create_engine(f"sqlite:///{self.db}")
        now = datetime.now(UTC)
        with Session(engine) as session, session.begin():
            for step, ago in step_ids.items():
                session.execute(
                    update(ScheduledSend)
                    .where(ScheduledSend.step_id == step, ScheduledSend.contact_id == 1)
                    .values(due_at=now - ago, original_due_at=now - ago)
                )
        engine.dispose()

    def send_id(self, contact_id: int, step: str) -> int:
        engine = create_engine(f"sqlite:///{self.db}")
        with Session(engine) as session:
            found = session.scalar(
                select(ScheduledSend.id).where(
                    ScheduledSend.contact_id == contact_id, ScheduledSend.step_id == step
                )
            )
        engine.dispose()
        assert found is not None
        return int(found)


@pytest.fixture
def drip(tmp_path: Path) -> Shell:
    """A folder with campaigns synced, an agent and three consenting contacts."""
    shutil.copytree(REPO / "campaigns", tmp_path / "campaigns")
    shell = Shell(tmp_path)
    shell("db", "upgrade")
    shell("sync")
    shell("agents", "Sam", "Lee", SAM)
    zone = _open_zone()
    for i, phone in enumerate(PHONES, start=1):
        out = shell(
            "contacts", "add", "--first-name", f"Lead{i}", "--last-name", "Test",
            "--phone", phone, "--agent", SAM, "--timezone", zone, "--sms-consent",
            "--consent-source", "registration", "--consent-text", "Yes, text me about homes.",
        )  # fmt: skip
        assert f"contact {i} created; sms consent: yes" in out
    return shell


def _campaign(shell: Shell, name: str = CAMPAIGN) -> dict[str, object]:
    rows = shell.json("campaigns")
    assert isinstance(rows, list)
    return next(r for r in rows if r["name"] == name)


def test_enroll_many_dry_run_then_real_run(drip: Shell) -> None:
    """A dry run enrolls nothing and counts exclusions; without --yes off a terminal it refuses."""
    drip("enroll", PHONES[0], CAMPAIGN)
    out = drip("enroll-many", CAMPAIGN, "--dry-run")
    assert f"2 of 3 contacts will be enrolled in {CAMPAIGN} (all contacts); 1 excluded" in out
    assert "excluded      1  already active in this campaign" in out
    assert "dry run: nothing enrolled" in out
    assert _campaign(drip)["active_enrollments"] == 1

    refused = drip("enroll-many", CAMPAIGN, code=2)
    assert "not a terminal: add --yes" in refused
    assert _campaign(drip)["active_enrollments"] == 1

    out = drip("enroll-many", CAMPAIGN, "--yes")
    assert f"enrolled 2 contacts in {CAMPAIGN}: 10 sends scheduled" in out
    row = _campaign(drip)
    assert (row["active_enrollments"], row["pending_sends"]) == (3, 15)


def test_enroll_many_from_a_file_of_phones(drip: Shell, tmp_path: Path) -> None:
    """--file limits the selection to its numbers and names those that are no contact."""
    phones = tmp_path / "phones.txt"
    phones.write_text(f"phone\n{PHONES[1]}\n(617) 555-0199\n", encoding="utf-8")
    out = drip("enroll-many", CAMPAIGN, "--file", str(phones), "--yes")
    assert "1 of 1 contacts will be enrolled" in out
    assert "1 number(s) of the file are no contact: +16175550199" in out
    assert "enrolled 1 contacts" in out
    listed = drip.json("contacts", "list", "--not-enrolled")
    assert isinstance(listed, list)
    assert sorted(c["phone"] for c in listed) == [PHONES[0], PHONES[2]]


def test_pause_holds_then_resume_catches_up(drip: Shell) -> None:
    """Paused: tick sends nothing of the campaign; resumed: overdue steps go one a day."""
    drip("enroll-many", CAMPAIGN, "--yes")
    drip.age_sends(
        {"day-15-check-in": timedelta(days=3), "day-45-market-update": timedelta(days=2)}
    )
    out = drip("campaigns", "pause", CAMPAIGN)
    assert (
        out
        == f"{CAMPAIGN} paused: 15 pending send(s) held; new enrollments are scheduled and held too\n"
    )
    assert _campaign(drip)["status"] == "paused"

    assert drip("tick") == "tick: 0 claimed: nothing due\n"
    queue = drip.json("queue")
    assert isinstance(queue, dict)
    assert (queue["due_now"], queue["held"]) == (2, 2)
    assert queue["rows"] == [
        {"campaign": CAMPAIGN, "sender": SAM, "channel": "sms", "due_now": 2, "next_24h": 0,
         "held": True, "pacing": None}
    ]  # fmt: skip
    held = drip.send_id(1, "day-15-check-in")
    assert f"HELD: campaign {CAMPAIGN} is paused" in drip("explain", str(held))
    explained = drip.json("explain", str(held))
    assert isinstance(explained, dict)
    assert explained["held"] is True
    assert [d["outcome"] for d in explained["decisions"]] == ["held"]

    out = drip("campaigns", "resume", CAMPAIGN)
    assert out.startswith(f"{CAMPAIGN} resumed: 15 send(s) released; overdue steps catch up")
    out = drip("tick")
    assert out.endswith("tick: 2 claimed: 1 deferred, 1 sent\n")
    assert f"To:   {PHONES[0]}\nHi Lead1, it's Sam with Acme Realty." in out
    later = drip.json("explain", str(drip.send_id(1, "day-45-market-update")))
    assert isinstance(later, dict)
    assert later["decisions"][-1]["code"] == "catch_up"

    stats = drip.json("stats", CAMPAIGN)
    assert isinstance(stats, dict)
    (campaign,) = stats["campaigns"]
    steps = {s["step"]: s for s in campaign["steps"]}
    assert (campaign["enrolled"], campaign["active"]) == (3, 3)
    assert steps["day-15-check-in"]["sent"] == 1
    assert steps["day-15-check-in"]["scheduled"] == 3
    assert steps["day-15-check-in"]["pending"] == 2
    assert steps["day-15-check-in"]["segments"] >= 1
    assert steps["day-45-market-update"]["deferred"] == {"catch_up": 1}
    assert campaign["total"]["sent"] == 1
    assert campaign["total"]["pending"] == 14
    csv_lines = drip("stats", CAMPAIGN, "--csv").splitlines()
    assert csv_lines[0].startswith("campaign,enrolled,step,day,channel,scheduled,pending,sent")
    assert len(csv_lines) == 1 + 5 + 1


def test_queue_recount_repairs_counts_that_drifted(drip: Shell) -> None:
    """drip queue --recount says by how much the running counts were off and repairs them."""
    drip("enroll-many", CAMPAIGN, "--yes")
    assert drip("queue", "--recount").startswith(
        "recounted 15 pending send(s): the running counts were right"
    )
    engine = create_engine(f"sqlite:///{drip.db}")
    with engine.begin() as conn:  # what a lost race leaves: one group counted 4 too many
        conn.execute(
            text(
                "UPDATE queue_tallies SET n = n + 4 WHERE rowid = (SELECT MIN(rowid) FROM queue_tallies)"
            )
        )
    engine.dispose()
    out = drip("queue", "--recount")
    assert out.startswith(
        "recounted 15 pending send(s): 1 group(s) were off by 4 send(s) in all, now repaired\n"
    )
    assert drip("queue", "--recount").startswith("recounted 15 pending send(s): the running")


def test_unenroll_and_archive_cancel_pending(drip: Shell) -> None:
    """Unenroll cancels one contact's sends; archive cancels the rest and refuses enrollments."""
    drip("enroll-many", CAMPAIGN, "--yes")
    out = drip("unenroll", PHONES[1], CAMPAIGN)
    assert out == f"contact 2 unenrolled from {CAMPAIGN}: 5 pending send(s) cancelled\n"
    assert "not active" in drip("unenroll", PHONES[1], CAMPAIGN)
    reason = drip.json("explain", str(drip.send_id(2, "day-15-check-in")))
    assert isinstance(reason, dict)
    assert (reason["state"], reason["decision_code"]) == ("cancelled", "unenrolled")

    out = drip("campaigns", "archive", CAMPAIGN)
    assert out == f"{CAMPAIGN} archived: 10 pending send(s) cancelled, 2 enrollment(s) stopped\n"
    row = _campaign(drip)
    assert (row["status"], row["pending_sends"], row["active_enrollments"]) == ("archived", 0, 0)
    refused = drip("enroll", PHONES[0], CAMPAIGN, code=1)
    assert "archived: it takes no new enrollments" in refused
    stats = drip.json("stats", CAMPAIGN)
    assert isinstance(stats, dict)
    assert stats["campaigns"][0]["total"]["cancelled"] == 15
    assert stats["campaigns"][0]["stopped"] == 3


def test_sync_warns_then_prunes_a_campaign_whose_file_is_gone(drip: Shell) -> None:
    """Plain sync only warns about a deleted file; --prune archives its campaign."""
    (drip.workdir / "campaigns" / "concierge_buyer.yaml").unlink()
    result = drip.run("sync")
    assert result.returncode == 0
    assert "the file of concierge-buyer is gone" in result.stderr
    assert _campaign(drip, "concierge-buyer")["status"] == "active"
    out = drip("sync", "--prune")
    assert "concierge-buyer archived: 0 pending send(s) cancelled" in out
    assert _campaign(drip, "concierge-buyer")["status"] == "archived"


def test_bulk_has_an_id_and_cancel_stops_what_is_not_sent(drip: Shell) -> None:
    """A bulk asks for --yes off a terminal, gets an id, and `bulk cancel ID` cancels its sends."""
    refused = drip("bulk", "Open house Saturday 1-3pm", code=2)
    assert "not a terminal: add --yes" in refused
    out = drip("bulk", "Open house Saturday 1-3pm", "--yes")
    match = re.search(r"^bulk (\d+): scheduled 3 sends", out, re.M)
    assert match, out
    out = drip("bulk", "cancel", match.group(1))
    assert out.startswith(f"bulk {match.group(1)}: 3 send(s) cancelled; 0 already sent")
    assert drip("tick") == "tick: 0 claimed: nothing due\n"
    assert drip("bulk", "cancel", "999", code=1).strip() == "error: no bulk with id 999"


def test_contacts_list_opt_out_and_status(drip: Shell) -> None:
    """contacts list filters and prints JSON/CSV; opt-out and status are recorded consent events."""
    out = drip("contacts", "opt-out", PHONES[0], "--how", "phone call", "--as", "dana.k")
    assert out.startswith("contact 1 opted out (phone call, recorded by dana.k)")
    assert "already opted out" in drip("contacts", "opt-out", PHONES[0], "--how", "phone call")
    out = drip("contacts", "status", PHONES[1], "cannot_be_texted")
    assert out == f"contact 2: text status textable -> cannot_be_texted (by {getpass.getuser()})\n"
    history = drip("history", PHONES[0])
    assert "[by dana.k]" in history and "opt out by dana.k (cli)" in history
    listed = drip.json("contacts", "list")
    assert isinstance(listed, list)
    assert [(c["id"], c["sms"], c["text_status"]) for c in listed] == [
        (1, "opted_out", "textable"),
        (2, "consent", "cannot_be_texted"),
        (3, "consent", "textable"),
    ]
    textable = drip.json("contacts", "list", "--textable")
    assert isinstance(textable, list)
    assert [c["id"] for c in textable] == [3]
    csv_out = drip("contacts", "list", "--csv", "--name", "lead2").splitlines()
    assert csv_out[0].startswith("id,first_name,last_name,phone")
    assert csv_out[1].startswith("2,Lead2,Test,+16175550122")
    history = drip.json("history", PHONES[0])
    assert isinstance(history, dict)
    assert history["contact"]["sms"] == "opted_out"
    assert any("phone call" in e["text"] for e in history["entries"] if e["what"] == "consent")
    assert (
        drip("contacts", "list", "--json", "--csv", code=2)
        .strip()
        .endswith("choose one of --json and --csv")
    )


def test_import_with_enroll_and_the_same_file_twice(drip: Shell, tmp_path: Path) -> None:
    """--enroll enrolls the imported contacts; importing the same evidence again adds no event."""
    csv = tmp_path / "leads.csv"
    csv.write_text(
        "first_name,last_name,phone,email,agent_phone,sms_consent,consent_at,consent_text\n"
        f"Ana,Lopez,+13055550111,ana@example.com,{SAM},yes,2026-11-02 09:14,I agree to texts\n"
        f"Ben,Okafor,+12125550142,,{SAM},yes,2026-11-03 10:00,I agree to texts\n",
        encoding="utf-8",
    )
    out = drip("contacts", "import", str(csv), "--enroll", CAMPAIGN)
    assert "imported 2 (created 2, updated 0)" in out
    assert f"enrolled the imported contacts in {CAMPAIGN}" in out
    assert "10 sends scheduled" in out
    assert _campaign(drip)["active_enrollments"] == 2

    def consent_events() -> int:
        history = drip.json("history", "+13055550111")
        assert isinstance(history, dict)
        return sum(1 for e in history["entries"] if e["what"] == "consent")

    before = consent_events()
    out = drip("contacts", "import", str(csv), "--enroll", CAMPAIGN)
    assert "imported 2 (created 0, updated 2)" in out
    assert "0 sends scheduled" in out
    assert consent_events() == before == 1
    refused = drip("contacts", "import", str(csv), "--enroll", "nope", code=1)
    assert "no campaign named 'nope'" in refused


def test_contacts_add_reports_what_changed_on_a_known_contact(drip: Shell) -> None:
    """A known phone is the same contact: the change is reported and consent stays yes."""
    out = drip("contacts", "add", "--first-name", "Lena", "--phone", PHONES[0])
    assert out.splitlines() == [
        "contact 1 updated; sms consent: yes",
        "note: changed: first_name Lead1 -> Lena",
    ]
    out = drip("contacts", "add", "--first-name", "Fay", "--email", "fay@example.com")
    assert out.startswith("contact 4 created")
    out = drip("contacts", "add", "--first-name", "Fay", "--email", "FAY@example.com")
    assert out.startswith("contact 4 updated; sms consent: no")


def test_a_new_user_runs_the_readme_flow_on_a_few_hundred_leads(
    drip: Shell, tmp_path: Path
) -> None:
    """Import, enroll in one command, tick, stats filling, pause/resume, bulk and cancel, as README.

    The fixture's three consenting contacts make 273 textable contacts of 303.
    """
    # The agent's number is registered for more than a long code's default of one
    # segment a second (README, "senders:"); at the default one tick sends 30 of them.
    account = tmp_path / "campaigns" / "account.yaml"
    account.write_text(account.read_text(encoding="utf-8") + "\nsenders:\n  default: 100\n")
    zone = _open_zone()
    consent = "I agree to receive texts about my home search from Acme Realty."
    rows = ["first_name,last_name,phone,email,state,timezone,agent_phone,sms_consent,consent_at,"
            "consent_source,consent_text"]  # fmt: skip
    for i in range(300):
        evidence = f"yes,2026-11-02 09:14,registration,{consent}" if i % 10 else "no,,,"
        rows.append(f"Lead{i},Test,+1617{2000000 + i},l{i}@example.com,MA,{zone},{SAM},{evidence}")
    leads = tmp_path / "leads.csv"
    leads.write_text("\n".join(rows) + "\n", encoding="utf-8")
    outputs: list[str] = []

    def run(*args: str, code: int = 0) -> str:
        out = drip(*args, code=code)
        outputs.append(out)
        return out

    out = run("contacts", "import", str(leads))
    assert out.splitlines()[0].startswith("imported 300 (created 300, updated 0), 30 without")
    assert "opt-in confirmations: 270 scheduled" in out

    out = run("enroll-many", CAMPAIGN, "--textable", "--dry-run")
    assert f"273 of 303 contacts will be enrolled in {CAMPAIGN} (textable=yes); 30 excluded" in out
    assert "excluded     30  no SMS consent recorded (--textable)" in out
    out = run("enroll-many", CAMPAIGN, "--textable", "--yes")
    assert f"enrolled 273 contacts in {CAMPAIGN}: 1365 sends scheduled" in out

    def stats() -> tuple[dict[str, dict[str, object]], dict[str, dict[str, object]]]:
        document = drip.json("stats")
        assert isinstance(document, dict)
        (campaign,) = [c for c in document["campaigns"] if c["name"] == CAMPAIGN]
        steps = {s["step"]: s for s in campaign["steps"]}
        return steps, {s["step"]: s for s in document["others"]}

    steps, others = stats()
    assert others["opt_in_confirmation"]["pending"] == 270
    sent_live = others["opt_in_confirmation"]["sent"]  # the fixture's, sent at once (SPEC C3)
    assert run("tick").endswith("tick: 270 claimed: 270 sent\n")
    steps, others = stats()
    assert others["opt_in_confirmation"]["sent"] == sent_live + 270
    assert others["opt_in_confirmation"]["segments"] >= 270
    assert steps["day-15-check-in"]["pending"] == 273

    # Fifteen days later, with the campaign paused: nothing of it goes out, and it is held.
    engine = create_engine(f"sqlite:///{drip.db}")
    due = datetime.now(UTC) - timedelta(minutes=30)
    with Session(engine) as session, session.begin():
        session.execute(
            update(ScheduledSend)
            .where(ScheduledSend.step_id == "day-15-check-in")
            .values(due_at=due, original_due_at=due)
        )
    engine.dispose()
    assert run("campaigns", "pause", CAMPAIGN).startswith(f"{CAMPAIGN} paused: 1365 pending")
    assert run("tick") == "tick: 0 claimed: nothing due\n"
    queue = drip.json("queue")
    assert isinstance(queue, dict)
    assert (queue["due_now"], queue["held"]) == (273, 273)
    assert run("campaigns", "resume", CAMPAIGN).startswith(f"{CAMPAIGN} resumed: 1365 send(s)")
    assert run("tick").endswith("tick: 273 claimed: 273 sent\n")
    steps, others = stats()
    day15 = steps["day-15-check-in"]
    assert (day15["sent"], day15["with_footer"], day15["pending"]) == (273, 273, 0)

    out = run("bulk", "Open house Saturday 1-3pm at 12 Elm St", "--state", "MA", "--yes")
    match = re.search(r"^bulk (\d+): scheduled 273 sends", out, re.M)
    assert match, out
    queue = drip.json("queue")
    assert isinstance(queue, dict)
    assert [(r["campaign"], r["due_now"]) for r in queue["rows"]] == [("(bulk)", 273)]
    out = run("bulk", "cancel", match.group(1))
    assert out.startswith(f"bulk {match.group(1)}: 273 send(s) cancelled; 0 already sent")
    out = run("bulk", "cancel", match.group(1))
    assert out.startswith(f"bulk {match.group(1)} was already cancelled: 273 send(s)")
    assert run("tick") == "tick: 0 claimed: nothing due\n"
    steps, others = stats()
    assert (others["bulk"]["cancelled"], others["bulk"]["sent"]) == (273, 0)
    text = run("stats")
    assert "texts outside campaigns:" in text
    for output in outputs:
        for word in ("None", "False", "True"):
            assert not re.search(rf"\b{word}\b", output.replace(consent, "")), (word, output)
