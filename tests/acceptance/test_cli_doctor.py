"""``drip doctor``, the real console script: all is well embedded, and each missing piece named scaled out."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from drip.bootstrap import build
from drip.config import Settings
from drip.testing.fake_twilio import FakeTwilioServer
from drip.web.app import create_app

REPO = Path(__file__).resolve().parents[2]
DRIP = str(Path(sys.executable).with_name("drip"))


def checkout(tmp_path: Path) -> Path:
    """A working folder with the repository's campaigns/, as after a fresh checkout."""
    shutil.copytree(REPO / "campaigns", tmp_path / "campaigns")
    return tmp_path


def drip(workdir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real ``drip`` with only the given DRIP_*/TWILIO_* variables."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_"))}
    base.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return subprocess.run(
        [DRIP, *args],
        cwd=workdir,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def lines(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Each check's name and its line."""
    out = {}
    for line in result.stdout.splitlines():
        status, _, rest = line.partition(" ")
        name, _, _ = rest.strip().partition(":")
        if status in ("ok", "FAIL", "note"):
            out[name] = line
    return out


def failed(result: subprocess.CompletedProcess[str]) -> set[str]:
    return {name for name, line in lines(result).items() if line.startswith("FAIL")}


def test_fresh_embedded_checkout_is_all_well(tmp_path: Path) -> None:
    """Before and after `drip db upgrade`, a fresh embedded checkout passes with one line per check."""
    work = checkout(tmp_path)
    first = drip(work, "doctor")
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.strip().endswith("drip doctor: all is well")
    assert "`drip db upgrade` creates it" in lines(first)["database"]
    assert not (work / ".drip").exists()  # the doctor creates nothing
    assert drip(work, "db", "upgrade").returncode == 0
    assert drip(work, "tick").returncode == 0
    second = drip(work, "doctor")
    assert second.returncode == 0, second.stdout
    checks = lines(second)
    assert checks["database"].startswith("ok") and "0020" in checks["database"]
    assert checks["clock"].startswith("ok")
    assert checks["dispatch"].startswith("ok    dispatch: last tick")
    assert checks["account"].startswith("ok")
    assert set(checks) >= {"mode", "broker", "twilio", "public url", "web spool", "outbox file"}


def test_scaled_out_config_names_each_missing_piece(tmp_path: Path) -> None:
    """A broker but SQLite, no secret key, no Twilio, an http URL, no broker listening: exit 1 naming each."""
    work = checkout(tmp_path)
    result = drip(
        work,
        "doctor",
        DRIP_BROKER_URL="redis://127.0.0.1:1/0",
        DRIP_PUBLIC_URL="http://drip.example.com",
    )
    assert result.returncode == 1
    assert failed(result) == {"mode", "database", "broker", "twilio", "public url"}
    checks = lines(result)
    assert "needs PostgreSQL" in checks["mode"] and "DRIP_SECRET_KEY" in checks["mode"]
    assert "not https" in checks["public url"]
    assert "TWILIO_ACCOUNT_SID" in checks["twilio"]
    assert "5 problem(s): mode, database, broker, twilio, public url" in result.stderr


@pytest.fixture
def fake() -> Iterator[FakeTwilioServer]:
    """A fake Twilio server answering the account request as Twilio does."""
    with FakeTwilioServer() as server:
        yield server


@pytest.mark.postgres
@pytest.mark.redis
def test_scaled_out_wired_right_but_the_webhook_url(
    tmp_path: Path, pg_url: str, redis_url: str, fake: FakeTwilioServer
) -> None:
    """PostgreSQL at head, Redis, Twilio credentials accepted: only the unreachable webhook URL fails."""
    work = checkout(tmp_path)
    env = {
        "DRIP_DATABASE_URL": pg_url,
        "DRIP_BROKER_URL": redis_url,
        "DRIP_SECRET_KEY": "a-real-secret",
        "DRIP_PUBLIC_URL": "https://127.0.0.1:1",
        "TWILIO_ACCOUNT_SID": fake.account_sid,
        "TWILIO_AUTH_TOKEN": fake.auth_token,
        "DRIP_TWILIO_BASE_URL": fake.base_url,
    }
    assert drip(work, "db", "upgrade", **env).returncode == 0
    result = drip(work, "doctor", **env)
    assert result.returncode == 1
    assert failed(result) == {"public url"}, result.stdout
    checks = lines(result)
    assert "is active" in checks["twilio"] and fake.account_sid not in checks["twilio"]
    assert checks["broker"].startswith("ok")
    assert checks["database"].startswith("ok")
    assert "does not answer from this host" in checks["public url"]
    wrong = drip(work, "doctor", **{**env, "TWILIO_AUTH_TOKEN": "wrong-token"})
    assert failed(wrong) == {"public url", "twilio"}
    assert "20003" in lines(wrong)["twilio"]


def test_the_webhook_route_answering_from_this_host_passes(tmp_path: Path) -> None:
    """With the web app listening at DRIP_PUBLIC_URL, the doctor finds the webhook route."""
    work = checkout(tmp_path)
    assert drip(work, "db", "upgrade").returncode == 0
    settings = Settings(home=work / ".drip", campaigns_dir=work / "campaigns")
    deps = build(settings)
    app = create_app(deps)
    with served(app) as url:
        result = drip(work, "doctor", DRIP_PUBLIC_URL=url)
    deps.engine.dispose()
    assert result.returncode == 0, result.stdout
    assert lines(result)["public url"].startswith(f"ok    public url: {url}/twilio/sms answers")


@contextmanager
def served(app: object) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
