"""``drip webhooks status|retry``: the outbox backlog, dead events, sending them again."""

from __future__ import annotations

import click

from drip.cli._common import echo_json, ready_deps


@click.group("webhooks")
def webhooks() -> None:
    """Outgoing webhooks: the backlog, the dead events, retrying them."""


@webhooks.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(as_json: bool) -> None:
    """How many events wait, are being retried, went out, and were given up (dead)."""
    from drip.services.webhooks import status as outbox_status

    deps = ready_deps()
    found = outbox_status(deps)
    c = found.counts
    if as_json:
        echo_json(
            {
                "pending": c.pending,
                "retrying": c.retrying,
                "delivered": c.delivered,
                "dead": c.dead,
                "oldest_pending_at": c.oldest_pending_at.isoformat()
                if c.oldest_pending_at
                else None,
                "dead_events": list(found.dead),
                "webhooks": [w.name for w in deps.account.webhooks],
            }
        )
        return
    names = ", ".join(f"{w.name} ({w.url})" for w in deps.account.webhooks) or "none configured"
    click.echo(f"webhooks: {names}")
    oldest = (
        f"; oldest from {c.oldest_pending_at:%Y-%m-%d %H:%M} UTC" if c.oldest_pending_at else ""
    )
    click.echo(
        f"backlog: {c.pending} pending ({c.retrying} being retried){oldest}; "
        f"{c.delivered} delivered; {c.dead} dead"
    )
    for d in found.dead:
        click.echo(
            f"  dead {d['id']} {d['type']} contact {d['contact_id']} after {d['attempts']} "
            f"tries: {d['last_error']}"
        )
    if found.dead:
        click.echo("send them again with `drip webhooks retry`")


@webhooks.command("retry")
@click.argument("event_ids", nargs=-1)
def retry(event_ids: tuple[str, ...]) -> None:
    """Send dead events again (all, or the EVENT_IDS given), with a fresh day of retries."""
    from drip.services.webhooks import retry as retry_dead

    deps = ready_deps()
    n = retry_dead(deps, deps.clock.now(), event_ids)
    click.echo(f"{n} dead event(s) queued again")
