"""``drip events ingest FILE.jsonl`` and ``drip events apply-stored``: lead events from a CRM.

Plain click commands. ``ingest``: the events ``POST /events`` takes, one JSON object
a line, stored and applied by the same services (:func:`drip.services.events.store_batch`,
:func:`~drip.services.events.apply_stored`), 5,000 lines at a time, the next batch
stored by a second process on PostgreSQL (:mod:`drip.services.event_stream`); a bad
line is reported as ``file:line: message`` and the rest goes on. ``apply-stored``:
the events a stopped process left stored and never applied.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from drip.cli._common import fail, progress, ready_deps

#: Events sent to the ingest service at a time.
CHUNK = 5000
#: The first batch's size: the applying side waits for it alone, so it is small, and
#: each next one half as large again up to :data:`CHUNK` (applying a batch takes longer
#: than storing it, so the storing process keeps ahead).
FIRST_CHUNK = 1000
#: The cyclic garbage collector's thresholds while a file is ingested. A batch keeps
#: thousands of young objects alive (its events, rows and outcomes, freed by reference
#: counting when it is done), which Python's defaults (700, 10, 10) traverse again and
#: again: about a quarter of the command's CPU. Cycles are still collected, less often.
BULK_GC_THRESHOLD = (50_000, 20, 100)


@contextmanager
def _bulk_gc() -> Iterator[None]:
    """:data:`BULK_GC_THRESHOLD` inside, the thresholds as they were after."""
    before = gc.get_threshold()
    gc.set_threshold(*BULK_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*before)


@click.group(
    help="Lead events from a CRM (the same path as POST /events).",
    short_help="Lead events from a CRM (the same path as POST /events).",
)
def events() -> None:
    """Lead events."""


@events.command("ingest")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def ingest_file(file: Path) -> None:
    """Ingest the lead events of FILE.jsonl, one JSON object a line; counts per outcome."""
    from drip.cli._common import deps as make_deps
    from drip.services.event_stream import can_store_ahead, stored_in_order
    from drip.services.events import apply_stored

    deps = ready_deps()
    lines = [
        (number, text)
        for number, text in enumerate(file.read_text(encoding="utf-8").splitlines(), 1)
        if text.strip()
    ]
    ahead = can_store_ahead(deps.settings.database_url) and len(lines) > CHUNK
    # The storing process is forked with none of this one's connections.
    deps.engine.dispose()
    counts: Counter[str] = Counter()
    chunks = _chunks(lines)
    with (
        _bulk_gc(),  # entered first: the storing process is forked with the same thresholds
        stored_in_order(chunks, make_deps if ahead else lambda: deps, ahead=ahead) as stream,
        progress(f"ingesting {file.name}", len(lines)) as advance,
    ):
        for stored in stream:
            for number, message in stored.not_json:
                counts["invalid"] += 1
                click.secho(f"{file}:{number}: not JSON: {message}", fg="red", err=True)
            result = apply_stored(deps, stored.batch, stored.now)
            for outcome in result.outcomes:
                counts[outcome.status] += 1
                if outcome.status not in ("accepted", "duplicate"):
                    line = stored.numbers[outcome.index]
                    where = f" ({outcome.field})" if outcome.field else ""
                    click.secho(
                        f"{file}:{line}: {outcome.status}{where}: {outcome.message}",
                        fg="red",
                        err=True,
                    )
            advance(len(stored.numbers) + len(stored.not_json))
    click.echo(_counted(counts) or "no events")
    if counts and not (counts["accepted"] or counts["duplicate"]):
        raise fail("no event was accepted")


def _chunks(lines: list[tuple[int, str]]) -> Iterator[list[tuple[int, str]]]:
    """``lines`` in batches of :data:`FIRST_CHUNK` growing to :data:`CHUNK`."""
    start, size = 0, min(FIRST_CHUNK, CHUNK)
    while start < len(lines):
        yield lines[start : start + size]
        start += size
        size = min(CHUNK, size * 3 // 2)


def _counted(counts: Counter[str]) -> str:
    """``4 accepted, 1 invalid``: the outcomes' counts, by name."""
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


@events.command("apply-stored")
def apply_stored_events() -> None:
    """Apply the lead events stored over 10 minutes ago and never applied (a process
    stopped between the two); younger ones may still be in another process's hands."""
    from drip.services.events import MAX_SWEEP, apply_unapplied

    deps = ready_deps()
    counts: Counter[str] = Counter()
    while True:
        result = apply_unapplied(deps, deps.clock.now())
        for outcome in result.outcomes:
            counts[outcome.status] += 1
            if outcome.status != "accepted":
                click.secho(
                    f"{outcome.id}: {outcome.status}: {outcome.message}", fg="red", err=True
                )
        if len(result.outcomes) < MAX_SWEEP:
            break
    if not counts:
        click.echo("no event waiting to be applied")
        return
    click.echo(_counted(counts))
