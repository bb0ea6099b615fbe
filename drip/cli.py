"""The ``drip`` command line: thin commands that build dependencies and call services.

Every command reads the clock once (through the bootstrap's ``Clock``) and
hands ``now`` to the service it calls. Heavy imports live inside commands so
``drip --help`` stays fast and nothing is built at import time.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from drip.services.deps import Deps

app = typer.Typer(
    name="drip",
    help="Drip campaigns for real-estate leads, with carrier and TCPA compliance in every send.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
contacts_app = typer.Typer(help="Create and import contacts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(contacts_app, name="contacts")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database to the latest schema (Alembic)."""
    from drip.bootstrap import ensure_home, load_settings
    from drip.store.engine import safe_url
    from drip.store.migrate import current_revision, upgrade

    settings = load_settings()
    ensure_home(settings)
    upgrade(settings.database_url)
    revision = current_revision(settings.database_url)
    typer.echo(f"database at {safe_url(settings.database_url)} is at revision {revision}")


@app.command("status")
def status() -> None:
    """Where drip keeps its data and what it is connected to."""
    from drip.bootstrap import load_settings
    from drip.store.engine import safe_url
    from drip.store.migrate import current_revision

    settings = load_settings()
    mode = "embedded (no broker)" if settings.embedded else "Celery broker"
    transport = "twilio" if settings.twilio_enabled else "console"
    revision = current_revision(settings.database_url) or "none: run `drip db upgrade`"
    typer.echo(f"database: {safe_url(settings.database_url)} (revision {revision})")
    typer.echo(f"mode: {mode}; sms transport: {transport}; campaigns: {settings.campaigns_dir}")


@app.command("lint")
def lint(
    paths: Annotated[list[Path], typer.Argument(help="Campaign files or folders.")],
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")] = False,
) -> None:
    """Check campaign files: exit 0 when clean, 1 on errors (or warnings with --strict)."""
    from drip.campaigns.lint import lint_paths

    missing = [p for p in paths if not p.exists()]
    if missing:
        raise _fail(f"no such file or folder: {', '.join(map(str, missing))}", 2)
    report = lint_paths(paths, account=None)
    for line in report.errors:
        typer.secho(line, fg=typer.colors.RED)
    for line in report.warnings:
        typer.secho(line, fg=typer.colors.YELLOW)
    typer.echo(report.summary())
    if report.errors or (strict and report.warnings):
        raise typer.Exit(1)


@app.command("preview")
def preview(
    campaign: Annotated[
        str, typer.Argument(help="A campaign YAML file, or the name of a campaign in campaigns/.")
    ],
    start: Annotated[
        str | None,
        typer.Option(
            help='Enrollment time, local to the contact: "YYYY-MM-DD HH:MM" '
            "(default: next Monday 10:00)."
        ),
    ] = None,
    timezone: Annotated[
        str | None, typer.Option(help="The contact's IANA zone (default: the account's).")
    ] = None,
    state: Annotated[
        str | None, typer.Option(help="The contact's state, e.g. FL (applies state rules).")
    ] = None,
    intro: Annotated[
        str | None,
        typer.Option(help="An introduction text from the agent at the start, before the plan."),
    ] = None,
    two_way_on_day: Annotated[
        int | None,
        typer.Option(
            "--two-way-on-day", min=0, help="The contact replies on this day (two-way from then)."
        ),
    ] = None,
    contact: Annotated[
        str, typer.Option(help='The sample contact\'s name, "First Last".')
    ] = "Dana Ruiz",
    as_json: Annotated[bool, typer.Option("--json", help="Print the preview as JSON.")] = False,
) -> None:
    """Each step's local send time, rendered text, footer, encoding and segments.

    The steps fire as the worker would fire them, for a contact with consent
    who never replies (unless --two-way-on-day) and never had a text before
    (unless --intro): same send window, state rules and footer rules. The
    account settings come from account.yaml beside the campaign file, else
    from the campaigns folder.
    """
    import json

    from drip.bootstrap import load_settings
    from drip.campaigns import preview as pv
    from drip.campaigns.account_file import load_account
    from drip.campaigns.loader import load_campaign, load_campaigns
    from drip.clock import SystemClock
    from drip.domain.account import AccountSettings
    from drip.domain.zones import validate_timezone

    settings = load_settings()
    now = SystemClock().now()  # the clock, read once, here
    path = Path(campaign)
    folder = settings.campaigns_dir
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise _fail(f"no such campaign file: {path}", 2)
        loaded = load_campaign(path)
        folder = path.parent
    else:
        found = load_campaigns(folder).campaigns
        by_stem = {Path(c.source or "").stem: c for c in found.values()}
        chosen = found.get(campaign) or by_stem.get(campaign)
        if chosen is None:
            known = ", ".join(sorted(found)) or "none"
            raise _fail(f"no campaign named {campaign!r} in {folder} (known: {known})", 2)
        loaded = chosen
    account_path = folder / "account.yaml"
    if not account_path.exists():
        account_path = settings.campaigns_dir / "account.yaml"
    account = load_account(account_path) if account_path.exists() else AccountSettings()
    tz = validate_timezone(timezone or settings.default_timezone or account.default_timezone)
    result = pv.preview(
        loaded,
        account,
        now=now,
        start=pv.parse_start(start, tz) if start else None,
        timezone=tz,
        state=state,
        intro=intro,
        two_way_day=two_way_on_day,
        contact=pv.parse_contact(contact),
    )
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return
    _print_preview(result)


def _print_preview(result: object) -> None:
    """The preview as a Rich table, one row per message, then the totals.

    Four columns so that the text keeps most of an 80-column terminal: when
    (step, day, channel, local send time), footer (yes/no and the SPEC §2
    rule), the text as sent (with the reasons in grey) and its size.
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from drip.campaigns.preview import Preview

    assert isinstance(result, Preview)
    console = Console(highlight=False)
    name = f"{result.contact[0]} {result.contact[1]}".strip()
    where = f"{result.timezone}" + (f", {result.state}" if result.state else "")
    table = Table(
        title=f"{result.campaign}: {name} ({where}), enrolled {result.local(result.start)}",
        caption=f"send window {result.window}; agent {result.agent.first_name} "
        f"{result.agent.last_name}",
        box=box.ROUNDED,
        show_lines=True,
    )
    table.add_column("step / sends (local)", no_wrap=True, max_width=22)
    table.add_column("footer", no_wrap=True)
    table.add_column("text", ratio=1, min_width=30, overflow="fold")
    table.add_column("size", no_wrap=True, justify="right")
    pending_reply = result.two_way_at
    for row in result.rows:
        if pending_reply is not None and (row.send_at is None or row.send_at >= pending_reply):
            local = result.local(pending_reply)
            table.add_row(
                f"reply\n{local[:14]}\n{local[15:]}",
                "",
                Text("<- the contact replies: two-way from now on", style="italic"),
                "",
            )
            pending_reply = None
        day = row.day if row.day is not None else row.step_day
        when = row.local_time or "not sent"
        step = f"{row.label}\nday {day} {row.channel.value}\n{when[:14]}\n{when[15:]}".rstrip()
        is_sms = row.channel.value == "sms"
        if row.outcome != "sent":
            footer = row.outcome
        elif is_sms:
            footer = f"{'yes' if row.footer else 'no'}\n{row.footer_rule}"
        else:
            footer = "-"
        text = Text(row.text if is_sms else f"Subject: {row.subject}\n{row.text}")
        for note in (*row.deferrals, row.reason):
            text.append(f"\n{note}", style="dim")
        size = (
            f"{row.characters} ch\n{row.encoding}\n{row.segments} seg"
            if row.outcome == "sent" and is_sms
            else (f"{row.characters} ch" if row.outcome == "sent" else "")
        )
        table.add_row(step, footer, text, size)
    console.print(table)
    console.print(f"per contact: {result.totals.describe()}")


def _deps() -> Deps:
    """Settings, account and dependencies for a command (built once, here)."""
    from drip.bootstrap import build

    return build()


def _ensure_db(deps: Deps) -> None:
    from drip.store.migrate import current_revision, head_revision

    if current_revision(deps.engine) != head_revision():
        raise _fail("the database is not at the latest schema: run `drip db upgrade` first")


@app.command("sync")
def sync(
    path: Annotated[Path | None, typer.Argument(help="Campaign folder or file.")] = None,
) -> None:
    """Load campaign files into the database; edits reach contacts already enrolled."""
    from drip.campaigns.loader import load_campaigns
    from drip.services.sync import sync_campaigns

    deps = _deps()
    _ensure_db(deps)
    source = path or deps.settings.campaigns_dir
    result = load_campaigns(source)
    for line in result.errors:
        typer.secho(line, fg=typer.colors.RED, err=True)
    summary = sync_campaigns(deps, list(result.campaigns.values()), deps.clock.now())
    for line in summary.lines():
        typer.echo(line)
    if result.errors:
        raise _fail(f"{len(result.errors)} error(s): files with errors were not loaded")


@app.command("agents")
def agents_add(
    first_name: Annotated[str, typer.Argument(help="Agent first name.")],
    last_name: Annotated[str, typer.Argument(help="Agent last name.")],
    phone: Annotated[str, typer.Argument(help="The number the agent texts from.")],
) -> None:
    """Add (or rename) an agent who texts from PHONE."""
    from drip.services.contacts import add_agent

    deps = _deps()
    _ensure_db(deps)
    agent_id = add_agent(deps, first_name, last_name, phone, deps.clock.now())
    typer.echo(f"agent {agent_id}: {first_name} {last_name}")


@contacts_app.command("add")
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

    deps = _deps()
    _ensure_db(deps)
    now = deps.clock.now()
    source = ConsentSource(consent_source)
    consent = None
    if sms_consent:
        if not consent_text:
            raise _fail("--sms-consent needs --consent-text: the words the contact agreed to")
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


@app.command("enroll")
def enroll(
    contact: Annotated[str, typer.Argument(help="Contact id or phone number.")],
    campaign: Annotated[str, typer.Argument(help="Campaign name (or its YAML file).")],
) -> None:
    """Enroll a contact in a campaign: its steps become scheduled sends."""
    from drip.services.contacts import find_contact
    from drip.services.enrollment import enroll as enroll_contact

    deps = _deps()
    _ensure_db(deps)
    name = _campaign_name(campaign)
    found = find_contact(deps, contact)
    result = enroll_contact(deps, found.id, name, deps.clock.now())
    typer.echo(result.message)


def _campaign_name(ref: str) -> str:
    """A campaign name, or the name inside a campaign file given by path."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") and path.exists():
        from drip.campaigns.loader import load_campaign

        return load_campaign(path).name
    return ref


@app.command("text")
def text(
    contact: Annotated[str, typer.Argument(help="Contact id or phone number.")],
    body: Annotated[str, typer.Argument(help="The text to send.")],
    sender: Annotated[str, typer.Option("--from", help="agent | concierge")] = "agent",
) -> None:
    """Send a manual text now, under the footer rules (not held by the send window)."""
    from drip.domain.enums import MessageKind, SenderRole
    from drip.services.contacts import find_contact, send_now

    deps = _deps()
    _ensure_db(deps)
    found = find_contact(deps, contact)
    result = send_now(
        deps, found.id, MessageKind.MANUAL, body, deps.clock.now(), sender_role=SenderRole(sender)
    )
    if result.outcome != "sent":
        raise _fail(f"not sent (send {result.send_id}): {result.reason}")
    typer.echo(f"sent (send {result.send_id}): {result.reason}")


@app.command("tick")
def tick() -> None:
    """Dispatch and fire what is due once, then exit (for cron)."""
    from drip.services.dispatch import tick as run_tick

    deps = _deps()
    _ensure_db(deps)
    summary = run_tick(deps, deps.clock.now())
    counts = ", ".join(f"{n} {k}" for k, n in sorted(summary.counts().items())) or "nothing due"
    typer.echo(f"tick: {summary.claimed} claimed: {counts}")
    for send_id in summary.unknown:
        typer.secho(f"send {send_id} is UNKNOWN (see `drip explain {send_id}`)", fg="red")


@app.command("run")
def run(
    host: Annotated[str, typer.Option(help="Webhook app address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Webhook app port.")] = 8000,
    no_web: Annotated[bool, typer.Option("--no-web", help="Do not serve the webhook app.")] = False,
) -> None:
    """Embedded service: dispatch loop, sending and the webhook app; Ctrl-C stops cleanly."""
    import threading

    from drip.embedded import install_stop_handlers
    from drip.embedded import run as run_embedded

    deps = _deps()
    _ensure_db(deps)
    stop = threading.Event()
    install_stop_handlers(stop)
    typer.echo(
        f"drip running: tick every {deps.settings.tick_seconds}s"
        + ("" if no_web else f", webhooks on http://{host}:{port}")
        + "; Ctrl-C to stop"
    )
    ticks = run_embedded(deps, stop, host=host, port=port, serve=not no_web, on_tick=typer.echo)
    typer.echo(f"stopped after {ticks} tick(s)")


@app.command("explain")
def explain(send_id: Annotated[int, typer.Argument(help="Scheduled send id.")]) -> None:
    """Why a send was sent, skipped or deferred, with or without the footer."""
    from drip.services.audit import explain as explain_send

    deps = _deps()
    for line in explain_send(deps, send_id):
        typer.echo(line)


@app.command("history")
def history(contact: Annotated[str, typer.Argument(help="Contact id or phone number.")]) -> None:
    """A contact's timeline: consent, messages in and out, decisions."""
    from drip.services.audit import history as contact_history
    from drip.services.audit import local_time
    from drip.services.contacts import find_contact

    deps = _deps()
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


#: Modules that add their own commands to ``app`` through ``register(app)``, so
#: each area (web, workers, replay, bulk) keeps its commands next to its code.
COMMAND_MODULES = (
    "drip.web.commands",
    "drip.replay.commands",
    "drip.services.bulk_commands",
    "drip.contacts_import_commands",
)


def _register_all() -> None:
    import importlib

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(app)


def main() -> None:
    """Console-script entry point: drip errors become one clear line and exit 1."""
    from drip.errors import DripError

    _register_all()
    try:
        app()
    except DripError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)


# --- faults commands ---
@app.command("reconcile")
def reconcile_cmd(
    horizon: Annotated[
        int | None,
        typer.Option(
            "--horizon",
            min=0,
            help="Seconds after which a text missing from Twilio's list is absent "
            "(default: the provider fact in drip/data/provider_facts.json).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per send.")] = False,
) -> None:
    """Settle `unknown` sends against the provider's own records (SPEC §7)."""
    import json
    from datetime import timedelta

    from drip.services.reconcile import reconcile

    deps = _deps()
    wait = timedelta(seconds=horizon) if horizon is not None else None
    results = reconcile(deps, deps.clock.now(), horizon=wait)
    for r in results:
        if as_json:
            typer.echo(json.dumps({"send_id": r.send_id, "outcome": r.outcome, "sid": r.sid}))
        else:
            typer.echo(f"send {r.send_id}: {r.outcome}: {r.reason}")
    if not as_json:
        counts = {o: sum(r.outcome == o for r in results) for o in ("sent", "pending", "unknown")}
        typer.echo(
            f"{len(results)} unknown send(s): {counts['sent']} sent, "
            f"{counts['pending']} back to pending, {counts['unknown']} still unknown"
        )


# --- end faults commands ---


if __name__ == "__main__":
    main()
