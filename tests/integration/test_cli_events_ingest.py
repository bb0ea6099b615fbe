"""``drip events ingest`` over many batches: in order, each bad line by its number, nothing lost."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from services_support import World, open_world, run_cli, store_without_applying
from sqlalchemy import select

import drip.cli.events as cli_events
from drip.store.models import Contact, InboxEvent


def _event(n: int, kind: str, ref: str, data: dict[str, Any], minute: int) -> dict[str, Any]:
    return {
        "id": f"ev-{n}",
        "type": kind,
        "occurred_at": f"2026-03-02T15:{minute:02d}:00Z",
        "contact": {"external_id": ref},
        "data": data,
    }


def _created(n: int, ref: str, minute: int) -> dict[str, Any]:
    event = _event(n, "lead.created", ref, {"first_name": ref.title()}, minute)
    event["contact"]["phone"] = f"+1617555{n:04d}"
    return event


def _stages(world: World) -> dict[str | None, str | None]:
    with world.deps.sessions() as session:
        return dict(session.execute(select(Contact.external_id, Contact.stage)).all())


def test_a_file_of_many_batches_keeps_its_order_its_line_numbers_and_the_contacts_it_makes(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of two: a lead made in one batch is named by the next, bad lines keep their numbers."""
    monkeypatch.setattr(cli_events, "CHUNK", 2)
    lines = [
        json.dumps(_created(1, "crm-a", 0)),  # batch 1
        json.dumps(_event(2, "lead.updated", "crm-a", {"stage": "new"}, 1)),
        json.dumps(_created(3, "crm-b", 2)),  # batch 2
        "{not json",
        json.dumps(_event(5, "lead.updated", "crm-b", {"stage": "active"}, 3)),
        json.dumps(_event(6, "lead.updated", "crm-b", {"stage": "showing"}, 4)),  # batch 3
        json.dumps(_event(7, "lead.updated", "nobody", {"stage": "new"}, 5)),
        json.dumps(_event(8, "lead.updated", "crm-a", {"stage": "closed"}, 6)),  # batch 4
        # Older than event 8: it does not move crm-a's stage back.
        json.dumps(_event(9, "lead.updated", "crm-a", {"stage": "lost"}, 2)),
        json.dumps(_event(2, "lead.updated", "crm-a", {"stage": "new"}, 1)),  # batch 5
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with open_world(db_url, tmp_path) as world:
        result = run_cli(world, "events", "ingest", str(path))
        assert result.exit_code == 0, result.output
        assert "7 accepted, 1 duplicate, 2 invalid" in result.output
        assert f"{path}:4: not JSON" in result.output
        assert f"{path}:7: invalid (contact): names no contact" in result.output
        assert _stages(world) == {"crm-a": "closed", "crm-b": "showing"}
        with world.deps.sessions() as session:
            unapplied = session.scalars(
                select(InboxEvent.event_id).where(InboxEvent.processed_at.is_(None))
            ).all()
        assert unapplied == []


def test_apply_stored_applies_what_a_stopped_ingest_left_once_it_is_ten_minutes_old(
    db_url: str, tmp_path: Path
) -> None:
    """`drip events apply-stored` applies an event stored 11 minutes ago and never applied, then finds nothing."""
    with open_world(db_url, tmp_path) as world:
        store_without_applying(world.deps, [_created(1, "crm-a", 0)], world.now)

        def stored(minutes_ago: int) -> None:
            with world.deps.sessions.begin() as session:
                row = session.scalars(select(InboxEvent)).one()
                row.received_at = datetime.now(UTC) - timedelta(minutes=minutes_ago)

        stored(1)
        fresh = run_cli(world, "events", "apply-stored")
        assert fresh.exit_code == 0 and "no event waiting to be applied" in fresh.output
        stored(11)
        swept = run_cli(world, "events", "apply-stored")
        assert swept.exit_code == 0, swept.output
        assert "1 accepted" in swept.output
        assert run_cli(world, "events", "apply-stored").output.strip() == (
            "no event waiting to be applied"
        )
        assert _stages(world) == {"crm-a": None}
