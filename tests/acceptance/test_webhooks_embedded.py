"""``drip run`` delivers the outbox from a thread; ``drip webhooks status|retry`` report it.

The real ``drip`` console script (SQLite in a temporary ``DRIP_HOME``) and a real
http.server receiver on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from drip.store import outbox

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from webhook_support import receiver

DRIP = str(Path(sys.executable).with_name("drip"))


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_"))}
    env.update(
        DRIP_HOME=str(home / ".drip"),
        DRIP_CAMPAIGNS_DIR=str(home / "campaigns"),
        DRIP_OUTBOX=str(home / "outbox.jsonl"),
        DRIP_TICK_SECONDS="1",
        HOOK_SECRET="s3cret",
    )
    return env


def _drip(home: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DRIP, *args], cwd=home, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _delivered(tmp_path: Path) -> int:
    """How many outbox events the embedded database records as delivered."""
    engine = create_engine(f"sqlite:///{tmp_path / '.drip' / 'drip.db'}")
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT COUNT(*) FROM outbox_events WHERE state = 'delivered'")
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_drip_run_delivers_and_status_counts(tmp_path: Path) -> None:
    """An outbox event is posted by `drip run`'s thread; status shows it delivered."""
    with receiver() as hook:
        (tmp_path / "campaigns").mkdir()
        (tmp_path / "campaigns" / "account.yaml").write_text(
            f"webhooks:\n  - name: crm\n    url: {hook.url}\n    events: [reply.received]\n"
            "    secret_env: HOOK_SECRET\n",
            encoding="utf-8",
        )
        env = _env(tmp_path)
        assert _drip(tmp_path, "db", "upgrade", env=env).returncode == 0
        engine = create_engine(f"sqlite:///{tmp_path / '.drip' / 'drip.db'}")
        with Session(engine) as session, session.begin():
            event_id = outbox.append(
                session, "reply.received", None, {"text": "hi"}, datetime.now(UTC)
            )
        engine.dispose()
        out = _drip(tmp_path, "webhooks", "status", "--json", env=env)
        assert json.loads(out.stdout)["pending"] == 1

        run = subprocess.Popen(
            [DRIP, "run", "--no-web"], cwd=tmp_path, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not hook.got and time.monotonic() < deadline:
                time.sleep(0.1)
            # The receiver answers before the delivering thread records it: wait for the
            # record, so the interrupt below tests a quiet stop and not that race.
            while time.monotonic() < deadline:
                if _delivered(tmp_path) == 1:
                    break
                time.sleep(0.1)
        finally:
            run.send_signal(signal.SIGINT)
            run.communicate(timeout=30)
        assert run.returncode == 0
        assert [g.doc["id"] for g in hook.got] == [event_id]
        assert hook.got[0].headers["Drip-Signature"].startswith("t=")
        status = json.loads(_drip(tmp_path, "webhooks", "status", "--json", env=env).stdout)
        assert (status["pending"], status["delivered"], status["dead"]) == (0, 1, 0)
        assert (
            _drip(tmp_path, "webhooks", "retry", env=env).stdout == "0 dead event(s) queued again\n"
        )


def test_drip_run_refuses_a_webhook_without_its_secret(tmp_path: Path) -> None:
    """A webhook whose secret_env is unset stops `drip run` with an error naming it."""
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "account.yaml").write_text(
        "webhooks:\n  - name: crm\n    url: http://127.0.0.1:9/hook\n"
        "    events: [reply.received]\n    secret_env: MISSING_SECRET\n",
        encoding="utf-8",
    )
    env = _env(tmp_path)
    assert _drip(tmp_path, "db", "upgrade", env=env).returncode == 0
    done = _drip(tmp_path, "run", "--no-web", env=env)
    assert done.returncode != 0
    assert "webhook 'crm'" in done.stderr and "MISSING_SECRET" in done.stderr
