"""Texts: ``drip text`` (one manual text), ``drip bulk`` (many) and ``drip bulk cancel ID``."""

from __future__ import annotations

from typing import Annotated, Any

from drip.cli import framework as cli
from drip.cli._common import confirm_or_yes, fail, progress, ready_deps


class BulkGroup(cli.Group):
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


def register(app: cli.App) -> None:
    """Add ``text`` and the ``bulk`` group to ``app``."""
    app.command("text")(text)
    bulk_app = cli.App(
        cls=BulkGroup,
        no_args_is_help=True,
        help="Text many contacts at once (`drip bulk BODY` with filters), or cancel a bulk "
        "(`drip bulk cancel ID`).",
    )
    bulk_app.command("send")(bulk)
    bulk_app.command("cancel")(bulk_cancel)
    app.add_group(bulk_app, name="bulk")


def text(
    contact: Annotated[str, cli.Argument(help="Contact id or phone number.")],
    body: Annotated[str, cli.Argument(help="The text to send.")],
    sender: Annotated[str, cli.Option("--from", help="agent | concierge")] = "agent",
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
    cli.echo(f"sent (send {result.send_id}): {result.reason}")


def bulk(
    body: Annotated[
        str, cli.Argument(help="The text; template variables such as {VisitorFirstName} work.")
    ],
    two_way_only: Annotated[
        bool,
        cli.Option(
            "--two-way-only", help="Only contacts who have replied to their agent (two-way)."
        ),
    ] = False,
    campaign: Annotated[
        str | None, cli.Option("--campaign", help="Only contacts active in this campaign.")
    ] = None,
    state: Annotated[
        str | None,
        cli.Option("--state", help="Only contacts in this state (address, else area code)."),
    ] = None,
    not_contacted_since: Annotated[
        int | None,
        cli.Option(
            "--not-contacted-since",
            metavar="DAYS",
            help="Only contacts with no outbound message in the last DAYS days.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, cli.Option("--dry-run", help="Show who would get it and stop.")
    ] = False,
    yes: Annotated[bool, cli.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Text many contacts at once: shows who gets it and who is excluded (and why), then
    schedules one send per recipient. The sends go out through dispatch (`drip tick`,
    `drip run` or the workers) under the consent gate, send window, state rules and
    footer rules, decided again when each one fires. Without --dry-run it asks for
    confirmation on a terminal (elsewhere it needs --yes); the bulk gets an id, and
    `drip bulk cancel ID` cancels what it has not sent yet."""
    from drip.services.bulk import BulkFilters, plan_bulk, start_bulk

    deps = ready_deps()
    now = deps.clock.now()
    filters = BulkFilters(two_way_only, campaign, state, not_contacted_since)
    plan = plan_bulk(deps, body, filters, now)
    for line in plan.lines():
        cli.echo(line)
    # --- pacing forecast (SPEC §4a): when the last text leaves, how many slip ---
    from drip.services.pacing import forecast_bulk, forecast_lines

    expected = forecast_bulk(deps, plan.body, plan.recipients, now)
    for line in forecast_lines(expected, deps.account.default_timezone):
        cli.echo(line)
    if dry_run:
        cli.echo("dry run: nothing scheduled")
        return
    if not plan.recipients:
        cli.echo("nothing to send")
        return
    confirm_or_yes(f"Schedule this text for {len(plan.recipients)} contacts?", yes)
    words = ", ".join(
        f"{k}={v}"
        for k, v in (
            ("two_way_only", "yes" if two_way_only else None),
            ("campaign", campaign),
            ("state", state),
            ("not_contacted_since", not_contacted_since),
        )
        if v is not None
    )
    with progress("scheduling", len(plan.recipients)) as advance:
        done = start_bulk(deps, plan, now, filters=words, on_batch=advance)
    cli.echo(
        f"bulk {done.bulk_id}: scheduled {done.sends} sends, due now: they go out on the next "
        "dispatch (`drip tick`, `drip run` or the Celery beat), each checked again when it fires; "
        f"`drip bulk cancel {done.bulk_id}` cancels what has not gone out"
    )


def bulk_cancel(bulk_id: Annotated[int, cli.Argument(help="The bulk's id.")]) -> None:
    """Cancel what a bulk has not sent yet (each cancellation is recorded)."""
    from drip.services.bulk import cancel_bulk

    deps = ready_deps()
    cli.echo(cancel_bulk(deps, bulk_id, deps.clock.now()).message)
