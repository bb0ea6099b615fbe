"""``drip stats``: per campaign and step, what was scheduled, sent, delivered, answered.

Counts per step (one scheduled send is one contact's step):

- ``scheduled``: every send of the step, whatever became of it; ``pending``:
  not fired yet (waiting, held, claimed or in flight);
- ``sent``: went out; ``with_footer``: of those, with the opt-out footer;
- ``skipped``: by reason (the decision code: ``no_consent``, ``opted_out``...);
  ``cancelled``: by the operator, an archive, a removed step or a stop;
- ``deferred``: sends deferred at least once, by reason (``quiet_hours``,
  ``state_cap``, ``catch_up``...), whatever happened next;
- ``delivered`` and ``failed`` (failed or undelivered, by the provider's status);
- ``replied``: sent messages followed by an inbound text of the contact
  before their next message of these campaigns;
- ``opted_out``: likewise, contacts whose opt-out came after this step;
- ``segments`` of the SMS sent and ``cost``: segments x the per-segment price
  of ``drip/data/sms_price.json`` (Twilio's US base price, with its source).

Texts outside campaigns (opt-in confirmations, bulk, manual texts, keyword
replies) are counted the same way by kind, in ``others``, when no campaign is
named: an operator sees the numbers move on the first ``drip tick``, before a
campaign's first step is due. Their ``replied`` and ``opted_out`` count a
reply or opt-out after which that text was the contact's last message of any
kind; the campaigns' own attribution is unchanged by them.

Every value is frozen; the console (a later view) reuses :func:`campaign_stats`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError

from drip.errors import NotFoundError
from drip.services.deps import Deps
from drip.store import stats as store
from drip.store import summary

__all__ = ["CampaignStats", "Price", "Stats", "StepStats", "campaign_stats", "sms_price"]


@dataclass(frozen=True, slots=True)
class Price:
    """The price of one SMS segment, with where it comes from."""

    per_segment: float
    currency: str
    source: str
    checked: str


@cache
def sms_price() -> Price:
    """The per-segment price of ``drip/data/sms_price.json``."""
    raw = json.loads(resources.files("drip").joinpath("data/sms_price.json").read_text("utf-8"))
    return Price(float(raw["per_segment"]), str(raw["currency"]), raw["source"], raw["checked"])


@dataclass(frozen=True, slots=True)
class StepStats:
    """The numbers of one step (or of a whole campaign, with ``step`` ``"all"``)."""

    step: str
    day: int | None
    channel: str
    scheduled: int
    pending: int
    sent: int
    with_footer: int
    skipped: tuple[tuple[str, int], ...]
    deferred: tuple[tuple[str, int], ...]
    cancelled: int
    delivered: int
    failed: int
    replied: int
    opted_out: int
    segments: int
    cost: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "day": self.day,
            "channel": self.channel,
            "scheduled": self.scheduled,
            "pending": self.pending,
            "sent": self.sent,
            "with_footer": self.with_footer,
            "skipped": dict(self.skipped),
            "deferred": dict(self.deferred),
            "cancelled": self.cancelled,
            "delivered": self.delivered,
            "failed": self.failed,
            "replied": self.replied,
            "opted_out": self.opted_out,
            "segments": self.segments,
            "cost": round(self.cost, 4),
        }

    def flat(self) -> dict[str, Any]:
        """One CSV row: the reasons as ``reason=n`` joined by ``;``."""
        row = self.as_dict()
        row["skipped"] = ";".join(f"{k}={v}" for k, v in self.skipped)
        row["deferred"] = ";".join(f"{k}={v}" for k, v in self.deferred)
        return row


@dataclass(frozen=True, slots=True)
class CampaignStats:
    name: str
    kind: str
    status: str
    enrolled: int
    active: int
    completed: int
    stopped: int
    steps: tuple[StepStats, ...]
    total: StepStats

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "enrolled": self.enrolled,
            "active": self.active,
            "completed": self.completed,
            "stopped": self.stopped,
            "steps": [s.as_dict() for s in self.steps],
            "total": self.total.as_dict(),
        }


OTHERS = "(outside campaigns)"


@dataclass(frozen=True, slots=True)
class Stats:
    """``others``: the texts outside campaigns, one row per kind (``step`` is the kind)."""

    at: datetime
    price: Price
    campaigns: tuple[CampaignStats, ...]
    others: tuple[StepStats, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "currency": self.price.currency,
            "price_per_segment": self.price.per_segment,
            "campaigns": [c.as_dict() for c in self.campaigns],
            "others": [s.as_dict() for s in self.others],
        }

    def csv_rows(self) -> list[dict[str, Any]]:
        rows = []
        for c in self.campaigns:
            for s in (*c.steps, c.total):
                rows.append({"campaign": c.name, "enrolled": c.enrolled, **s.flat()})
        for s in self.others:
            rows.append({"campaign": OTHERS, "enrolled": "", **s.flat()})
        return rows


class _Tally:
    def __init__(self) -> None:
        self.n: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.deferred: Counter[str] = Counter()

    def freeze(self, step: str, day: int | None, channel: str, price: float) -> StepStats:
        n = self.n
        return StepStats(
            step=step,
            day=day,
            channel=channel,
            scheduled=n["scheduled"],
            pending=n["pending"],
            sent=n["sent"],
            with_footer=n["with_footer"],
            skipped=tuple(sorted(self.skipped.items())),
            deferred=tuple(sorted(self.deferred.items())),
            cancelled=n["cancelled"],
            delivered=n["delivered"],
            failed=n["failed"],
            replied=n["replied"],
            opted_out=n["opted_out"],
            segments=n["segments"],
            cost=n["segments"] * price,
        )

    def add(self, other: _Tally) -> None:
        self.n.update(other.n)
        self.skipped.update(other.skipped)
        self.deferred.update(other.deferred)


_Key = tuple[int | None, str]


def campaign_stats(deps: Deps, now: datetime, campaign: str | None = None) -> Stats:
    """The numbers of every campaign (or of ``campaign``), per step and in total.

    Without ``campaign``, the texts outside campaigns too, by kind. Read from
    the running counts (:mod:`drip.store.summary`): the cost is the number of
    steps, not the number of sends, replies or opt-outs.
    """
    price = sms_price()
    others = campaign is None
    try:  # fewer deltas to add up below (the tick folds them too); the read is exact either way
        with deps.sessions() as session:
            summary.fold(session)
    except SQLAlchemyError as exc:  # e.g. a read-only database role: read without folding
        structlog.get_logger("drip.stats").info("tally_fold_skipped", error=type(exc).__name__)
    with deps.sessions() as session:
        campaigns = store.campaign_rows(session)
        if campaign is not None:
            named = [c for c in campaigns if c.name == campaign]
            if not named:
                known = ", ".join(c.name for c in campaigns) or "none"
                raise NotFoundError(
                    f"no campaign named {campaign!r} in the database (known: {known})"
                )
            campaigns = named
        only = campaigns[0].id if campaign is not None else None
        counted = summary.tallies(session, only)
    tallies: dict[_Key, _Tally] = {}
    enrollments: dict[int, dict[str, int]] = {}
    channels: dict[str, set[str]] = {}
    for cid, bucket, metric, code, n in counted:
        if metric == "enrollments":
            enrollments.setdefault(cid, {})[code] = int(n)
            continue
        key: _Key = (None, bucket) if cid == summary.OUTSIDE else (cid, bucket)
        if key[0] is None and not others:
            continue
        if metric in summary.ATTRIBUTED and code != summary.scope(key[0], campaign):
            continue  # a reply or opt-out counted in another scope (see drip.store.summary)
        t = tallies.setdefault(key, _Tally())
        if metric == "skipped":
            t.skipped[code] += int(n)
        elif metric == "deferred":
            t.deferred[code] += int(n)
        else:
            t.n["failed" if metric == "undelivered" else metric] += int(n)
            if metric == "scheduled" and key[0] is None:
                channels.setdefault(bucket, set()).add(code)
    out = tuple(_campaign(c, tallies, enrollments.get(c.id, {}), price) for c in campaigns)
    rows = tuple(
        tallies[key].freeze(key[1], None, _one(channels.get(key[1], set())), price.per_segment)
        for key in sorted((k for k in tallies if k[0] is None), key=lambda k: k[1])
    )
    return Stats(now, price, out, rows)


def _one(channels: set[str]) -> str:
    return next(iter(channels)) if len(channels) == 1 else "-"


def _campaign(
    c: Any, tallies: dict[_Key, _Tally], counts: dict[str, int], price: Price
) -> CampaignStats:
    definition = c.definition or {}
    planned = [
        (str(step.get("id")), step.get("day"), str(step.get("channel", "sms")))
        for step in definition.get("steps", [])
    ]
    planned_ids = {p[0] for p in planned}
    extra = sorted(k[1] for k in tallies if k[0] == c.id and k[1] not in planned_ids)
    total = _Tally()
    steps = []
    for step_id, day, channel in [*planned, *((e, None, "?") for e in extra)]:
        t = tallies.get((c.id, step_id), _Tally())
        total.add(t)
        steps.append(t.freeze(step_id, day, channel, price.per_segment))
    return CampaignStats(
        name=c.name,
        kind=str(definition.get("kind", "?")),
        status=str(c.status),
        enrolled=sum(counts.values()),
        active=counts.get("active", 0),
        completed=counts.get("completed", 0),
        stopped=counts.get("stopped", 0),
        steps=tuple(steps),
        total=total.freeze("all", None, "-", price.per_segment),
    )
