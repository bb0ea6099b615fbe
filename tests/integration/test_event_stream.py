"""Storing a file's next batch in a second process: in order, and a failure there is told here."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from services_support import open_world

from drip.errors import DripError
from drip.services.deps import Deps
from drip.services.event_stream import can_store_ahead, stored_in_order
from drip.store.migrate import upgrade


def _line(n: int, kind: str, contact: dict[str, str], data: dict[str, str]) -> str:
    return json.dumps(
        {
            "id": f"s-{n}",
            "type": kind,
            "occurred_at": f"2026-03-02T15:{n:02d}:00Z",
            "contact": contact,
            "data": data,
        }
    )


A = {"external_id": "crm-a", "phone": "+16175550001"}


@pytest.fixture
def migrated_pg(pg_url: str) -> str:
    """A fresh PostgreSQL database at the latest schema (a second process stores only there)."""
    upgrade(pg_url)
    return pg_url


def test_only_postgresql_is_stored_ahead() -> None:
    """SQLite takes one writer at a time: its batches are stored in the applying process."""
    assert can_store_ahead("postgresql+psycopg://127.0.0.1/test")
    assert not can_store_ahead("sqlite:////tmp/drip.db")


def test_batches_stored_ahead_come_back_in_order_naming_the_leads_made_before(
    migrated_pg: str, tmp_path: Path
) -> None:
    """Each batch stored by the second process, in order; a batch names the lead the one before makes."""
    chunks = [
        [(1, _line(1, "lead.created", A, {})), (2, "{not json")],
        [
            (3, _line(3, "lead.updated", A, {"stage": "new"})),
            (4, _line(4, "lead.updated", A, {"email": "Dana@example.com"})),
        ],
        [
            (5, _line(5, "lead.updated", {"email": "dana@example.com"}, {"stage": "showing"})),
            (6, _line(6, "lead.updated", {"external_id": "crm-z"}, {"stage": "new"})),
        ],
    ]
    with open_world(migrated_pg, tmp_path) as world:
        world.deps.engine.dispose()
        with stored_in_order(iter(chunks), lambda: _deps(world.deps), ahead=True) as stream:
            got = list(stream)
    assert [s.numbers for s in got] == [[1], [3, 4], [5, 6]]
    assert got[0].not_json == [(2, "Expecting property name enclosed in double quotes")]
    # Batch 3 is stored before batch 2 is applied, and may name the lead by the email it sets.
    assert "crm-a" in got[0].batch.made and "@dana@example.com" in got[1].batch.made
    assert [[p.id for p, _ in s.batch.events] for s in got] == [["s-1"], ["s-3", "s-4"], ["s-5"]]
    assert got[2].batch.outcomes[1].message.startswith("names no contact")


def _deps(deps: Deps) -> Deps:
    """The world's dependencies for the forked storer (its engine's pool starts empty there)."""
    return deps


@pytest.mark.parametrize("wait", [0.0, 1.0], ids=["at-once", "after-it-stopped"])
def test_a_storer_that_fails_is_told_to_the_applier_as_a_drip_error(wait: float) -> None:
    """The second process cannot start: iterating raises DripError naming why, even once it has stopped."""

    def broken() -> Deps:
        raise DripError("no database here")

    def chunks() -> Iterator[list[tuple[int, str]]]:
        time.sleep(wait)  # 1 s: the storer has failed and closed its end by now
        yield [(1, _line(1, "lead.created", A, {}))]
        yield [(2, "{}")]

    with (
        pytest.raises(DripError, match=r"storing events failed: .*no database here"),
        stored_in_order(chunks(), broken, ahead=True) as stream,
    ):
        list(stream)
