"""GET /healthz, JSON errors for unknown routes and big bodies, and the lazy WSGI entry point."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_web_support import AGENT_PHONE, API_TOKEN, AUTH_TOKEN, DANA_PHONE, Web, open_web
from werkzeug.test import Client

from drip.store.models import Message

DOWN = "postgresql+psycopg://drip@127.0.0.1:1/nowhere"  # nothing listens on port 1


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[Web]:
    """The app on the test database."""
    with open_web(db_url, tmp_path) as w:
        yield w


def test_healthz_ok_when_the_database_answers(web: Web) -> None:
    """SELECT 1 works: 200 {"ok": true}."""
    response = web.client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"ok": True}


def test_healthz_503_when_the_database_is_down(tmp_path: Path) -> None:
    """An unreachable database gives 503 with a generic reason: no driver, host, port or name."""
    with open_web(DOWN, tmp_path, agent=False) as web:
        response = web.client.get("/healthz")

        assert response.status_code == 503
        body = response.get_json()
        assert body == {"ok": False, "error": "the database is not available"}
        text = response.get_data(as_text=True)
        for secret in ("psycopg", "127.0.0.1", "nowhere", "drip@", ":1"):
            assert secret not in text


def test_webhook_with_the_database_down_is_spooled_and_answered_200(tmp_path: Path) -> None:
    """A signed inbound text while the database is down is kept in the spool and answered 200."""
    with open_web(DOWN, tmp_path, agent=False) as web:
        response = web.sms("hello", sid="SM" + "d" * 32)

        assert response.status_code == 200
        spool = web.client.application.extensions["drip.spool"]
        assert [e.payload["message_sid"] for e in spool.entries()] == ["SM" + "d" * 32]
        assert spool.path == tmp_path / "web-spool.db"


def test_unknown_route_and_method_are_json_4xx(web: Web) -> None:
    """A wrong path is a JSON 404, a wrong method a JSON 405."""
    missing = web.client.get("/nope")
    wrong_method = web.client.get("/twilio/sms")

    assert missing.status_code == 404
    assert "error" in missing.get_json()
    assert wrong_method.status_code == 405
    assert "error" in wrong_method.get_json()


def test_oversized_body_is_413_and_stores_nothing(web: Web) -> None:
    """A body over the limit is refused before anything reads it."""
    response = web.sms("x" * 300_000, sid="SM" + "e" * 32)

    assert response.status_code == 413
    assert web.count(Message) == 0


def test_wsgi_module_builds_nothing_at_import_and_the_app_on_first_request(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Importing drip.web.wsgi reads no settings; the first request builds the app from the env."""
    monkeypatch.setenv("DRIP_DATABASE_URL", "not a url")  # would fail if read at import
    sys.modules.pop("drip.web.wsgi", None)
    wsgi = importlib.import_module("drip.web.wsgi")
    monkeypatch.setenv("DRIP_DATABASE_URL", db_url)
    monkeypatch.setenv("DRIP_HOME", str(tmp_path))
    monkeypatch.setenv("DRIP_API_TOKEN", API_TOKEN)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("DRIP_LOG_FORMAT", "json")
    app = wsgi.LazyApp()
    client = Client(app)

    health = client.get("/healthz")
    unsigned = client.post("/twilio/sms", data={"From": DANA_PHONE, "To": AGENT_PHONE})

    assert health.status_code == 200
    assert unsigned.status_code == 403
    assert app.name == "drip.web"  # attributes reach the built Flask app
    assert isinstance(wsgi.app, wsgi.LazyApp)
