"""``drip bulk BODY [filters]``: a bulk text under SPEC §2 and §4 (see :mod:`drip.services.bulk`)."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add ``drip bulk`` to the command line."""
    app.command("bulk")(bulk)


def bulk(  # noqa: PLR0917 - Typer maps each CLI option to a parameter
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

    from drip.bootstrap import build
    from drip.services.bulk import BulkFilters, plan_bulk, schedule_bulk
    from drip.store.migrate import current_revision, head_revision

    deps = build()
    if current_revision(deps.engine) != head_revision():
        typer.secho(
            "the database is not at the latest schema: run `drip db upgrade` first",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(1)
    now = deps.clock.now()
    filters = BulkFilters(two_way_only, campaign, state, not_contacted_since)
    plan = plan_bulk(deps, body, filters, now)
    for line in plan.lines():
        typer.echo(line)
    # --- pacing forecast (SPEC §4a): when the last text leaves, how many slip ---
    from drip.services.pacing import forecast_bulk, forecast_lines

    expected = forecast_bulk(deps, plan.body, plan.recipients, now)
    for line in forecast_lines(expected, deps.account.default_timezone):
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
