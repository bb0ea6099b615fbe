"""``drip contacts import FILE.csv`` (semantics in :mod:`drip.services.importing`).

Exit codes: 0 when at least one row was imported, even with bad rows (they
are listed with their line numbers, fix them and import the file again:
rows already imported are updated, never duplicated), or when the file has
no data rows; 1 when the file has rows and none could be imported; 2 when
the file itself cannot be used (unreadable, not UTF-8, header without
``first_name`` or without ``phone``/``email``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add ``import`` to the ``drip contacts`` group."""
    from drip.cli import contacts_app

    contacts_app.command("import")(import_contacts)


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

    from drip.bootstrap import build
    from drip.services.importing import (
        ImportFileError,
        exit_code,
        import_rows,
        read_csv,
        send_confirmations,
    )
    from drip.store.migrate import current_revision, head_revision

    try:
        rows, notes = read_csv(file)
    except ImportFileError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    deps = build()
    if current_revision(deps.engine) != head_revision():
        typer.secho(
            "the database is not at the latest schema: run `drip db upgrade` first",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(1)
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
        # SPEC C3, after the import committed: one held send per newly consented contact.
        scheduled = send_confirmations(deps, report.to_confirm, now)
        typer.echo(
            f"opt-in confirmations: {len(scheduled.scheduled)} scheduled; they go out through "
            "dispatch inside each contact's send window, at the senders' pace"
        )
    raise typer.Exit(exit_code(report))
