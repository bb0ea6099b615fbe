"""Operations: ``tick``, ``run``, ``explain``, ``history``, ``stats``, ``queue``, ``reconcile``."""

from __future__ import annotations

import click

from drip.cli._common import check_format, echo_csv, echo_json, ready_deps
from drip.cli._common import deps as build_deps


@click.command("tick")
def tick() -> None:
    """Dispatch and fire what is due once, then exit (for cron)."""
    from drip.services.dispatch import tick as run_tick

    deps = ready_deps()
    summary = run_tick(deps, deps.clock.now())
    counts = ", ".join(f"{n} {k}" for k, n in sorted(summary.counts().items())) or "nothing due"
    click.echo(f"tick: {summary.claimed} claimed: {counts}")
    for send_id in summary.unknown:
        click.secho(f"send {send_id} is UNKNOWN (see `drip explain {send_id}`)", fg="red")


@click.command("run")
@click.option("--host", default="127.0.0.1", show_default=True, help="Webhook app address.")
@click.option("--port", type=int, default=8000, show_default=True, help="Webhook app port.")
@click.option("--no-web", is_flag=True, help="Do not serve the webhook app.")
def run(host: str, port: int, no_web: bool) -> None:
    """Embedded service: dispatch loop, sending and the webhook app; Ctrl-C stops cleanly."""
    import threading

    from drip.embedded import install_stop_handlers
    from drip.embedded import run as run_embedded

    deps = ready_deps()
    stop = threading.Event()
    install_stop_handlers(stop)
    click.echo(
        f"drip running: tick every {deps.settings.tick_seconds}s"
        + ("" if no_web else f", webhooks on http://{host}:{port}")
        + "; Ctrl-C to stop"
    )
    ticks = run_embedded(deps, stop, host=host, port=port, serve=not no_web, on_tick=click.echo)
    click.echo(f"stopped after {ticks} tick(s)")


_JSON = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (shape in docs/operations.md#json-output)."
)
_CSV = click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")


@click.command("explain")
@click.argument("send_id", type=int, help="Scheduled send id.")
@_JSON
@_CSV
def explain(send_id: int, as_json: bool, as_csv: bool) -> None:
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
        click.echo(line)


@click.command("history")
@click.argument("contact", help="Contact id or phone number.")
@_JSON
@_CSV
def history(contact: str, as_json: bool, as_csv: bool) -> None:
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
                    "external_id": person.external_id,
                    "stage": person.stage,
                    "tags": sorted(person.tags or ()),
                    "lead_source": person.lead_source,
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
    click.echo(
        f"contact {person.id}: {person.first_name} {person.last_name} ({tz}); "
        f"sms: {words[sms]}; text status: {person.text_status.value}; email: {email}"
    )
    crm = [
        f"{label} {value}"
        for label, value in (
            ("CRM id", person.external_id),
            ("stage", person.stage),
            ("tags", ", ".join(sorted(person.tags or ())) or None),
            ("lead source", person.lead_source),
        )
        if value
    ]
    if crm:
        click.echo("  " + "; ".join(crm))
    for e in entries:
        click.echo(f"  {local_time(e.at, tz)}  {e.what:<11} {e.text}")


@click.command("stats")
@click.argument("campaign", required=False, help="One campaign (default: all).")
@_JSON
@_CSV
def stats(campaign: str | None, as_json: bool, as_csv: bool) -> None:
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
        click.echo("no campaigns: run `drip sync` to load campaigns/")
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
        click.echo(title)
        click.echo(f"  {column:<24} {numbers}")
        for s in rows:
            day = "" if s.day is None else str(s.day)
            click.echo(
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
                click.echo(f"  {'':<24}      {'; '.join(reasons)}")
        click.echo("")
    money = result.price
    click.echo(
        f"cost: segments x {money.per_segment} {money.currency} (Twilio's US base price, "
        f"checked {money.checked}; carrier fees not included)"
    )


@click.command("queue")
@_JSON
@_CSV
@click.option(
    "--recount",
    is_flag=True,
    help="First count the pending sends again into the running counts the queue reads, "
    "and say how far off they were (enrolling and firing wait meanwhile; "
    "see docs/operations.md).",
)
def queue(as_json: bool, as_csv: bool, recount: bool) -> None:
    """What is due now and in the next 24 h, by campaign and sender (held: campaign paused)."""
    from drip.services import queue as service
    from drip.services.queue import queue_view

    check_format(as_json, as_csv)
    deps = ready_deps()
    if recount:
        found = service.recount(deps)
        click.echo(
            f"recounted {found.pending} pending send(s): "
            + (
                f"{found.groups} group(s) were off by {found.off_by} send(s) in all, now repaired"
                if found.groups
                else "the running counts were right"
            ),
            err=as_json or as_csv,
        )
    result = queue_view(deps, deps.clock.now())
    if as_json:
        echo_json(result.as_dict())
        return
    if as_csv:
        echo_csv([r.as_dict() for r in result.rows])
        return
    if not result.rows:
        click.echo("nothing due in the next 24 h")
        return
    click.echo(f"{'campaign':<28} {'sender':<14} {'ch':<5} {'due now':>8} {'next 24h':>9}")
    for r in result.rows:
        held = "  held (paused)" if r.held else ""
        click.echo(
            f"{r.campaign:<28} {r.sender:<14} {r.channel:<5} {r.due_now:>8} {r.next_24h:>9}{held}"
        )
    click.echo(
        f"{'total':<28} {'':<14} {'':<5} {result.due_now:>8} {result.next_24h:>9}"
        + (f"  ({result.held} held)" if result.held else "")
    )
    for line in result.forecast:  # the pacing forecast: when each sender's last text leaves
        click.echo(line)


@click.command("reconcile")
@click.option(
    "--horizon",
    type=click.IntRange(min=0),
    help="Seconds after which a text missing from Twilio's list is absent "
    "(default: the provider fact in drip/data/provider_facts.json).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per send.")
def reconcile(horizon: int | None, as_json: bool) -> None:
    """Settle `unknown` sends against the provider's own records (see docs/operations.md)."""
    import json
    from datetime import timedelta

    from drip.services.reconcile import reconcile as settle

    deps = ready_deps()
    wait = timedelta(seconds=horizon) if horizon is not None else None
    results = settle(deps, deps.clock.now(), horizon=wait)
    for r in results:
        if as_json:
            click.echo(json.dumps({"send_id": r.send_id, "outcome": r.outcome, "sid": r.sid}))
        else:
            click.echo(f"send {r.send_id}: {r.outcome}: {r.reason}")
    if not as_json:
        counts = {o: sum(r.outcome == o for r in results) for o in ("sent", "pending", "unknown")}
        click.echo(
            f"{len(results)} unknown send(s): {counts['sent']} sent, "
            f"{counts['pending']} back to pending, {counts['unknown']} still unknown"
        )
