"""Texts: ``drip text`` (one manual text) and ``drip bulk`` (many)."""

from __future__ import annotations

from typing import Annotated

import typer

from drip.cli._common import fail, ready_deps


def register(app: typer.Typer) -> None:
    """Add ``text`` and ``bulk`` to ``app``."""
    app.command("text")(text)
    app.command("bulk")(bulk)


def text(
    contact: Annotated[str, typer.Argument(help="Contact id or phone number.")],
    body: Annotated[str, typer.Argument(help="The text to send.")],
    sender: Annotated[str, typer.Option("--from", help="agent | concierge")] = "agent",
) -> None:
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
    typer.echo(f"sent (send {result.send_id}): {result.reason}")


def bulk(
    body: Annotated[
        str, typer.Argument(help="The text; template variables such as {VisitorFirstName} work.")
    ],
    two_way_only: Annotated[
        bool,
        typer.Option(
            "--two-way-only", help="Only contacts who have replied to their agent (two-way)."
        ),
    ] = False,
    campaign: Annotated[
        str | None, typer.Option("--campaign", help="Only contacts active in this campaign.")
    ] = None,
    state: Annotated[
        str | None,
        typer.Option("--state", help="Only contacts in this state (address, else area code)."),
    ] = None,
    not_contacted_since: Annotated[
        int | None,
        typer.Option(
            "--not-contacted-since",
            metavar="DAYS",
            help="Only contacts with no outbound message in the last DAYS days.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show who would get it and stop.")
    ] = False,
) -> None:
    """Text many contacts at once: shows who gets it and who is excluded (and why), then
    schedules one send per recipient. The sends go out through dispatch (`drip tick`,
    `drip run` or the workers) under the consent gate, send window, state rules and
    footer rules, decided again when each one fires."""
    from rich.progress import Progress

    from drip.services.bulk import BulkFilters, plan_bulk, schedule_bulk

    deps = ready_deps()
    now = deps.clock.now()
    filters = BulkFilters(two_way_only, campaign, state, not_contacted_since)
    plan = plan_bulk(deps, body, filters, now)
    for line in plan.lines():
        typer.echo(line)
    if dry_run:
        typer.echo("dry run: nothing scheduled")
        return
    if not plan.recipients:
        typer.echo("nothing to send")
        return
    with Progress(transient=True) as progress:
        task = progress.add_task("scheduling", total=len(plan.recipients))
        scheduled = schedule_bulk(deps, plan, now, on_batch=lambda n: progress.advance(task, n))
    typer.echo(
        f"scheduled {scheduled} bulk sends, due now: they go out on the next dispatch "
        "(`drip tick`, `drip run` or the Celery beat), each checked again when it fires"
    )
