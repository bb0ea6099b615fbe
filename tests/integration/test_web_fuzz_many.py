"""10,000 seeded bad requests across every route: never a 5xx (SQLite, bounded for CI)."""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from test_web_support import API_TOKEN, Web, open_web

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

SEED = 20261130
REQUESTS = 10_000
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
ROUTES = ["/twilio/sms", "/twilio/status", "/contacts", "/unsubscribe/", "/healthz", "/"]
ALPHABET = string.printable + "éü²³½ǅ٣\u0000\u200b\ud7ff\U0001f600%/."


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[Web]:
    """The app with Dana registered."""
    with open_web(db_url, tmp_path) as w:
        w.add_dana()
        yield w


def _junk(rng: random.Random, size: int = 40) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, size)))


def _deep(rng: random.Random) -> str:
    depth = rng.choice([100, 1000, 50_000])
    opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
    return opener * depth + "1" + closer * depth


def _one(web: Web, rng: random.Random) -> tuple[str, str, int]:
    route = rng.choice(ROUTES)
    method = rng.choice(["GET", "POST", "POST", "PUT", "DELETE"])
    client = web.client
    if route == "/unsubscribe/":
        token = rng.choice(
            [
                _junk(rng),
                f"{rng.randint(0, 10**20)}.{_junk(rng, 30)}",
                "1.%C3%A9",
                "%C2%B2.x",
                quote(_junk(rng), safe=""),
            ]
        )
        path = route + (token or "x")
        response = client.open(path, method=rng.choice(["GET", "POST"]))
        return method, path, response.status_code
    if route == "/contacts":
        kind = rng.randrange(4)
        headers = AUTH if rng.random() < 0.8 else {}
        if kind == 0:
            body = _deep(rng)
        elif kind == 1:
            body = json.dumps({_junk(rng, 10): _junk(rng) for _ in range(rng.randint(0, 6))})
        elif kind == 2:
            body = json.dumps(
                {"phone": _junk(rng, 16), "sms_consent": rng.choice([True, "on", 1, None, []])}
            )
        else:
            body = _junk(rng, 200)
        response = client.open(
            route, method=method, data=body, headers=headers, content_type="application/json"
        )
        return method, route, response.status_code
    form = {_junk(rng, 12): _junk(rng) for _ in range(rng.randint(0, 6))}
    signature = "".join(c for c in _junk(rng, 30) if c.isprintable() and c not in "\r\n")
    headers = {"X-Twilio-Signature": signature} if rng.random() < 0.5 else {}
    response = client.open(route, method=method, data=form, headers=headers)
    return method, route, response.status_code


def test_ten_thousand_seeded_bad_requests_never_5xx(web: Web) -> None:
    """Garbage tokens, non-ASCII, deep JSON, random forms and methods: every answer below 500."""
    rng = random.Random(SEED)
    errors: list[tuple[str, str, int]] = []
    seen: set[int] = set()
    for _ in range(REQUESTS):
        method, path, status = _one(web, rng)
        seen.add(status)
        if status >= 500:
            errors.append((method, path[:80], status))
    assert errors == []
    assert {400, 403, 404, 405} <= seen  # the requests reached each kind of refusal


@pytest.mark.parametrize("path", ["/unsubscribe/1.%C3%A9", "/unsubscribe/%C2%B2.x"])
def test_the_non_ascii_tokens_of_the_issue_are_404(web: Web, path: str) -> None:
    """Both non-ASCII tokens the fault suite found are refused as not valid, not a 500."""
    assert web.client.get(path).status_code == 404
    assert web.client.post(path).status_code == 404


def test_fifty_thousand_deep_json_is_400(web: Web) -> None:
    """A registration body nested 50,000 deep is a 400 naming the body."""
    body = "[" * 50_000 + "]" * 50_000
    response = web.client.post(
        "/contacts", data=body, headers=AUTH, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.get_json()["field"] == "body"
