"""Opt-in confirmations of imported consent, held to the send pipeline
(docs/compliance.md#consent).

Consent given live (the registration form, the API, a START) is confirmed at
once by ``contacts.add_contact`` through ``send_now``. Consent brought in by an
import is evidence of an earlier opt-in: its confirmation is a pending send,
due now and ``held_to_window``, that dispatch fires like a campaign text, so
the contact's send window, state rules and the sender's pacing apply (never a
burst at night).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import structlog

from drip.domain.enums import Channel, MessageKind, SenderRole
from drip.services.deps import Deps
from drip.store import sends

log = structlog.get_logger("drip.confirmations")


def schedule_confirmations(
    deps: Deps,
    contact_ids: Iterable[int],
    now: datetime,
    *,
    on_batch: Callable[[int], None] | None = None,
) -> list[int]:
    """One held opt-in confirmation per contact, due ``now``; the ids of the sends."""
    wanted = list(dict.fromkeys(contact_ids))
    rows: list[dict[str, Any]] = [
        {
            "contact_id": contact_id,
            "kind": MessageKind.OPT_IN_CONFIRMATION,
            "channel": Channel.SMS,
            "body": deps.account.opt_in_confirmation,
            "sender_role": SenderRole.AGENT,
            "due_at": now,
            "created_at": now,
            "held_to_window": True,
        }
        for contact_id in wanted
    ]
    if not rows:
        return []
    from drip.store import claims  # the claim SQL: only when there is something to insert

    with deps.sessions.begin() as session:
        for start in range(0, len(rows), claims.BATCH_SIZE):
            batch = rows[start : start + claims.BATCH_SIZE]
            claims.bulk_insert_sends(session, batch, now=now)
            if on_batch is not None:
                on_batch(len(batch))
        ids = sends.held_created_at(session, wanted, now)
    log.info("confirmations_scheduled", sends=len(rows))
    return ids
