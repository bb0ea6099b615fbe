"""Retention: ``drip purge [--dry-run]``."""

from __future__ import annotations

import click

from drip.cli._common import ready_deps


@click.command("purge")
@click.option("--dry-run", is_flag=True, help="Only count what would be removed.")
def purge(dry_run: bool) -> None:
    """Remove message bodies older than retention.message_bodies_days (account.yaml).

    The default is 1,461 days, the 4-year limitation period of 28 U.S.C. 1658(a).
    The messages stay (times, statuses, decisions); consent evidence is kept.
    """
    from drip.services.retention import purge as run_purge

    deps = ready_deps()
    click.echo(run_purge(deps, deps.clock.now(), dry_run=dry_run).message)
