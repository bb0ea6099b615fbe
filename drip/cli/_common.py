"""Helpers shared by the command modules: errors, dependencies, output formats.

Nothing heavy is imported here at module level: ``drip --help`` imports every
command module, so each command imports what it needs when it runs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.exceptions import Exit

if TYPE_CHECKING:
    from drip.services.deps import Deps
    from drip.services.selection import ContactFilters


def fail(message: str, code: int = 1) -> Exit:
    """Print ``message`` in red on stderr and return the exit to raise."""
    click.secho(message, fg="red", err=True)
    return Exit(code)


#: The dependencies built in this process: :func:`drip.cli.main` closes their
#: engines' connections on the way out.
BUILT: list[Deps] = []


def deps() -> Deps:
    """Settings, account and dependencies for a command (built once, here)."""
    from drip.bootstrap import build

    built = build()
    BUILT.append(built)
    return built


def ensure_db(built: Deps) -> None:
    """Stop with a clear message when the database is not at the latest schema."""
    # One query and the migration files' headers, not Alembic (start-up time).
    from drip.store.schema_version import database_revision, shipped_head

    if database_revision(built.engine) != shipped_head():
        raise fail("the database is not at the latest schema: run `drip db upgrade` first")


def ready_deps() -> Deps:
    """:func:`deps`, checked to be at the latest schema."""
    built = deps()
    ensure_db(built)
    return built


def campaign_name(ref: str) -> str:
    """A campaign name, or the name inside a campaign file given by path."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") and path.exists():
        from drip.campaigns.loader import load_campaign

        return load_campaign(path).name
    return ref


def check_format(as_json: bool, as_csv: bool) -> None:
    """``--json`` and ``--csv`` are exclusive."""
    if as_json and as_csv:
        raise fail("choose one of --json and --csv", 2)


def echo_json(document: object) -> None:
    """One JSON document on stdout (dates as ISO 8601 strings)."""
    import json

    click.echo(json.dumps(document, indent=2, ensure_ascii=False, default=_jsonable))


def _jsonable(value: object) -> object:
    from datetime import datetime
    from enum import Enum

    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def echo_csv(rows: Sequence[Mapping[str, Any]], columns: Iterable[str] | None = None) -> None:
    """Rows as CSV on stdout, with a header line (the keys of the first row)."""
    import csv

    fields = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    writer = csv.DictWriter(sys.stdout, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    sys.stdout.flush()


def _cell(value: object) -> object:
    from datetime import datetime

    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


def confirm_or_yes(question: str, yes: bool) -> None:
    """Ask on a terminal; outside one, ``--yes`` is required."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise fail("not a terminal: add --yes to confirm (or --dry-run to only look)", 2)
    if not click.confirm(question, default=False):
        raise fail("cancelled: nothing changed", 1)


def actor_name(as_name: str | None) -> str:
    """The name recorded for a CLI action: ``--as NAME``, else the operating-system user."""
    import getpass

    if as_name and as_name.strip():
        return as_name.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or the password database
        return "unknown"


#: ``--as NAME``: the person a CLI action is recorded under (default: the OS user).
AS_OPTION = click.option(
    "--as", "as_name", metavar="NAME", help="Record NAME as who did it (default: the OS user)."
)


def on_terminal() -> bool:
    """True when stderr is a terminal (progress bars are drawn there)."""
    return sys.stderr.isatty()


@contextmanager
def progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when it is a terminal; the callback advances it by n.

    Off a terminal nothing is drawn, not even an empty line on stdout.
    """
    if not on_terminal():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=max(1, total))
        yield lambda n: bar.advance(task, n)


def contact_filters(
    *,
    state: str | None,
    source: str | None,
    agent: str | None,
    name: str | None,
    textable: bool | None,
    not_enrolled: bool,
    phones: tuple[str, ...] | None = None,
    stage: str | None = None,
    tag: str | None = None,
) -> ContactFilters:
    """The operator's contact filters; a ``--source`` that is no consent source exits 2."""
    from drip.domain.enums import ConsentSource
    from drip.services.selection import ContactFilters

    try:
        origin = ConsentSource(source) if source else None
    except ValueError:
        known = ", ".join(s.value for s in ConsentSource)
        raise fail(f"--source: {source!r} is not one of {known}", 2) from None
    return ContactFilters(
        state=state,
        source=origin,
        agent=agent,
        name=name,
        textable=textable,
        not_enrolled=not_enrolled,
        phones=phones,
        stage=stage,
        tag=tag,
    )
