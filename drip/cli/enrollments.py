"""Enrollments: ``drip enroll``, ``drip unenroll``, ``drip enroll-many`` and ``drip enrollments``."""

from __future__ import annotations

from pathlib import Path

import click

from drip.cli._common import (
    AS_OPTION,
    actor_name,
    campaign_name,
    confirm_or_yes,
    contact_filters,
    progress,
    ready_deps,
)

_CONTACT = click.argument("contact", help="Contact id or phone number.")
_CAMPAIGN = click.argument("campaign", help="Campaign name (or its YAML file).")


@click.command("enroll")
@_CONTACT
@_CAMPAIGN
def enroll(contact: str, campaign: str) -> None:
    """Enroll a contact in a campaign: its steps become scheduled sends."""
    from drip.services.contacts import find_contact
    from drip.services.enrollment import enroll as enroll_contact

    deps = ready_deps()
    name = campaign_name(campaign)
    found = find_contact(deps, contact)
    result = enroll_contact(deps, found.id, name, deps.clock.now())
    click.echo(result.message)


@click.command("unenroll")
@_CONTACT
@_CAMPAIGN
def unenroll(contact: str, campaign: str) -> None:
    """End one enrollment (stopped, reason operator); its pending sends are cancelled."""
    from drip.services.contacts import find_contact
    from drip.services.lifecycle import unenroll as end_enrollment

    deps = ready_deps()
    found = find_contact(deps, contact)
    click.echo(end_enrollment(deps, found.id, campaign_name(campaign), deps.clock.now()).message)


@click.command("enroll-many")
@_CAMPAIGN
@click.option("--state", help="Only contacts in this state (address, else area code).")
@click.option(
    "--source", help="Only contacts that came in this way: registration | import | api | manual."
)
@click.option("--agent", help="Only contacts of this agent (phone).")
@click.option("--name", help="Only names containing this (any case).")
@click.option(
    "--textable/--not-textable",
    default=None,
    help="Only contacts that may (or may not) be texted now.",
)
@click.option("--stage", help="Only contacts in this CRM stage (set by lead events).")
@click.option("--tag", help="Only contacts with this CRM tag.")
@click.option("--not-enrolled", is_flag=True, help="Only contacts active in no campaign.")
@click.option(
    "--file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Only these phone numbers, one a line (or a CSV's first column).",
)
@click.option("--dry-run", is_flag=True, help="Show how many and who is excluded, then stop.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def enroll_many(
    campaign: str,
    state: str | None,
    source: str | None,
    agent: str | None,
    name: str | None,
    stage: str | None,
    tag: str | None,
    textable: bool | None,
    not_enrolled: bool,
    file: Path | None,
    dry_run: bool,
    yes: bool,
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
        stage=stage,
        tag=tag,
    )
    deps = ready_deps()
    now = deps.clock.now()
    name_of = campaign_name(campaign)
    selection = select_contacts(deps, filters, campaign=name_of, summaries=False)
    click.echo(
        f"{len(selection.ids)} of {selection.considered} contacts will be enrolled in "
        f"{name_of} ({filters.describe()}); {sum(n for _, n in selection.excluded)} excluded"
    )
    for line in selection.lines():
        click.echo(line)
    if dry_run:
        click.echo("dry run: nothing enrolled")
        return
    if not selection.ids:
        click.echo("nothing to enroll")
        return
    confirm_or_yes(f"Enroll {len(selection.ids)} contacts in {name_of}?", yes)
    with progress("enrolling", len(selection.ids)) as advance:
        result = enroll_selection(deps, name_of, selection, now, on_batch=advance)
    click.echo(f"enrolled {result.enrolled} contacts in {name_of}: {result.sends} sends scheduled")


@click.group("enrollments")
def enrollments() -> None:
    """Hold or release one contact's enrollments (recorded, with who did it)."""


_SOME_CAMPAIGN = click.argument("campaign", required=False)


@enrollments.command("pause")
@_CONTACT
@_SOME_CAMPAIGN
@AS_OPTION
def pause(contact: str, campaign: str | None, as_name: str | None) -> None:
    """Hold CONTACT's enrollments (or only CAMPAIGN's) until `drip enrollments resume`."""
    from drip.services.contacts import find_contact
    from drip.services.operator_actions import Actor, pause_contact

    deps = ready_deps()
    found = find_contact(deps, contact)
    name = campaign_name(campaign) if campaign else None
    who = Actor(actor_name(as_name), "cli")
    click.echo(pause_contact(deps, who, found.id, name, deps.clock.now()))


@enrollments.command("resume")
@_CONTACT
@_SOME_CAMPAIGN
@AS_OPTION
def resume(contact: str, campaign: str | None, as_name: str | None) -> None:
    """Release CONTACT's paused enrollments; the remaining steps keep their spacing."""
    from drip.services.contacts import find_contact
    from drip.services.operator_actions import Actor, resume_contact

    deps = ready_deps()
    found = find_contact(deps, contact)
    name = campaign_name(campaign) if campaign else None
    who = Actor(actor_name(as_name), "cli")
    click.echo(resume_contact(deps, who, found.id, name, deps.clock.now()))
