"""``on_reply`` and ``resume_after`` in campaign YAML: values and located errors."""

from __future__ import annotations

import re
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from drip.campaigns.loader import load_campaign
from drip.domain.campaign import Campaign, OnReply
from drip.errors import CampaignError

BASE = """\
name: replies
kind: nurture
{extra}
steps:
  - day: 0
    body: "Hi {{VisitorFirstName}}"
"""


def load(tmp_path: Path, extra: str) -> Campaign:
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(BASE.format(extra=extra)), encoding="utf-8")
    return load_campaign(path)


def problem(tmp_path: Path, extra: str) -> tuple[int, int, str]:
    with pytest.raises(CampaignError) as info:
        load(tmp_path, extra)
    assert len(info.value.problems) == 1, info.value.problems
    m = re.match(r"^.+:(\d+):(\d+): error: (.*)$", info.value.problems[0])
    assert m is not None
    return int(m.group(1)), int(m.group(2)), m.group(3)


def test_default_is_continue(tmp_path: Path) -> None:
    """A campaign that says nothing continues on a reply, with the 7-day default kept."""
    campaign = load(tmp_path, "")
    assert campaign.on_reply is OnReply.CONTINUE
    assert campaign.resume_after == timedelta(days=7)


def test_stop_on_reply_means_stop(tmp_path: Path) -> None:
    """``stop_on_reply: true`` is the older spelling of ``on_reply: stop``."""
    assert load(tmp_path, "stop_on_reply: true").on_reply is OnReply.STOP


def test_pause_with_resume_after(tmp_path: Path) -> None:
    """``on_reply: pause`` with ``resume_after: 36h`` is read, and survives the stored form."""
    campaign = load(tmp_path, "on_reply: pause\nresume_after: 36h")
    assert campaign.on_reply is OnReply.PAUSE
    assert campaign.resume_after == timedelta(hours=36)
    again = Campaign.from_dict(campaign.as_dict())
    assert (again.on_reply, again.resume_after) == (OnReply.PAUSE, timedelta(hours=36))
    assert again.version == campaign.version


def test_unknown_word_is_located(tmp_path: Path) -> None:
    """A word that is not stop, pause or continue is an error at its value."""
    line, col, message = problem(tmp_path, "on_reply: hold")
    assert (line, col) == (3, 11)
    assert "on_reply must be one of stop | pause | continue" in message


def test_bad_span_is_located(tmp_path: Path) -> None:
    """``resume_after: soon`` is an error at its value naming the span form."""
    line, col, message = problem(tmp_path, "on_reply: pause\nresume_after: soon")
    assert (line, col) == (4, 15)
    assert "resume_after must be a span such as 7d" in message


def test_resume_after_without_pause(tmp_path: Path) -> None:
    """``resume_after`` with ``on_reply: stop`` is an error at its key."""
    line, col, message = problem(tmp_path, "on_reply: stop\nresume_after: 7d")
    assert (line, col) == (4, 1)
    assert "resume_after belongs with on_reply: pause" in message


def test_contradiction_with_stop_on_reply(tmp_path: Path) -> None:
    """``stop_on_reply: true`` beside ``on_reply: pause`` is an error at stop_on_reply."""
    line, col, message = problem(tmp_path, "stop_on_reply: true\non_reply: pause")
    assert (line, col) == (3, 1)
    assert "contradicts on_reply: pause" in message
