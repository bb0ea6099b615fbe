"""``drip events ingest`` batches a file's lines: small at first, then full size, every line once in order."""

from __future__ import annotations

from itertools import pairwise

from drip.cli.events import CHUNK, FIRST_CHUNK, _chunks


def test_batches_grow_from_the_first_size_to_the_full_one() -> None:
    """The first batch is FIRST_CHUNK lines, each next one half as large again, capped at CHUNK."""
    lines = [(n, f"line {n}") for n in range(1, 40_001)]
    sizes = [len(chunk) for chunk in _chunks(lines)]
    assert sizes[:4] == [FIRST_CHUNK, FIRST_CHUNK * 3 // 2, FIRST_CHUNK * 9 // 4, 3375]
    assert max(sizes) == CHUNK and sizes[-2] == CHUNK
    assert all(b >= a for a, b in pairwise(sizes[:-1]))


def test_every_line_comes_once_in_order() -> None:
    """The batches, joined, are the file's lines as they were, for sizes around each boundary."""
    for n in (0, 1, FIRST_CHUNK, FIRST_CHUNK + 1, 12_345):
        lines = [(k, str(k)) for k in range(1, n + 1)]
        assert [line for chunk in _chunks(lines) for line in chunk] == lines
