"""``drip events ingest`` collects cycles less often while it ingests, and puts the thresholds back."""

from __future__ import annotations

import gc

import pytest

from drip.cli.events import BULK_GC_THRESHOLD, _bulk_gc


def _fail_inside(seen: list[tuple[int, int, int]]) -> None:
    with _bulk_gc():
        seen.append(gc.get_threshold())
        raise RuntimeError("a failing ingest")


def test_the_bulk_thresholds_hold_inside_and_the_old_ones_come_back() -> None:
    """Inside: BULK_GC_THRESHOLD; after, even after an error: the thresholds as they were."""
    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []
    with pytest.raises(RuntimeError):
        _fail_inside(seen)
    assert seen == [BULK_GC_THRESHOLD]
    assert gc.get_threshold() == before
    assert before != BULK_GC_THRESHOLD
