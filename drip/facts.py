"""Carrier and provider facts that ship as data with their sources (``drip/data/provider_facts.json``).

A carrier fact is never a constant buried in code: it lives in the data file
next to the page it comes from and the date it was checked, and code asks for
it here. The file is read once, on first use; a broken bundled file raises
:class:`~drip.errors.ConfigError` naming the fact (a unit test reads every fact).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from drip.errors import ConfigError

__all__ = [
    "carrier_fact",
    "max_validity_seconds",
    "provider_facts",
    "retention_days",
    "us_long_code_rate",
]

_FILE = "data/provider_facts.json"


@functools.cache
def provider_facts() -> Mapping[str, Any]:
    """The whole facts file, parsed."""
    try:
        raw = resources.files("drip").joinpath(_FILE).read_text("utf-8")
        facts = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"drip/{_FILE} cannot be read: {exc}") from exc
    if not isinstance(facts, dict):
        raise ConfigError(f"drip/{_FILE}: not a JSON object")
    return facts


def carrier_fact(name: str) -> float:
    """A positive number of the ``carrier`` section; the section must cite a source and a date."""
    section = provider_facts().get("carrier")
    if not isinstance(section, dict) or not section.get("checked"):
        raise ConfigError(f"drip/{_FILE}: the carrier section needs its facts and 'checked'")
    value = section.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"drip/{_FILE}: carrier.{name} must be a positive number, got {value!r}")
    if not any(key.startswith("source") for key in section):
        raise ConfigError(f"drip/{_FILE}: the carrier facts cite no source")
    return float(value)


def us_long_code_rate() -> float:
    """Segments per second a US long code sends (Twilio error 30001): 1."""
    return carrier_fact("us_long_code_segments_per_second")


def max_validity_seconds() -> int:
    """Twilio's largest ValidityPeriod, in seconds (error 90007): 36,000."""
    return int(carrier_fact("max_validity_seconds"))


_RETENTION_FILE = "data/retention.json"


@functools.cache
def retention_days() -> int:
    """Days message bodies are kept by default: the 4-year limitation period, 1,461.

    From ``drip/data/retention.json`` (28 U.S.C. 1658(a)), which cites its source and date.
    """
    try:
        raw = resources.files("drip").joinpath(_RETENTION_FILE).read_text("utf-8")
        section = json.loads(raw)["limitation_period"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"drip/{_RETENTION_FILE} cannot be read: {exc}") from exc
    if not (isinstance(section, dict) and section.get("source") and section.get("checked")):
        raise ConfigError(f"drip/{_RETENTION_FILE}: the period needs its 'source' and 'checked'")
    days = section.get("message_bodies_days")
    if isinstance(days, bool) or not isinstance(days, int) or days <= 0:
        raise ConfigError(f"drip/{_RETENTION_FILE}: message_bodies_days must be a positive integer")
    return days
