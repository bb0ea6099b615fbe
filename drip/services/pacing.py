"""When queued texts leave: the pacing forecast of ``drip bulk --dry-run`` and ``drip queue``.

Each sender number sends at its rate (``senders:`` of ``account.yaml``, else
the carrier's 1 segment/s of a US long code), and a text goes only inside its
contact's send window (docs/compliance.md#the-carriers-clock). The forecast
plays that out with :func:`drip.domain.pacing.forecast`:

- :func:`forecast_bulk` for a bulk plan (before anything is scheduled);
- :func:`forecast_pending` for what is pending now and in the next hours
  (``drip queue``);
- :func:`forecast_lines` puts either in words, times in a given zone.

Segments are counted on the rendered text with the opt-out footer (the first
text from a sender carries it), so the forecast errs on the late side.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime

import pendulum

from drip.domain.campaign import Campaign
from drip.domain.enums import Channel, MessageKind, SenderRole
from drip.domain.frequency import lookback
from drip.domain.message import ACCOUNT_TEMPLATE_VARIABLES, render, sms_size, with_footer
from drip.domain.pacing import Forecast, QueuedText, Senders, forecast
from drip.domain.pacing import forecast_groups as domain_forecast_groups
from drip.domain.policy import DAY, ConversationState, Defer, Outgoing, Send, decide
from drip.domain.window import SendWindow
from drip.errors import DripError
from drip.services.deps import Deps
from drip.services.fire import contact_state
from drip.services.senders import resolve_sender, template_values
from drip.store import agents as store_agents
from drip.store import queue as queue_store
from drip.store import repository as repo
from drip.store.models import Agent, Contact
from drip.store.models import Campaign as CampaignRow
from drip.transports.pacing import MARGIN

__all__ = [
    "forecast_bulk",
    "forecast_groups",
    "forecast_lines",
    "forecast_pending",
    "grouped_texts",
    "queued_text",
    "sender_rates",
]

#: Contacts read per query.
_CHUNK = 5000


def sender_rates(deps: Deps) -> Senders:
    """The rates texts leave at, per sender number (see :func:`_senders`)."""
    return _senders(deps)


def _senders(deps: Deps) -> Senders:
    """The rates texts leave at: drip's paced rate, each number's configured one (or the
    carrier's default, 1 segment/s) less :data:`drip.transports.pacing.MARGIN`."""
    configured = deps.account.senders
    k = 1.0 + MARGIN
    return Senders(
        configured.default_rate / k,
        {phone: rate / k for phone, rate in configured.rates.items()},
        configured.daily_segments,
    )


def queued_text(
    deps: Deps,
    contact: Contact,
    agent: Agent | None,
    body: str,
    outgoing: Outgoing,
    *,
    at: datetime,
    marketing: Sequence[datetime] = (),
    sender_role: SenderRole = SenderRole.AGENT,
    sender_phone: str | None = None,
) -> QueuedText | None:
    """One text as the forecast sees it, or None when it will not be sent (skipped, no sender).

    ``at`` is when it is due; the policy moves it to its window's opening.
    """
    sender = resolve_sender(sender_role, agent, deps.account, sender_phone)
    if sender is None or contact.phone is None:
        return None
    state = contact_state(contact, deps, list(marketing))
    rules, cap = deps.account.state_rules, deps.account.frequency_cap
    decision = decide(
        state, ConversationState(), outgoing, at, state_rules=rules, frequency_cap=cap
    )
    not_before = at
    if isinstance(decision, Defer):
        not_before = decision.until
        decision = decide(
            state, ConversationState(), outgoing, not_before, state_rules=rules, frequency_cap=cap
        )
    if not isinstance(decision, Send):
        return None
    closes, lost = decision.window_closes_at, False
    if outgoing.expires_at is not None and closes is not None and closes < outgoing.expires_at:
        # Missing this window: does the next opening still come before the expiry?
        later = decide(
            state, ConversationState(), outgoing, closes, state_rules=rules, frequency_cap=cap
        )
        lost = not isinstance(later, Defer) or later.until >= outgoing.expires_at
    try:
        text = render(
            body, template_values(contact, sender, deps.account), allowed=ACCOUNT_TEMPLATE_VARIABLES
        )
    except DripError:
        text = body
    if decision.footer:
        text = with_footer(text, deps.account.footer)
    return QueuedText(
        sender.phone,
        sms_size(text).segments,
        not_before,
        closes,
        expires_at=outgoing.expires_at,
        lost_if_slipping=lost,
    )


def forecast_bulk(
    deps: Deps,
    body: str,
    contact_ids: Sequence[int],
    now: datetime,
    *,
    expires_at: datetime | None = None,
) -> Forecast:
    """When the texts of a bulk to ``contact_ids`` would leave if scheduled at ``now``.

    The SMS sends already pending on the same numbers and due by now (imported
    opt-in confirmations, an earlier bulk) go first: they are counted in
    ``ahead`` and push the bulk's texts later (read from the running counts,
    a group of like sends at a time). With ``expires_at`` (``drip
    bulk --expires-at``) the texts that could not leave by then are counted
    in ``expiring``.
    """
    outgoing = Outgoing(
        kind=MessageKind.BULK,
        due_at=now,
        channel=Channel.SMS,
        window=deps.account.send_window,
        expires_at=expires_at,
    )
    texts: list[QueuedText] = []
    with deps.sessions() as session:
        agents = {a.id: a for a in store_agents.all_agents(session)}
        for start in range(0, len(contact_ids), _CHUNK):
            part = list(contact_ids[start : start + _CHUNK])
            contacts = repo.contacts_by_id(session, part)
            since = now - lookback(deps.account.frequency_cap, DAY)
            marketing = repo.marketing_sent_since(session, part, since)
            for cid in part:
                contact = contacts[cid]
                agent = agents.get(contact.agent_id) if contact.agent_id else None
                item = queued_text(
                    deps, contact, agent, body, outgoing, at=now, marketing=marketing.get(cid, [])
                )
                if item is not None:
                    texts.append(item)
        groups = [g for g in queue_store.pending_groups(session, now, 0) if g.due_now]
        rows = queue_store.campaigns(session)
    queued = grouped_texts(deps, now, groups, agents, rows)
    ahead = [pair for pairs in queued.values() for pair in pairs]
    return forecast(texts, _senders(deps), now, ahead=ahead)


def body_and_window(
    deps: Deps, campaign: Campaign | None, body: str | None, step_id: str | None
) -> tuple[str | None, SendWindow]:
    """A pending text's body (its own, else its step's in the current campaign) and window."""
    if campaign is None:
        return body, deps.account.send_window
    if body is None and step_id is not None:
        with contextlib.suppress(KeyError):
            body = campaign.step(step_id).body
    return body, campaign.send_window or deps.account.send_window


def forecast_pending(deps: Deps, now: datetime, *, hours: int = 24) -> Forecast:
    """When the pending SMS due by ``now`` + ``hours`` leave at their senders' rates.

    Read from the running counts (one representative text per group of like
    sends, see :func:`forecast_groups`), so its cost is the number of groups.
    """
    with deps.sessions() as session:
        groups = queue_store.pending_groups(session, now, hours)
        agents = queue_store.agents(session)
        rows = queue_store.campaigns(session)
    return forecast_groups(deps, now, groups, agents, rows)


def grouped_texts(
    deps: Deps,
    now: datetime,
    groups: Sequence[queue_store.Group],
    agents: dict[int, Agent],
    campaigns: dict[int, CampaignRow],
) -> dict[str, list[tuple[QueuedText, int]]]:
    """Per sender, each group of pending SMS as one rendered text and how many like it.

    A group's text is due at its latest due time (so a forecast errs late,
    never early); a step no longer in its campaign, or a campaign that no
    longer parses, is left out.
    """
    parsed: dict[int, Campaign | None] = {}
    queues: dict[str, list[tuple[QueuedText, int]]] = {}
    for group in groups:
        send, contact = group.send, group.contact
        if send.channel is not Channel.SMS or contact is None:
            continue
        row = campaigns.get(send.campaign_id) if send.campaign_id else None
        campaign: Campaign | None = None
        if row is not None:
            if row.id not in parsed:
                try:
                    parsed[row.id] = deps.campaigns.get(row.id, row.version, row.definition)
                except Exception:  # a stored campaign that no longer parses is left out
                    parsed[row.id] = None
            campaign = parsed[row.id]
        body, window = body_and_window(deps, campaign, send.body, send.step_id)
        if body is None:
            continue
        due = max(group.last_due, now)
        outgoing = Outgoing(
            kind=send.kind,
            due_at=due,
            channel=Channel.SMS,
            window=window,
            held_to_window=send.held_to_window,
        )
        agent = agents.get(contact.agent_id) if contact.agent_id else None
        item = queued_text(
            deps,
            contact,
            agent,
            body,
            outgoing,
            at=due,
            sender_role=send.sender_role,
            sender_phone=send.sender_phone,
        )
        if item is not None:
            queues.setdefault(item.sender, []).append((item, group.n))
    return queues


def forecast_groups(
    deps: Deps,
    now: datetime,
    groups: Sequence[queue_store.Group],
    agents: dict[int, Agent],
    campaigns: dict[int, CampaignRow],
) -> Forecast:
    """When each sender's pending SMS leave at its rate: one rendered text per group.

    A group of ``n`` like texts takes ``n`` slots of its representative's
    segments from its latest due time; the ones whose slot would end after
    their window closes slip.
    """
    queued = grouped_texts(deps, now, groups, agents, campaigns)
    pairs = [pair for sender in sorted(queued) for pair in queued[sender]]
    return domain_forecast_groups(pairs, _senders(deps), now)


def forecast_lines(result: Forecast, tz: str) -> list[str]:
    """The forecast in words: when the last text leaves, how many slip, per sender."""

    def local(at: datetime) -> str:
        return f"{pendulum.instance(at).in_timezone(tz):%Y-%m-%d %H:%M:%S} {tz}"

    if not result.senders:
        return ["pacing forecast: no texts to send"]
    last = result.last_at
    head = (
        f"pacing forecast: {result.texts} texts from {len(result.senders)} sender number(s); "
        + (f"the last leaves at {local(last)}" if last is not None else "none leaves today")
    )
    lines = [head]
    if result.ahead:
        lines.append(
            f"  after {result.ahead} text(s) already queued on the same number(s), which go first"
        )
    if result.slipping:
        lines.append(
            f"  {result.slipping} slip to the next opening of their window: "
            "their sender cannot send them before it closes"
        )
    if result.expiring:
        lines.append(
            f"  {result.expiring} would expire: their sender cannot send them before the "
            "expiry (or their window reopens after it); they are skipped, never sent late"
        )
    for s in result.senders:
        span = (
            f"first {local(s.first_at)}, last {local(s.last_at)}"
            if s.first_at is not None and s.last_at is not None
            else "none before the window closes"
        )
        configured = s.rate * (1.0 + MARGIN)
        lines.append(
            f"  {s.sender} at {configured:.3g} segment(s)/s (drip paces {s.rate:.3g}/s, "
            f"a {MARGIN:.0%} margin): {s.texts} texts, {s.segments} segments "
            f"today; {span}"
            + (f"; {s.slipping} slip to the next opening of their window" if s.slipping else "")
            + (f"; {s.expiring} would expire" if s.expiring else "")
        )
    return lines
