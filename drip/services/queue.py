"""``drip queue``: what is due now and in the next 24 hours, by campaign and sender.

A row groups the pending sends of one campaign (or of the bulk, manual and
compliance texts, which belong to none) from one sender number. ``held``
rows belong to a paused campaign: dispatch does not claim them.
Every value is frozen; the console (a later view) reuses :func:`queue_view`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pendulum
import structlog
from sqlalchemy.exc import SQLAlchemyError

from drip.domain.enums import CampaignStatus, Channel, SenderRole
from drip.domain.pacing import SenderForecast
from drip.services.deps import Deps
from drip.store import queue as store

__all__ = ["HORIZON", "Queue", "QueueRow", "queue_view"]

HORIZON = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class QueueRow:
    campaign: str
    sender: str
    channel: str
    due_now: int
    next_24h: int
    held: bool
    #: The sender's pacing forecast in words, for SMS rows that are
    #: not held: when its last text of the next 24 h leaves at its rate, how many slip.
    pacing: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "sender": self.sender,
            "channel": self.channel,
            "due_now": self.due_now,
            "next_24h": self.next_24h,
            "held": self.held,
            "pacing": self.pacing,
        }


@dataclass(frozen=True, slots=True)
class Queue:
    at: datetime
    rows: tuple[QueueRow, ...]
    #: Lines of the pacing forecast of every pending SMS due in the next 24 h.
    forecast: tuple[str, ...] = ()

    @property
    def due_now(self) -> int:
        return sum(r.due_now for r in self.rows)

    @property
    def next_24h(self) -> int:
        return sum(r.next_24h for r in self.rows)

    @property
    def held(self) -> int:
        return sum(r.due_now + r.next_24h for r in self.rows if r.held)

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "due_now": self.due_now,
            "next_24h": self.next_24h,
            "held": self.held,
            "rows": [r.as_dict() for r in self.rows],
            "forecast": list(self.forecast),
        }


def queue_view(deps: Deps, now: datetime) -> Queue:
    """Pending sends due by ``now`` and within :data:`HORIZON` after it, grouped.

    One read of the running counts (:mod:`drip.store.queue`) feeds both the
    counts and the pacing forecast; its size is the number of groups, not of sends.
    """
    from drip.services.pacing import forecast_groups, forecast_lines

    account = deps.account
    default_agent = account.default_agent.phone if account.default_agent else None
    hours = int(HORIZON.total_seconds() // 3600)
    try:  # fewer deltas to add up below (the tick folds them too); the read is exact either way
        with deps.sessions() as session:
            store.fold(session)
    except SQLAlchemyError as exc:  # e.g. a read-only database role: read without folding
        structlog.get_logger("drip.queue").info("queue_fold_skipped", error=type(exc).__name__)
    with deps.sessions() as session:
        groups = store.pending_groups(session, now, hours)
        agents = store.agents(session)
        rows = store.campaigns(session)
    counts: Counter[tuple[str, str, str, bool, bool]] = Counter()
    for group in groups:
        send, contact = group.send, group.contact
        agent = agents.get(contact.agent_id) if contact is not None and contact.agent_id else None
        row = rows.get(send.campaign_id) if send.campaign_id else None
        if send.channel is Channel.EMAIL:
            sender = "email"
        elif send.sender_phone is not None:
            sender = send.sender_phone
        elif send.sender_role is SenderRole.CONCIERGE:
            sender = account.concierge_phone or "none"
        else:
            sender = (agent.phone if agent else None) or default_agent or "none"
        campaign = row.name if row is not None else f"({send.kind.value})"
        held = row is not None and row.status is CampaignStatus.PAUSED
        counts[(campaign, sender, send.channel.value, held, group.due_now)] += group.n
    grouped: dict[tuple[str, str, str, bool], list[int]] = {}
    for (campaign, sender, channel, held, due), n in counts.items():
        slot = grouped.setdefault((campaign, sender, channel, held), [0, 0])
        slot[0 if due else 1] += n
    expected = forecast_groups(deps, now, groups, agents, rows)
    tz = account.default_timezone
    paced = {s.sender: _sender_words(s, tz) for s in expected.senders}
    out = tuple(
        QueueRow(
            campaign,
            sender,
            channel,
            now_n,
            later_n,
            held,
            paced.get(sender) if channel == Channel.SMS.value and not held else None,
        )
        for (campaign, sender, channel, held), (now_n, later_n) in sorted(grouped.items())
    )
    lines = tuple(forecast_lines(expected, tz)) if expected.senders else ()
    return Queue(now, out, lines)


def _sender_words(s: SenderForecast, tz: str) -> str:
    """One sender's forecast: "last leaves 2026-03-02 14:32 (America/New_York), 3 slip"."""
    if s.last_at is None:
        when = "none leaves before its window closes"
    else:
        when = f"last leaves {pendulum.instance(s.last_at).in_timezone(tz):%Y-%m-%d %H:%M} ({tz})"
    return f"{when}, {s.slipping} slip" if s.slipping else when


def recount(deps: Deps) -> store.Recount:
    """``drip queue --recount``: rebuild the running counts of pending sends from the sends."""
    from drip.store.engine import begin_writing

    with deps.sessions() as session:
        begin_writing(session)
        found = store.recount(session)
    structlog.get_logger("drip.queue").info(
        "queue_recounted", groups=found.groups, off_by=found.off_by, pending=found.pending
    )
    return found
