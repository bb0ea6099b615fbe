"""A file of lead events, batch by batch: the next batch stored by a second process while
this one's is applied.

Checking and storing a batch (its JSON, its fields, its digest, the inbox insert) is
about half the work of ingesting it, and needs nothing of the batch before it but the
contacts that batch's ``lead.created`` events make (:attr:`StoredBatch.made`).
Applying is the other half and must take the batches in order. So on PostgreSQL a
second process (forked, with its own connections) stores batch k + 1 while this one
applies batch k; the two share the machine's cores with the database. Each batch is
stored before it acts, as ever: a process stopped between the two leaves stored,
unapplied events that the producer's repeat or ``drip events apply-stored`` applies
(:data:`drip.services.event_timing.RETAKE_AFTER`).

SQLite takes one writer at a time, and a file of one batch has nothing to overlap: both
steps then run in this process, one after the other.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from drip.errors import DripError
from drip.services.events import StoredBatch, store_batch

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from drip.services.deps import Deps

#: Lines of a file: ``(line number, text)``.
Lines = Sequence[tuple[int, str]]


@dataclass(frozen=True, slots=True)
class StoredLines:
    """A batch of lines, stored: the line number of each event of the batch (by its index),
    the lines that were not JSON ``(line number, message)``, the stored batch, and the
    ``now`` it was stored at (applied at the same)."""

    numbers: list[int]
    not_json: list[tuple[int, str]]
    batch: StoredBatch
    now: datetime


def store_lines(
    deps: Deps, lines: Lines, now: datetime, earlier: AbstractSet[str] = frozenset()
) -> StoredLines:
    """Decode ``lines`` (one JSON object each) and store their events (:func:`store_batch`)."""
    events: list[Any] = []
    numbers: list[int] = []
    not_json: list[tuple[int, str]] = []
    for number, text in lines:
        try:
            events.append(json.loads(text))
        except json.JSONDecodeError as exc:
            not_json.append((number, exc.msg))
            continue
        numbers.append(number)
    return StoredLines(numbers, not_json, store_batch(deps, events, now, earlier=earlier), now)


def can_store_ahead(database_url: str) -> bool:
    """Whether a second process may store while this one applies: PostgreSQL (many
    writers) on Linux (a forked process starts at once, with drip already imported)."""
    return database_url.startswith("postgresql") and sys.platform == "linux"


@contextmanager
def stored_in_order(
    chunks: Iterator[Lines], make_deps: Callable[[], Deps], *, ahead: bool
) -> Iterator[Iterator[StoredLines]]:
    """The chunks, each stored, in order; with ``ahead`` the next is stored by a second
    process while the caller applies this one.

    Enter before this process opens a database connection or starts a thread: the
    second process is forked on entry and must inherit neither. ``make_deps`` builds
    the storing side's dependencies (in the second process, with ``ahead``); each batch
    is stored at that side's ``clock.now()``.
    """
    if not ahead:
        yield _in_process(chunks, make_deps)
        return
    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe()
    storer = context.Process(
        target=_serve, args=(theirs, ours, make_deps), name="drip-events-store", daemon=True
    )
    storer.start()
    theirs.close()
    try:
        yield _through(ours, chunks)
    finally:
        ours.close()  # the storer reads the end of its input and exits
        storer.join(timeout=30)
        if storer.is_alive():
            storer.terminate()
            storer.join()


def _in_process(chunks: Iterator[Lines], make_deps: Callable[[], Deps]) -> Iterator[StoredLines]:
    yield from _store_each(make_deps(), chunks)


def _store_each(deps: Deps, chunks: Iterable[Lines]) -> Iterator[StoredLines]:
    """Each chunk stored in turn, naming the contacts the chunk before it makes."""
    earlier: frozenset[str] = frozenset()
    for lines in chunks:
        stored = store_lines(deps, lines, deps.clock.now(), earlier)
        # This batch is applied before the next: the next may name what this one makes.
        earlier = stored.batch.made
        yield stored


def _through(ours: Connection, chunks: Iterator[Lines]) -> Iterator[StoredLines]:
    """Chunk k's stored batch, handed back once chunk k + 1 is sent to the storer.

    The answer is read before the next chunk is sent: both are larger than a pipe's
    buffer, and each side would wait for the other to read.
    """
    first = next(chunks, None)
    if first is None:
        return
    _send(ours, first)
    for lines in chunks:
        stored = _answer(ours)
        _send(ours, lines)
        yield stored
    yield _answer(ours)


def _send(ours: Connection, lines: Lines) -> None:
    """Send the storer a chunk; if it has stopped, raise what it said before it did."""
    try:
        ours.send(list(lines))
    except OSError as exc:
        _answer(ours)  # raises, with the storer's last words when it left any
        raise DripError("the process storing events stopped") from exc


def _answer(ours: Connection) -> StoredLines:
    try:
        kind, value = ours.recv()
    except EOFError as exc:
        raise DripError("the process storing events stopped") from exc
    if kind == "error":
        raise DripError(f"storing events failed: {value}")
    assert isinstance(value, StoredLines)
    return value


def _serve(theirs: Connection, ours: Connection, make_deps: Callable[[], Deps]) -> None:
    """The storer: each chunk received is stored and answered, in order, until the input ends.

    ``ours``, the applier's end inherited by the fork, is closed first: while this process
    holds it, the applier closing it would not end this one's input.
    """
    ours.close()
    try:
        for stored in _store_each(make_deps(), _received(theirs)):
            theirs.send(("stored", stored))
    except BaseException as exc:  # everything, an exit included, is told to the applier
        line = traceback.format_exception_only(exc)[-1].strip()
        with suppress(OSError):  # the applier has gone: nobody is left to tell
            theirs.send(("error", line))
    finally:
        theirs.close()


def _received(theirs: Connection) -> Iterator[Lines]:
    """The chunks the applier sends, until it closes its end."""
    while True:
        try:
            yield theirs.recv()
        except EOFError:
            return
