"""Compliance replies go out from the number the contact texted, whoever their agent is."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from services_support import ACCOUNT, CONCIERGE_PHONE, DANA_PHONE, add_dana, open_world, outbound

from drip.domain.enums import MessageKind
from drip.services.inbound import handle_inbound

OTHER_AGENT = "+16175550177"


def test_stop_to_concierge_is_confirmed_from_concierge(db_url: str, tmp_path: Path) -> None:
    """A STOP texted to the concierge line is confirmed from that line, not an agent's."""
    with open_world(db_url, tmp_path) as world:
        contact_id = add_dana(world)
        result = handle_inbound(
            world.deps, from_phone=DANA_PHONE, to_phone=CONCIERGE_PHONE, body="STOP", now=world.now
        )
        assert result.action == "opted_out"
        confirmation = [
            m for m in outbound(world, contact_id) if m.kind is MessageKind.OPT_OUT_CONFIRMATION
        ]
        assert [m.from_addr for m in confirmation] == [CONCIERGE_PHONE]


def test_help_without_any_agent_is_answered_from_the_texted_number(
    db_url: str, tmp_path: Path
) -> None:
    """With no assigned or default agent, HELP is still answered, from the number texted."""
    account = dataclasses.replace(ACCOUNT, default_agent=None)
    with open_world(db_url, tmp_path, account=account) as world:
        contact_id = add_dana(world, consent=False)
        result = handle_inbound(
            world.deps, from_phone=DANA_PHONE, to_phone=OTHER_AGENT, body="help", now=world.now
        )
        assert result.action == "help"
        assert [r.outcome for r in result.replies] == ["sent"]
        replies = [m for m in outbound(world, contact_id) if m.kind is MessageKind.HELP]
        assert [m.from_addr for m in replies] == [OTHER_AGENT]
        assert replies[0].footer is False
