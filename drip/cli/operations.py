"""Operations: ``tick``, ``run``, ``explain``, ``history``, ``stats``, ``queue``, ``reconcile``."""

from __future__ import annotations

from typing import Annotated

from drip.cli import framework as cli
from drip.cli._common import check_format, echo_csv, echo_json, ready_deps
from drip.cli._common import deps as build_deps


def register(app: cli.App) -> None:
    """Add the operations commands to ``app``."""
    app.command("tick")(tick)
    app.command("run")(run)
    app.command("explain")(explain)
    app.command("history")(history)
    app.command("stats")(stats)
    app.command("queue")(queue)
    app.command("reconcile")(reconcile)


def tick() -> None:
    """Dispatch and fire what is due once, then exit (for cron)."""
    from drip.services.dispatch import tick as run_tick

    deps = ready_deps()
    summary = run_tick(deps, deps.clock.now())
    counts = ", ".join(f"{n} {k}" for k, n in sorted(summary.counts().items())) or "nothing due"
    cli.echo(f"tick: {summary.claimed} claimed: {counts}")
    for send_id in summary.unknown:
        cli.secho(f"send {send_id} is UNKNOWN (see `drip explain {send_id}`)", fg="red")


def run(
    host: Annotated[str, cli.Option(help="Webhook app address.")] = "127.0.0.1",
    port: Annotated[int, cli.Option(help="Webhook app port.")] = 8000,
    no_web: Annotated[bool, cli.Option("--no-web", help="Do not serve the webhook app.")] = False,
) -> None:
    """Embedded service: dispatch loop, sending and the webhook app; Ctrl-C stops cleanly."""
    import threading

    from drip.embedded import install_stop_handlers
    from drip.embedded import run as run_embedded

    deps = ready_deps()
    stop = threading.Event()
    install_stop_handlers(stop)
    cli.echo(
        f"drip running: tick every {deps.settings.tick_seconds}s"
        + ("" if no_web else f", webhooks on http://{host}:{port}")
        + "; Ctrl-C to stop"
    )
    ticks = run_embedded(deps, stop, host=host, port=port, serve=not no_web, on_tick=cli.echo)
    cli.echo(f"stopped after {ticks} tick(s)")


_JSON = Annotated[bool, cli.Option("--json", help="Print JSON (shape in the README).")]
_CSV = Annotated[bool, cli.Option("--csv", help="Print CSV.")]


def explain(
    send_id: Annotated[int, cli.Argument(help="Scheduled send id.")],
    as_json: _JSON = False,
    as_csv: _CSV = False,
) -> None:
    """Why a send was sent, skipped, deferred, held or cancelled, with or without the footer."""
    from drip.services.audit import explain as explain_send
    from drip.services.audit import explain_data

    check_format(as_json, as_csv)
    deps = build_deps()
    if as_json or as_csv:
        data = explain_data(deps, send_id)
        if as_json:
            echo_json(data)
        else:
            decisions = data["decisions"]
            assert isinstance(decisions, list)
            echo_csv(
                [{"send_id": send_id, **d} for d in decisions],
                ["send_id", "at", "outcome", "code", "reason", "footer", "deferred_until"],
            )
        return
    for line in explain_send(deps, send_id):
        cli.echo(line)


def history(
    contact: Annotated[str, cli.Argument(help="Contact id or phone number.")],
    as_json: _JSON = False,
    as_csv: _CSV = False,
) -> None:
    """A contact's timeline: consent, messages in and out, decisions."""
    from drip.services.audit import history as contact_history
    from drip.services.audit import local_time
    from drip.services.contacts import find_contact

    check_format(as_json, as_csv)
    deps = build_deps()
    found = find_contact(deps, contact)
    person, tz, entries = contact_history(deps, found.id)
    sms = (
        "opted_out"
        if person.sms_opted_out_at
        else ("consent" if person.sms_consent_at else "no_consent")
    )
    rows = [{"at": e.at.isoformat(), "what": e.what, "text": e.text} for e in entries]
    if as_json:
        echo_json(
            {
                "contact": {
                    "id": person.id,
                    "first_name": person.first_name,
                    "last_name": person.last_name,
                    "timezone": tz,
                    "sms": sms,
                    "text_status": person.text_status.value,
                    "email_opted_out": person.email_opted_out,
                },
                "entries": rows,
            }
        )
        return
    if as_csv:
        echo_csv(rows, ["at", "what", "text"])
        return
    words = {"opted_out": "opted out", "consent": "consent given", "no_consent": "no sms consent"}
    email = "opted out" if person.email_opted_out else "subscribed"
    cli.echo(
        f"contact {person.id}: {person.first_name} {person.last_name} ({tz}); "
        f"sms: {words[sms]}; text status: {person.text_status.value}; email: {email}"
    )
    for e in entries:
        cli.echo(f"  {local_time(e.at, tz)}  {e.what:<11} {e.text}")


def stats(
    campaign: Annotated[str | None, cli.Argument(help="One campaign (default: all).")] = None,
    as_json: _JSON = False,
    as_csv: _CSV = False,
) -> None:
    """Per campaign and step: scheduled, sent, footer, skipped and deferred by reason, delivered,
    failed, replied, opted out, segments and estimated cost."""
    from drip.cli._common import campaign_name
    from drip.services.stats import campaign_stats

    check_format(as_json, as_csv)
    deps = ready_deps()
    result = campaign_stats(
        deps, deps.clock.now(), campaign_name(campaign) if campaign is not None else None
    )
    if as_json:
        echo_json(result.as_dict())
        return
    if as_csv:
        echo_csv(result.csv_rows())
        return
    if not result.campaigns and not result.others:
        cli.echo("no campaigns: run `drip sync` to load campaigns/")
        return
    _print_stats(result)


def _print_stats(result: object) -> None:
    """Plain columns (they survive a pipe and a narrow terminal); reasons under each step."""
    from drip.services.stats import Stats

    assert isinstance(result, Stats)
    numbers = (
        f"{'day':>4} {'sched':>6} {'pend':>6} {'sent':>6} {'footer':>6} "
        f"{'deliv':>6} {'failed':>6} {'reply':>6} {'optout':>6} {'seg':>6} {'cost':>8}"
    )
    tables = [
        (
            f"{c.name} ({c.kind}, {c.status}): {c.enrolled} enrolled ({c.active} active, "
            f"{c.completed} completed, {c.stopped} stopped)",
            "step",
            (*c.steps, c.total),
        )
        for c in result.campaigns
    ]
    if result.others:
        tables.append(("texts outside campaigns:", "kind", result.others))
    for title, column, rows in tables:
        cli.echo(title)
        cli.echo(f"  {column:<24} {numbers}")
        for s in rows:
            day = "" if s.day is None else str(s.day)
            cli.echo(
                f"  {s.step[:24]:<24} {day:>4} {s.scheduled:>6} {s.pending:>6} {s.sent:>6} "
                f"{s.with_footer:>6} {s.delivered:>6} {s.failed:>6} {s.replied:>6} "
                f"{s.opted_out:>6} {s.segments:>6} {s.cost:>8.2f}"
            )
            reasons = (
                [f"skipped {k} {v}" for k, v in s.skipped]
                + [f"deferred {k} {v}" for k, v in s.deferred]
                + ([f"cancelled {s.cancelled}"] if s.cancelled else [])
            )
            if reasons:
                cli.echo(f"  {'':<24}      {'; '.join(reasons)}")
        cli.echo("")
    money = result.price
    cli.echo(
        f"cost: segments x {money.per_segment} {money.currency} (Twilio's US base price, "
        f"checked {money.checked}; carrier fees not included)"
    )


def queue(as_json: _JSON = False, as_csv: _CSV = False) -> None:
    """What is due now and in the next 24 h, by campaign and sender (held: campaign paused)."""
    from drip.services.queue import queue_view

    check_format(as_json, as_csv)
    deps = ready_deps()
    result = queue_view(deps, deps.clock.now())
    if as_json:
        echo_json(result.as_dict())
        return
    if as_csv:
        echo_csv([r.as_dict() for r in result.rows])
        return
    if not result.rows:
        cli.echo("nothing due in the next 24 h")
        return
    cli.echo(f"{'campaign':<28} {'sender':<14} {'ch':<5} {'due now':>8} {'next 24h':>9}")
    for r in result.rows:
        held = "  held (paused)" if r.held else ""
        cli.echo(
            f"{r.campaign:<28} {r.sender:<14} {r.channel:<5} {r.due_now:>8} {r.next_24h:>9}{held}"
        )
    cli.echo(
        f"{'total':<28} {'':<14} {'':<5} {result.due_now:>8} {result.next_24h:>9}"
        + (f"  ({result.held} held)" if result.held else "")
    )
    for line in result.forecast:  # SPEC §4a: when each sender's last text leaves
        cli.echo(line)


def reconcile(
    horizon: Annotated[
        int | None,
        cli.Option(
            "--horizon",
            min=0,
            help="Seconds after which a text missing from Twilio's list is absent "
            "(default: the provider fact in drip/data/provider_facts.json).",
        ),
    ] = None,
    as_json: Annotated[bool, cli.Option("--json", help="One JSON object per send.")] = False,
) -> None:
    """Settle `unknown` sends against the provider's own records (SPEC §7)."""
    import json
    from datetime import timedelta

    from drip.services.reconcile import reconcile as settle

    deps = ready_deps()
    wait = timedelta(seconds=horizon) if horizon is not None else None
    results = settle(deps, deps.clock.now(), horizon=wait)
    for r in results:
        if as_json:
            cli.echo(json.dumps({"send_id": r.send_id, "outcome": r.outcome, "sid": r.sid}))
        else:
            cli.echo(f"send {r.send_id}: {r.outcome}: {r.reason}")
    if not as_json:
        counts = {o: sum(r.outcome == o for r in results) for o in ("sent", "pending", "unknown")}
        cli.echo(
            f"{len(results)} unknown send(s): {counts['sent']} sent, "
            f"{counts['pending']} back to pending, {counts['unknown']} still unknown"
        )
