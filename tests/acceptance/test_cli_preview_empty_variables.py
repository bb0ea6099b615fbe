"""`drip preview` as a subprocess: empty variables are warned about, never "Subject: None"."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DRIP = str(Path(sys.executable).with_name("drip"))
CAMPAIGN = """\
name: empty-variable-preview
kind: nurture
steps:
  - id: hello
    day: 0
    body: "Hi {VisitorFirstName}, it's {AgentFirstName} with {CompanyName}."
  - id: letter
    day: 2
    channel: email
    subject: "For the {VisitorLastName} family"
    body: "Dear {VisitorFirstName} {VisitorLastName}, here are homes."
"""


def test_preview_warns_and_shows_the_skipped_email_without_a_none_subject(tmp_path: Path) -> None:
    """A one-word contact name: the email step is skipped naming {VisitorLastName}, warned."""
    shutil.copytree(REPO / "campaigns", tmp_path / "campaigns")
    (tmp_path / "campaigns" / "empty.yaml").write_text(CAMPAIGN, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_"))}
    env.update(DRIP_HOME=str(tmp_path / ".drip"), DRIP_LOG_FORMAT="json", COLUMNS="160")

    result = subprocess.run(
        [DRIP, "preview", "campaigns/empty.yaml", "--contact", "Dana"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Subject: None" not in out
    assert "{VisitorLastName}" in out
    assert "warning: letter: uses {VisitorLastName}" in " ".join(out.split())
