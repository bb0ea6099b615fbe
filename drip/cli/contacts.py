"""Contacts and agents: ``drip agents``, ``drip contacts add|import|list|opt-out|status``.

``drip contacts import`` exit codes: 0 when at least one row was imported,
even with bad rows (they are listed with their line numbers, fix them and
import the file again: rows already imported are updated, never duplicated),
or when the file has no data rows; 1 when the file has rows and none could be
imported; 2 when the file itself cannot be used (unreadable, not UTF-8,
header without ``first_name`` or without ``phone``/``email``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from drip.cli._common import fail, ready_deps


def register(app: typer.Typer) -> None:
    """Add ``agents`` and the ``contacts`` group to ``app``."""
    app.command("agents")(agents_add)
    contacts_app = typer.Typer(help="Create, import and find contacts.", no_args_is_help=True)
    contacts_app.command("add")(contacts_add)
    contacts_app.command("import")(import_contacts)
    app.add_typer(contacts_app, name="contacts")


def agents_add(
    first_name: Annotated[str, typer.Argument(help="Agent first name.")],
    last_name: Annotated[str, typer.Argument(help="Agent last name.")],
    phone: Annotated[str, typer.Argument(help="The number the agent texts from.")],
) -> None:
    """Add (or rename) an agent who texts from PHONE."""
    from drip.services.contacts import add_agent

    deps = ready_deps()
    agent_id = add_agent(deps, first_name, last_name, phone, deps.clock.now())
    typer.echo(f"agent {agent_id}: {first_name} {last_name}")


def contacts_add(
    first_name: Annotated[str, typer.Option("--first-name", "-f", help="First name.")],
    phone: Annotated[str | None, typer.Option(help="Mobile number (any US format).")] = None,
    last_name: Annotated[str, typer.Option("--last-name", "-l", help="Last name.")] = "",
    email: Annotated[str | None, typer.Option(help="Email address.")] = None,
    state: Annotated[str | None, typer.Option(help="Address state, e.g. FL.")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA zone, e.g. America/Chicago.")] = None,
    agent: Annotated[str | None, typer.Option(help="Phone of the assigned agent.")] = None,
    sms_consent: Annotated[
        bool, typer.Option("--sms-consent", help="The contact agreed to texts (evidence needed).")
    ] = False,
    consent_source: Annotated[
        str, typer.Option(help="registration | import | api | manual")
    ] = "manual",
    consent_text: Annotated[
        str | None, typer.Option(help="The consent wording the contact agreed to.")
    ] = None,
) -> None:
    """Create a contact; with --sms-consent, record the evidence and send the opt-in confirmation."""
    from drip.domain.enums import ConsentSource
    from drip.services.contacts import ConsentEvidence, ContactInput, add_contact

    deps = ready_deps()
    now = deps.clock.now()
    source = ConsentSource(consent_source)
    consent = None
    if sms_consent:
        if not consent_text:
            raise fail("--sms-consent needs --consent-text: the words the contact agreed to")
        consent = ConsentEvidence(now, source, consent_text)
    data = ContactInput(first_name, last_name, phone, email, state, timezone, agent, source)
    result = add_contact(deps, data, consent, now)
    verb = "created" if result.created else "updated"
    typer.echo(
        f"contact {result.contact_id} {verb}; sms consent: {'yes' if result.consent_recorded else 'no'}"
    )
    for note in result.notes:
        typer.echo(f"note: {note}")
    if result.confirmation is not None:
        typer.echo(
            f"opt-in confirmation: {result.confirmation.outcome} ({result.confirmation.reason})"
        )


def import_contacts(
    file: Annotated[
        Path, typer.Argument(help="CSV with a header line.", dir_okay=False, metavar="FILE.csv")
    ],
) -> None:
    """Import contacts from a CSV file, with consent evidence where the file has it.

    Columns: first_name,last_name,phone,email,state,timezone,agent_phone,
    sms_consent,consent_at,consent_source,consent_text. Rows without complete
    evidence (sms_consent yes, consent_at and consent_text) are imported but
    cannot be texted. A phone number already known updates that contact.
    Bad rows are listed with their line number; the good rows are kept.
    """
    from rich.progress import Progress

    from drip.services.importing import (
        ImportFileError,
        exit_code,
        import_rows,
        read_csv,
        send_confirmations,
    )

    try:
        rows, notes = read_csv(file)
    except ImportFileError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    deps = ready_deps()
    now = deps.clock.now()
    for note in notes:
        typer.echo(f"note: {note}")
    with Progress(transient=True) as progress:
        task = progress.add_task(f"importing {file.name}", total=max(1, len(rows)))
        report = import_rows(deps, rows, now, on_row=lambda: progress.advance(task))
    for bad in report.bad_rows:
        typer.secho(f"{file}:{bad.describe()}", fg=typer.colors.RED, err=True)
    for note in report.notes:
        typer.echo(f"note: {note}")
    typer.echo(report.summary())
    if report.to_confirm:
        # SPEC C3, after the import committed: one send per newly consented contact.
        with Progress(transient=True) as progress:
            task = progress.add_task("opt-in confirmations", total=len(report.to_confirm))
            sent = send_confirmations(
                deps, report.to_confirm, now, on_sent=lambda _r: progress.advance(task)
            )
        counts = ", ".join(f"{n} {k}" for k, n in sorted(sent.counts().items()))
        typer.echo(f"opt-in confirmations: {counts}")
    raise typer.Exit(exit_code(report))
