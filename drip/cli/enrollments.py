"""Enrollments: ``drip enroll``, ``drip unenroll`` and ``drip enroll-many``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from drip.cli import framework as cli
from drip.cli._common import (
    campaign_name,
    confirm_or_yes,
    contact_filters,
    progress,
    ready_deps,
)


def register(app: cli.App) -> None:
    """Add the enrollment commands to ``app``."""
    app.command("enroll")(enroll)
    app.command("unenroll")(unenroll)
    app.command("enroll-many")(enroll_many)


def enroll(
    contact: Annotated[str, cli.Argument(help="Contact id or phone number.")],
    campaign: Annotated[str, cli.Argument(help="Campaign name (or its YAML file).")],
) -> None:
    """Enroll a contact in a campaign: its steps become scheduled sends."""
    from drip.services.contacts import find_contact
    from drip.services.enrollment import enroll as enroll_contact

    deps = ready_deps()
    name = campaign_name(campaign)
    found = find_contact(deps, contact)
    result = enroll_contact(deps, found.id, name, deps.clock.now())
    cli.echo(result.message)


def unenroll(
    contact: Annotated[str, cli.Argument(help="Contact id or phone number.")],
    campaign: Annotated[str, cli.Argument(help="Campaign name (or its YAML file).")],
) -> None:
    """End one enrollment (stopped, reason operator); its pending sends are cancelled."""
    from drip.services.contacts import find_contact
    from drip.services.lifecycle import unenroll as end_enrollment

    deps = ready_deps()
    found = find_contact(deps, contact)
    cli.echo(end_enrollment(deps, found.id, campaign_name(campaign), deps.clock.now()).message)


def enroll_many(
    campaign: Annotated[str, cli.Argument(help="Campaign name (or its YAML file).")],
    state: Annotated[
        str | None, cli.Option(help="Only contacts in this state (address, else area code).")
    ] = None,
    source: Annotated[
        str | None,
        cli.Option(
            help="Only contacts that came in this way: registration | import | api | manual."
        ),
    ] = None,
    agent: Annotated[str | None, cli.Option(help="Only contacts of this agent (phone).")] = None,
    name: Annotated[str | None, cli.Option(help="Only names containing this (any case).")] = None,
    textable: Annotated[
        bool | None,
        cli.Option(
            "--textable/--not-textable", help="Only contacts that may (or may not) be texted now."
        ),
    ] = None,
    not_enrolled: Annotated[
        bool, cli.Option("--not-enrolled", help="Only contacts active in no campaign.")
    ] = False,
    file: Annotated[
        Path | None,
        cli.Option(
            "--file",
            help="Only these phone numbers, one a line (or a CSV's first column).",
            dir_okay=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, cli.Option("--dry-run", help="Show how many and who is excluded, then stop.")
    ] = False,
    yes: Annotated[bool, cli.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Enroll every contact matching the filters in one command, one transaction per batch.

    Contacts already active in the campaign are left out (and counted). Without
    --dry-run it asks for confirmation on a terminal; elsewhere it needs --yes.
    """
    from drip.services.selection import enroll_selection, read_phone_file, select_contacts

    filters = contact_filters(
        state=state,
        source=source,
        agent=agent,
        name=name,
        textable=textable,
        not_enrolled=not_enrolled,
        phones=read_phone_file(file) if file is not None else None,
    )
    deps = ready_deps()
    now = deps.clock.now()
    name_of = campaign_name(campaign)
    selection = select_contacts(deps, filters, campaign=name_of, summaries=False)
    cli.echo(
        f"{len(selection.ids)} of {selection.considered} contacts will be enrolled in "
        f"{name_of} ({filters.describe()}); {sum(n for _, n in selection.excluded)} excluded"
    )
    for line in selection.lines():
        cli.echo(line)
    if dry_run:
        cli.echo("dry run: nothing enrolled")
        return
    if not selection.ids:
        cli.echo("nothing to enroll")
        return
    confirm_or_yes(f"Enroll {len(selection.ids)} contacts in {name_of}?", yes)
    with progress("enrolling", len(selection.ids)) as advance:
        result = enroll_selection(deps, name_of, selection, now, on_batch=advance)
    cli.echo(f"enrolled {result.enrolled} contacts in {name_of}: {result.sends} sends scheduled")
