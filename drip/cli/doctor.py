"""``drip doctor``: check that this deployment is wired right, one line per check."""

from __future__ import annotations

import click


@click.command("doctor")
def doctor() -> None:
    """Check the database, broker, Twilio, webhook URL, clock, spool, outbox and account.yaml.

    One line per check (ok, FAIL, or a note); exit 1 naming what is wrong.
    """
    from drip.bootstrap import load_settings
    from drip.clock import SystemClock
    from drip.services.doctor import FAIL, run_checks

    settings = load_settings()
    checks = run_checks(settings, SystemClock().now)
    for check in checks:
        click.echo(check.line())
    failed = [c.name for c in checks if c.status == FAIL]
    if failed:
        click.echo(f"drip doctor: {len(failed)} problem(s): {', '.join(failed)}", err=True)
        raise SystemExit(1)
    click.echo("drip doctor: all is well")
