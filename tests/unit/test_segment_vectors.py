"""Segment counting against the figures of Twilio's own message segment calculator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from drip.domain.message import MAX_BODY_CHARS, graphemes, sms_size, too_long
from drip.testing.fake_twilio import num_segments

_DATA = json.loads(
    (Path(__file__).parent.parent / "data" / "twilio_segment_vectors.json").read_text("utf-8")
)
VECTORS: list[dict[str, Any]] = _DATA["vectors"]


def test_the_vector_file_cites_its_source_and_holds_enough_vectors() -> None:
    """The figures name where they come from and when, and there are at least 30."""
    assert "message-segment-calculator" in _DATA["source"]
    assert _DATA["checked"] == "2026-11-30"
    assert len(VECTORS) >= 30


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_encoding_and_segments_match_twilios_calculator(vector: dict[str, Any]) -> None:
    """drip's encoding and segment count equal the calculator's for this body."""
    size = sms_size(vector["body"])
    assert (size.encoding, size.segments) == (vector["encoding"], vector["segments"])


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_the_fake_twilio_server_reports_the_same_segments(vector: dict[str, Any]) -> None:
    """The fake server's ``num_segments`` agrees with the calculator too."""
    assert num_segments(vector["body"]) == vector["segments"]


def test_a_flag_straddling_a_boundary_moves_whole_to_the_next_segment() -> None:
    """The issue's example: 65 letters, a flag, 64 letters is 3 segments, not 2."""
    assert sms_size("a" * 65 + "🇺🇸" + "b" * 64).segments == 3


def test_graphemes_keep_clusters_whole_and_split_crlf() -> None:
    """A ZWJ family is one cluster; CR LF is two characters, as in Twilio's calculator."""
    assert graphemes("👨‍👩‍👧x\r\n") == ["👨‍👩‍👧", "x", "\r", "\n"]


def test_too_long_is_strictly_over_1600_characters() -> None:
    """1,600 characters pass, 1,601 do not (Twilio error 21617)."""
    assert MAX_BODY_CHARS == 1600
    assert not too_long("x" * 1600)
    assert too_long("x" * 1601)
