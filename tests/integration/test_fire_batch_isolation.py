"""An unexpected error in one send is recorded for that send alone; its batch goes on."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from services_support import add_dana, open_world

from drip.domain.enums import Channel, MessageKind, SenderRole, SendState
from drip.services.dispatch import recover
from drip.services.fire import fire_batch
from drip.store.models import ScheduledSend
from drip.transports.base import OutboundSms, SmsReceipt
from drip.transports.recording import RecordingTransport

BROKEN = "+16175550166"


class BreaksForOneNumber:
    """A transport with a bug (not a provider refusal) for one destination."""

    def __init__(self, inner: RecordingTransport) -> None:
        self.inner = inner
        self.sent_to: list[str] = []

    def send_sms(self, msg: OutboundSms) -> SmsReceipt:
        if msg.to == BROKEN:
            raise RuntimeError("bug in a transport")
        self.sent_to.append(msg.to)
        return self.inner.send_sms(msg)


def test_one_broken_send_does_not_sink_the_batch(db_url: str, tmp_path: Path) -> None:
    """A RuntimeError in one provider call marks that send unknown; the others are sent."""
    with open_world(db_url, tmp_path) as world:
        phones = ["+16175550161", BROKEN, "+16175550162"]
        contacts = [add_dana(world, phone=p) for p in phones]
        transport = BreaksForOneNumber(world.transport)
        deps = dataclasses.replace(world.deps, sms=transport)
        now = world.now
        with deps.sessions.begin() as session:
            rows = [
                ScheduledSend(
                    contact_id=cid,
                    kind=MessageKind.MANUAL,
                    channel=Channel.SMS,
                    body="Hi, it's Sam",
                    sender_role=SenderRole.AGENT,
                    due_at=now,
                    state=SendState.QUEUED,
                    claimed_at=now,
                    created_at=now,
                )
                for cid in contacts
            ]
            session.add_all(rows)
            session.flush()
            ids = [r.id for r in rows]

        results = {r.send_id: r for r in fire_batch(deps, ids, now)}

        assert [results[i].outcome for i in ids] == ["sent", "unknown", "sent"]
        assert results[ids[1]].code == "transport_error"
        assert transport.sent_to == [phones[0], phones[2]]
        with deps.sessions() as session:
            states = [session.get(ScheduledSend, i).state for i in ids]  # type: ignore[union-attr]
        assert states == [SendState.SENT, SendState.UNKNOWN, SendState.SENT]
        assert recover(deps, now + timedelta(days=1)) == []
