"""The web spool file: durable appends, in-order drains that resume where they stopped, once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drip.web.spool import Spool

AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_a_drain_applies_in_order_and_stops_at_the_first_failure(tmp_path: Path) -> None:
    """Entries 1-3; 2 fails once: 1 applied, then 2 and 3 on the next drain, nothing twice."""
    spool = Spool(tmp_path / "spool.jsonl")
    for n in (1, 2, 3):
        spool.append("sms", {"n": n}, AT)
    applied: list[int] = []
    down = {"once": True}

    def apply(kind: str, payload: Mapping[str, Any], at: datetime) -> None:
        if payload["n"] == 2 and down.pop("once", False):
            raise RuntimeError("database down")
        applied.append(int(payload["n"]))

    assert spool.drain(apply) == 1
    assert spool.pending() == 2
    assert spool.drain(apply) == 2
    assert applied == [1, 2, 3]
    assert spool.pending() == 0
    assert spool.drain(apply) == 0


def test_numbering_goes_on_after_a_drain_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    """After an emptied spool new entries are numbered after the old; a torn last line is ignored."""
    path = tmp_path / "spool.jsonl"
    spool = Spool(path)
    spool.append("status", {"n": 1}, AT)
    spool.drain(lambda kind, payload, at: None)
    assert spool.append("status", {"n": 2}, AT) == 2
    with open(path, "a", encoding="utf-8") as out:
        out.write('{"seq": 3, "kind": "sms", "pay')  # a crash mid-write: never answered 200
    spool.append("sms", {"n": 4}, AT)  # starts on a line of its own
    seen: list[tuple[str, int]] = []
    assert spool.drain(lambda kind, payload, at: seen.append((kind, payload["n"]))) == 2
    assert seen == [("status", 2), ("sms", 4)]
