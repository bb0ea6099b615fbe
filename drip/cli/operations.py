"""Operations: ``drip tick``, ``drip run``, ``drip explain``, ``drip history``."""

from __future__ import annotations

from typing import Annotated

import typer

from drip.cli._common import deps as build_deps
from drip.cli._common import ready_deps


def register(app: typer.Typer) -> None:
    """Add the operations commands to ``app``."""
    app.command("tick")(tick)
    app.command("run")(run)
    app.command("explain")(explain)
    app.command("history")(history)


def tick() -> None:
    """Dispatch and fire what is due once, then exit (for cron)."""
    from drip.services.dispatch import tick as run_tick

    deps = ready_deps()
    summary = run_tick(deps, deps.clock.now())
    counts = ", ".join(f"{n} {k}" for k, n in sorted(summary.counts().items())) or "nothing due"
    typer.echo(f"tick: {summary.claimed} claimed: {counts}")
    for send_id in summary.unknown:
        typer.secho(f"send {send_id} is UNKNOWN (see `drip explain {send_id}`)", fg="red")


def run(
    host: Annotated[str, typer.Option(help="Webhook app address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Webhook app port.")] = 8000,
    no_web: Annotated[bool, typer.Option("--no-web", help="Do not serve the webhook app.")] = False,
) -> None:
    """Embedded service: dispatch loop, sending and the webhook app; Ctrl-C stops cleanly."""
    import threading

    from drip.embedded import install_stop_handlers
    from drip.embedded import run as run_embedded

    deps = ready_deps()
    stop = threading.Event()
    install_stop_handlers(stop)
    typer.echo(
        f"drip running: tick every {deps.settings.tick_seconds}s"
        + ("" if no_web else f", webhooks on http://{host}:{port}")
        + "; Ctrl-C to stop"
    )
    ticks = run_embedded(deps, stop, host=host, port=port, serve=not no_web, on_tick=typer.echo)
    typer.echo(f"stopped after {ticks} tick(s)")


def explain(send_id: Annotated[int, typer.Argument(help="Scheduled send id.")]) -> None:
    """Why a send was sent, skipped or deferred, with or without the footer."""
    from drip.services.audit import explain as explain_send

    deps = build_deps()
    for line in explain_send(deps, send_id):
        typer.echo(line)


def history(contact: Annotated[str, typer.Argument(help="Contact id or phone number.")]) -> None:
    """A contact's timeline: consent, messages in and out, decisions."""
    from drip.services.audit import history as contact_history
    from drip.services.audit import local_time
    from drip.services.contacts import find_contact

    deps = build_deps()
    found = find_contact(deps, contact)
    person, tz, entries = contact_history(deps, found.id)
    textable = (
        "opted out"
        if person.sms_opted_out_at
        else ("consent given" if person.sms_consent_at else "no sms consent")
    )
    typer.echo(
        f"contact {person.id}: {person.first_name} {person.last_name} ({tz}); sms: {textable}; "
        f"text status: {person.text_status.value}; email opted out: {person.email_opted_out}"
    )
    for e in entries:
        typer.echo(f"  {local_time(e.at, tz)}  {e.what:<11} {e.text}")
