"""Decide: whether a gathered send goes out now, is skipped or deferred (step 2).

The decision itself is the pure policy, :func:`drip.domain.policy.decide`:
this module builds its inputs from what was gathered (the contact's state,
the conversation, the outgoing send) and calls it with the send's own clock,
so the window and every rule are re-checked at fire time. Before the policy,
a send that cannot go whatever the time is settled: a campaign that no
longer validates, an enrollment that ended, a step removed, no sender.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from drip.domain.enums import Channel, OptOutMode
from drip.domain.policy import ConversationState, Decision, Defer, Outgoing, Send, Skip, decide
from drip.services.deps import Deps
from drip.services.fire.gather import Prepared, States, Template, contact_state
from drip.services.fire.outcome import FireResult, Outcome, result_of
from drip.services.senders import missing_sender_reason


@dataclass(frozen=True, slots=True)
class Go:
    """A send the policy lets go out now, with what rendering and delivering it need."""

    decision: Send
    template: Template
    #: The policy at another instant, for the carrier's clock (a text that would
    #: reach the handset after the window closes is deferred to its next opening).
    reopen: Callable[[datetime], Decision]


def decide_send(deps: Deps, p: Prepared, states: States, now: datetime) -> Go | Outcome:
    """The policy's decision for this send at ``now``; an outcome unless it goes out."""
    send, contact = p.send, p.contact
    if p.problem is not None:
        return result_of(p, None, "failed", "internal_error", p.problem)
    if not p.enrollment_active:
        reason = "skipped: the enrollment ended before this step fired (stop_on_reply or stopped)"
        return result_of(p, None, "skipped", "enrollment_stopped", reason)
    template = p.template()
    if template is None:
        reason = f"skipped: step {send.step_id!r} is no longer in the campaign"
        return result_of(p, None, "skipped", "step_removed", reason)
    if p.sender is None and send.channel is Channel.SMS:
        return result_of(p, None, "skipped", "no_sender", missing_sender_reason(send.sender_role))

    conversation = states.conversations.get(p.conversation_key(), ConversationState())
    last_sent = states.last_sent.get(send.enrollment_id) if send.enrollment_id else None
    cstate = contact_state(contact, deps, states.marketing.get(contact.id, []))
    outgoing = _outgoing(deps, p, last_sent)

    def decide_at(at: datetime) -> Decision:
        return decide(
            cstate,
            conversation,
            outgoing,
            at,
            state_rules=deps.account.state_rules,
            blackouts=deps.account.blackouts,
            frequency_cap=deps.account.frequency_cap,
        )

    decision = decide_at(now)
    if isinstance(decision, Skip):
        return result_of(p, decision, "skipped", decision.code.value, decision.reason)
    if isinstance(decision, Defer):
        return deferral(p, decision)
    return Go(decision, template, decide_at)


def deferral(p: Prepared, decision: Defer) -> Outcome:
    """A send the policy (or the carrier's clock) puts back to pending until ``decision.until``."""
    result = FireResult(
        p.send.id, "deferred", decision.code.value, decision.reason, deferred_until=decision.until
    )
    return Outcome(p, decision, result)


def _outgoing(deps: Deps, p: Prepared, last_sent: datetime | None) -> Outgoing:
    send, campaign = p.send, p.campaign
    opt_out = OptOutMode.RULES
    interval = timedelta(days=30)
    window = deps.account.send_window
    expires_at = send.expires_at
    if campaign is not None:
        interval = timedelta(days=campaign.opt_out.interval_days)
        window = campaign.send_window or window
        if send.step_id is not None:
            with contextlib.suppress(KeyError):  # a removed step is skipped later
                step = campaign.step(send.step_id)
                opt_out = step.opt_out
                if step.expires_after is not None:
                    # counted from when the step was first due, whatever deferred it since
                    step_expiry = send.original_due_at + step.expires_after
                    expires_at = min(expires_at or step_expiry, step_expiry)
    return Outgoing(
        kind=send.kind,
        due_at=send.due_at,
        channel=send.channel,
        opt_out=opt_out,
        footer_interval=interval,
        window=window,
        catching_up=send.catching_up,
        enrollment_last_sent_at=last_sent,
        held_to_window=send.held_to_window,
        expires_at=expires_at,
    )
