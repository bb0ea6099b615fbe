"""The embedded default from a user's shell: database, campaigns, agent, contact, texts, audit.

Every step is the real ``drip`` console script in a temporary folder with a
copy of ``campaigns/``: SQLite file in ``DRIP_HOME``, no broker, the console
transport printing each message on stdout and appending it to ``DRIP_OUTBOX``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DRIP = str(Path(sys.executable).with_name("drip"))
DANA = "+16175550123"
SAM = "+16175550100"
FOOTER = (
    "[This part of the message is required by your mobile carrier and is sent automatically. "
    "If you prefer not to receive text messages from me just reply end]"
)


class Shell:
    """Runs ``drip`` commands in one working folder with one environment."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.outbox = workdir / "outbox.jsonl"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_"))}
        self.env.update(
            DRIP_HOME=str(workdir / ".drip"),
            DRIP_CAMPAIGNS_DIR=str(workdir / "campaigns"),
            DRIP_OUTBOX=str(self.outbox),
            DRIP_LOG_FORMAT="json",
        )

    def __call__(self, *args: str, code: int = 0) -> str:
        """stdout of ``drip ARGS``, after checking its exit code."""
        result = subprocess.run(
            [DRIP, *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == code, (args, result.stdout, result.stderr)
        return result.stdout + (result.stderr if code else "")


def test_embedded_flow_from_empty_folder_to_explain(tmp_path: Path) -> None:
    """db upgrade, sync, agent, contact with consent, enroll, text, tick, history, explain."""
    shutil.copytree(REPO / "campaigns", tmp_path / "campaigns")
    drip = Shell(tmp_path)

    out = drip("db", "upgrade")
    assert re.search(r"database at sqlite:///.*drip\.db is at revision \w+", out)
    assert (tmp_path / ".drip" / "drip.db").exists()

    out = drip("sync")
    assert sorted(out.split("\n")[:-1]) == [
        "concierge-buyer: added",
        "concierge-default: added",
        "concierge-seller: added",
        "new-lead-nurture: added",
        "new-lead-online: added",
        "new-lead-open-house: added",
        "property-view-follow-up: added",
        "revive-archived: added",
        "smart-drip-new-lead: added",
    ]

    assert re.fullmatch(r"agent \d+: Sam Lee\n", drip("agents", "Sam", "Lee", SAM))

    out = drip(
        "contacts",
        "add",
        "--first-name",
        "Dana",
        "--last-name",
        "Ruiz",
        "--phone",
        "(617) 555-0123",
        "--email",
        "dana@example.com",
        "--agent",
        SAM,
        "--sms-consent",
        "--consent-source",
        "registration",
        "--consent-text",
        "Yes, text me about homes. Msg & data rates may apply.",
    )
    assert re.search(r"^contact (\d+) created; sms consent: yes$", out, re.MULTILINE)
    assert f"From: {SAM}\nTo:   {DANA}\nAcme Realty: you're subscribed to texts" in out
    assert "opt-in confirmation: sent (no footer: an opt-in confirmation never carries it)" in out

    out = drip("enroll", DANA, "campaigns/smart_drip_new_lead.yaml")
    assert re.fullmatch(r"enrolled contact \d+ in smart-drip-new-lead: 5 sends scheduled\n", out)

    out = drip("text", DANA, "Hi Dana, this is Sam with Acme Realty. Any questions?")
    match = re.search(r"^sent \(send (\d+)\): footer: no opt-out instructions sent", out, re.M)
    assert match, out
    manual_id = match.group(1)
    assert f"Hi Dana, this is Sam with Acme Realty. Any questions? {FOOTER}\n" in out

    assert drip("tick").strip() == "tick: 0 claimed: nothing due"

    out = drip("history", DANA)
    lines = out.splitlines()
    assert re.match(
        r"contact \d+: Dana Ruiz \(America/New_York\); sms: consent given; "
        r"text status: textable; email: subscribed",
        lines[0],
    )
    assert any("consent given via registration" in line for line in lines)
    assert any("-> opt_in_confirmation sms from +16175550100" in line for line in lines)
    assert any("-> manual sms from +16175550100" in line and "[footer]" in line for line in lines)
    scheduled = [line for line in lines if " scheduled " in line]
    assert [line.rsplit(" ", 1)[-1] for line in scheduled] == [
        "day-15-check-in",
        "day-45-market-update",
        "day-180-timing",
        "day-270-new-listings",
        "day-360-anniversary",
    ]

    out = drip("explain", manual_id)
    assert re.match(rf"send {manual_id}: manual sms to contact \d+ \(Dana Ruiz\)", out)
    assert "sent        footer: no opt-out instructions sent from this sender" in out
    assert "footer yes" in out
    assert f"text: Hi Dana, this is Sam with Acme Realty. Any questions? {FOOTER}" in out

    records = [json.loads(line) for line in drip.outbox.read_text().splitlines()]
    assert [(r["channel"], r["from"], r["to"]) for r in records] == [("sms", SAM, DANA)] * 2
    assert records[0]["body"].startswith("Acme Realty: you're subscribed to texts")
    assert not records[0]["body"].endswith(FOOTER)
    assert records[1]["body"].endswith(FOOTER)


def test_commands_refuse_a_database_that_is_not_migrated(tmp_path: Path) -> None:
    """Before ``drip db upgrade``, commands that need the schema say so and exit 1."""
    shutil.copytree(REPO / "campaigns", tmp_path / "campaigns")
    drip = Shell(tmp_path)

    out = drip("sync", code=1)

    assert "run `drip db upgrade` first" in out
