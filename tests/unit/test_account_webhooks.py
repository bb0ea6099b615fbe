"""``webhooks:`` in account.yaml: read into WebhookTargets; each problem located."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from drip.campaigns.account_file import load_account
from drip.domain.account import WebhookTarget
from drip.errors import CampaignError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "account.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[tuple[int, int, str]]:
    with pytest.raises(CampaignError) as info:
        load_account(write(tmp_path, text))
    out = []
    for problem in info.value.problems:
        m = re.match(r"^.+:(\d+):(\d+): error: (.*)$", problem)
        assert m is not None, problem
        out.append((int(m.group(1)), int(m.group(2)), m.group(3)))
    return out


def test_webhooks_are_read(tmp_path: Path) -> None:
    """Two webhooks with their events; a missing name defaults to the URL's host."""
    account = load_account(
        write(
            tmp_path,
            """\
            webhooks:
              - url: https://crm.example.com/drip
                events: [reply.received, contact.opted_out]
                secret_env: DRIP_WEBHOOK_SECRET
              - name: audit
                url: https://audit.example.com/in
                events: [send.sent]
                secret_env: AUDIT_SECRET
            """,
        )
    )
    assert account.webhooks == (
        WebhookTarget(
            "crm.example.com",
            "https://crm.example.com/drip",
            frozenset({"reply.received", "contact.opted_out"}),
            "DRIP_WEBHOOK_SECRET",
        ),
        WebhookTarget(
            "audit", "https://audit.example.com/in", frozenset({"send.sent"}), "AUDIT_SECRET"
        ),
    )
    assert account.webhook_events == {"reply.received", "contact.opted_out", "send.sent"}


def test_unknown_event_and_bad_url_are_located(tmp_path: Path) -> None:
    """An unknown event type and a URL that is not http(s) are errors at their values."""
    found = problems(
        tmp_path,
        """\
        webhooks:
          - url: ftp://crm.example.com/drip
            events: [reply.received, lead.created]
            secret_env: lower-case
        """,
    )
    assert (
        2,
        10,
        "webhooks 1 url must be an http(s) URL, got 'ftp://crm.example.com/drip'",
    ) in found
    assert any(
        (line, col) == (3, 30) and "unknown event 'lead.created'" in msg for line, col, msg in found
    )
    assert any(
        (line, col) == (4, 17) and "environment variable name" in msg for line, col, msg in found
    )


def test_missing_secret_env_is_located(tmp_path: Path) -> None:
    """A webhook without secret_env is an error at its mapping naming the field."""
    found = problems(
        tmp_path,
        """\
        webhooks:
          - url: https://crm.example.com/drip
            events: [reply.received]
        """,
    )
    assert len(found) == 1
    assert found[0][:2] == (2, 5)
    assert "secret_env" in found[0][2]
