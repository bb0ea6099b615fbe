"""Texts: ``drip text`` (one manual text), ``drip bulk`` (many) and ``drip bulk cancel ID``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from drip.cli._common import AS_OPTION, actor_name, confirm_or_yes, fail, progress, ready_deps


class BulkGroup(click.Group):
    """``drip bulk BODY ...`` runs ``send``; ``drip bulk cancel ID`` runs ``cancel``.

    The first word picks a subcommand only when it names one; anything else
    (a text, an option) goes to ``send``, so ``drip bulk "Open house"`` works.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["send", *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        formatter.write_usage("drip bulk", "BODY [OPTIONS] | cancel ID")


@click.command("text")
@click.argument("contact", help="Contact id or phone number.")
@click.argument("body", help="The text to send.")
@click.option("--from", "sender", default="agent", show_default=True, help="agent | concierge")
def text(contact: str, body: str, sender: str) -> None:
    """Send a manual text now, under the footer rules (not held by the send window)."""
    from drip.domain.enums import MessageKind, SenderRole
    from drip.services.contacts import find_contact, send_now

    deps = ready_deps()
    found = find_contact(deps, contact)
    result = send_now(
        deps, found.id, MessageKind.MANUAL, body, deps.clock.now(), sender_role=SenderRole(sender)
    )
    if result.outcome != "sent":
        raise fail(f"not sent (send {result.send_id}): {result.reason}")
    click.echo(f"sent (send {result.send_id}): {result.reason}")


@click.group("bulk", cls=BulkGroup, no_args_is_help=True)
def bulk() -> None:
    """Text many contacts at once (`drip bulk BODY` with filters), or cancel a bulk
    (`drip bulk cancel ID`)."""


@bulk.command("send")
@click.argument("body", help="The text; template variables such as {VisitorFirstName} work.")
@click.option(
    "--two-way-only", is_flag=True, help="Only contacts who have replied to their agent (two-way)."
)
@click.option("--campaign", help="Only contacts active in this campaign.")
@click.option("--state", help="Only contacts in this state (address, else area code).")
@click.option(
    "--not-contacted-since",
    type=int,
    metavar="DAYS",
    help="Only contacts with no outbound message in the last DAYS days.",
)
@click.option(
    "--expires-at",
    metavar='"YYYY-MM-DD HH:MM"',
    help="Skip (expired) any text that cannot go by then, never send it late: a time in "
    "the account's zone (default_timezone), or with its UTC offset (13:00-04:00, 17:00Z).",
)
@click.option("--stage", help="Only contacts in this CRM stage (set by lead events).")
@click.option("--tag", help="Only contacts with this CRM tag.")
@click.option("--dry-run", is_flag=True, help="Show who would get it and stop.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def bulk_send(
    body: str,
    two_way_only: bool,
    campaign: str | None,
    state: str | None,
    not_contacted_since: int | None,
    expires_at: str | None,
    stage: str | None,
    tag: str | None,
    dry_run: bool,
    yes: bool,
) -> None:
    """Text many contacts at once: shows who gets it and who is excluded (and why), then
    schedules one send per recipient. The sends go out through dispatch (`drip tick`,
    `drip run` or the workers) under the consent gate, send window, state rules and
    footer rules, decided again when each one fires. Without --dry-run it asks for
    confirmation on a terminal (elsewhere it needs --yes); the bulk gets an id, and
    `drip bulk cancel ID` cancels what it has not sent yet. With --expires-at a text
    that cannot go by then (window, caps, pacing, an outage) is skipped, never sent late;
    an expiry already past, or before any selected contact could get the text, is refused."""
    from drip.domain.frequency import parse_expiry
    from drip.errors import ValidationError
    from drip.services.bulk import BulkFilters, expiry_problem, plan_bulk, start_bulk

    deps = ready_deps()
    now = deps.clock.now()
    filters = BulkFilters(two_way_only, campaign, state, not_contacted_since, stage, tag)
    expires: datetime | None = None
    if expires_at is not None:
        try:
            expires = parse_expiry(expires_at, deps.account.default_timezone)
        except ValidationError as exc:
            raise fail(f"error: --expires-at: {exc}") from exc
    try:
        plan = plan_bulk(deps, body, filters, now, expires_at=expires)
    except ValidationError as exc:  # a bad body, an expiry already past: one line, exit 1
        raise fail(f"error: {exc}") from exc
    for line in plan.lines():
        click.echo(line)
    problem = expiry_problem(plan)
    if problem is not None:
        raise fail(f"error: {problem}")
    # The pacing forecast: when the last text leaves, how many slip to the next day.
    from drip.services.pacing import forecast_bulk, forecast_lines

    expected = forecast_bulk(deps, plan.body, plan.recipients, now, expires_at=expires)
    for line in forecast_lines(expected, deps.account.default_timezone):
        click.echo(line)
    if dry_run:
        click.echo("dry run: nothing scheduled")
        return
    if not plan.recipients:
        click.echo("nothing to send")
        return
    confirm_or_yes(f"Schedule this text for {len(plan.recipients)} contacts?", yes)
    words = ", ".join(
        f"{k}={v}"
        for k, v in (
            ("two_way_only", "yes" if two_way_only else None),
            ("campaign", campaign),
            ("state", state),
            ("not_contacted_since", not_contacted_since),
            ("expires_at", plan.local(expires) if expires is not None else None),
            ("stage", stage),
            ("tag", tag),
        )
        if v is not None
    )
    with progress("scheduling", len(plan.recipients)) as advance:
        done = start_bulk(deps, plan, now, filters=words, on_batch=advance)
    click.echo(
        f"bulk {done.bulk_id}: scheduled {done.sends} sends, due now: they go out on the next "
        "dispatch (`drip tick`, `drip run` or the Celery beat), each checked again when it fires; "
        f"`drip bulk cancel {done.bulk_id}` cancels what has not gone out"
        + (f"; what has not gone by {plan.local(expires)} is skipped (expired)" if expires else "")
    )


@bulk.command("cancel")
@click.argument("bulk_id", type=int, help="The bulk's id.")
@AS_OPTION
def bulk_cancel(bulk_id: int, as_name: str | None) -> None:
    """Cancel what a bulk has not sent yet (each cancellation is recorded, with who)."""
    from drip.services.operator_actions import Actor
    from drip.services.operator_actions import bulk_cancel as cancel

    deps = ready_deps()
    click.echo(cancel(deps, Actor(actor_name(as_name), "cli"), bulk_id, deps.clock.now()))
