"""``drip purge``: message bodies past the account's retention, counted or removed.

The cutoff is ``now`` minus ``retention.message_bodies_days`` of
``account.yaml`` (default 1,461 days, the 4-year limitation period of 28
U.S.C. 1658(a)). Consent evidence is kept: docs/compliance.md#erasure-and-retention.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog

from drip.services.deps import Deps
from drip.store import retention as store

__all__ = ["PurgeResult", "purge"]

log = structlog.get_logger("drip.retention")


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What ``drip purge`` removed (or, with ``dry_run``, would remove)."""

    cutoff: datetime
    days: int
    dry_run: bool
    counts: store.PurgeCounts

    @property
    def message(self) -> str:
        """The lines the command prints."""
        c = self.counts
        verb = "would remove" if self.dry_run else "removed"
        lines = [
            f"message bodies older than {self.days} days (created before "
            f"{self.cutoff:%Y-%m-%d %H:%M} UTC): {verb} {c.messages} message body(ies), "
            f"{c.sends} send body(ies), {c.bulks} bulk body(ies)",
            "consent evidence kept (consent events and consent wording)",
        ]
        if self.dry_run:
            lines.append("dry run: nothing changed")
        return "\n".join(lines)


def purge(deps: Deps, now: datetime, *, dry_run: bool = False) -> PurgeResult:
    """Count (``dry_run``) or remove the message bodies past retention."""
    days = deps.account.retention.message_bodies_days
    cutoff = deps.account.retention.cutoff(now)
    if dry_run:
        with deps.sessions() as session:
            counts = store.count(session, cutoff)
    else:
        counts = store.purge(deps.sessions, cutoff)
        log.info(
            "bodies_purged",
            days=days,
            messages=counts.messages,
            sends=counts.sends,
            bulks=counts.bulks,
        )
    return PurgeResult(cutoff, days, dry_run, counts)
