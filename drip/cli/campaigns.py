"""Campaign files and campaigns: ``lint``, ``preview``, ``sync`` and the ``campaigns`` group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.exceptions import Exit

from drip.cli._common import (
    AS_OPTION,
    actor_name,
    check_format,
    echo_csv,
    echo_json,
    fail,
    ready_deps,
)

#: ``--intro`` without a text: the agent introduces themself and the company.
DEFAULT_INTRO = (
    "Hi {VisitorFirstName}, this is {AgentFirstName} {AgentLastName} with {CompanyName}. "
    "I'll be helping with your home search; text me any time."
)


class PreviewCommand(click.Command):
    """``--intro`` may come without its text: then it means :data:`DEFAULT_INTRO`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        fixed: list[str] = []
        for i, arg in enumerate(args):
            fixed.append(arg)
            following = args[i + 1] if i + 1 < len(args) else None
            if arg == "--intro" and (following is None or following.startswith("-")):
                fixed.append(DEFAULT_INTRO)
        return super().parse_args(ctx, fixed)


@click.command("lint")
@click.argument(
    "paths",
    nargs=-1,
    required=True,
    type=click.Path(path_type=Path),
    help="Campaign files or folders.",
)
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def lint(paths: tuple[Path, ...], strict: bool) -> None:
    """Check campaign files: exit 0 when clean, 1 on errors (or warnings with --strict)."""
    from drip.campaigns.lint import lint_paths

    missing = [p for p in paths if not p.exists()]
    if missing:
        raise fail(f"no such file or folder: {', '.join(map(str, missing))}", 2)
    report = lint_paths(list(paths), account=None)
    for severity, line in report.problems:
        click.secho(line, fg="red" if severity == "error" else "yellow")
    click.echo(report.summary())
    if report.errors or (strict and report.warnings):
        raise Exit(1)


@click.command("preview", cls=PreviewCommand)
@click.argument("campaign", help="A campaign YAML file, or the name of a campaign in campaigns/.")
@click.option(
    "--start",
    help='Enrollment time, local to the contact: "YYYY-MM-DD HH:MM" (default: next Monday 10:00).',
)
@click.option("--timezone", help="The contact's IANA zone (default: the account's).")
@click.option("--state", help="The contact's state, e.g. FL (applies state rules).")
@click.option(
    "--phone",
    help="The contact's phone: without --timezone its area code gives the zone(s), "
    "and its state's rules apply too.",
)
@click.option(
    "--intro",
    help="An introduction text from the agent at the start, before the plan "
    "(--intro with no text, last or before another option: a standard one).",
)
@click.option(
    "--two-way-on-day",
    type=click.IntRange(min=0),
    help="The contact replies on this day (two-way from then).",
)
@click.option(
    "--contact",
    default="Dana Ruiz",
    show_default=True,
    help='The sample contact\'s name, "First Last".',
)
@click.option("--json", "as_json", is_flag=True, help="Print the preview as JSON.")
def preview(
    campaign: str,
    start: str | None,
    timezone: str | None,
    state: str | None,
    phone: str | None,
    intro: str | None,
    two_way_on_day: int | None,
    contact: str,
    as_json: bool,
) -> None:
    """Each step's local send time, rendered text, footer, encoding and segments.

    The steps fire as the worker would fire them, for a contact with consent
    who never replies (unless --two-way-on-day) and never had a text before
    (unless --intro): same send window, state rules and footer rules. The
    account settings come from account.yaml beside the campaign file, else
    from the campaigns folder.
    """
    import json
    from dataclasses import replace

    from drip.bootstrap import load_settings
    from drip.campaigns import preview as pv
    from drip.campaigns.account_file import load_account
    from drip.campaigns.loader import load_campaign, load_campaigns
    from drip.clock import SystemClock
    from drip.domain.account import AccountSettings
    from drip.domain.zones import resolve_timezone

    settings = load_settings()
    now = SystemClock().now()  # the clock, read once, here
    path = Path(campaign)
    folder = settings.campaigns_dir
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise fail(f"no such campaign file: {path}", 2)
        loaded = load_campaign(path)
        folder = path.parent
    else:
        found = load_campaigns(folder).campaigns
        by_stem = {Path(c.source or "").stem: c for c in found.values()}
        chosen = found.get(campaign) or by_stem.get(campaign)
        if chosen is None:
            known = ", ".join(sorted(found)) or "none"
            raise fail(f"no campaign named {campaign!r} in {folder} (known: {known})", 2)
        loaded = chosen
    account_path = folder / "account.yaml"
    if not account_path.exists():
        account_path = settings.campaigns_dir / "account.yaml"
    account = load_account(account_path) if account_path.exists() else AccountSettings()
    default_tz = settings.default_timezone or account.default_timezone
    tz = resolve_timezone(timezone, phone, default_tz).name
    result = pv.preview(
        loaded,
        replace(account, default_timezone=default_tz),
        now=now,
        start=pv.parse_start(start, tz) if start else None,
        timezone=timezone,
        state=state,
        phone=phone,
        intro=intro,
        two_way_day=two_way_on_day,
        contact=pv.parse_contact(contact),
    )
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return
    _print_preview(result)


def _print_preview(result: object) -> None:
    """The preview as a Rich table, one row per message, then the totals.

    Four columns so that the text keeps most of an 80-column terminal: when
    (step, day, channel, local send time), footer (yes/no and the footer
    rule that decided it), the text as sent (with the reasons in grey) and its size.
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from drip.campaigns.preview import Preview

    assert isinstance(result, Preview)
    console = Console(highlight=False)
    name = f"{result.contact[0]} {result.contact[1]}".strip()
    where = " + ".join(result.zones) + (f", {', '.join(result.states)}" if result.states else "")
    table = Table(
        title=f"{result.campaign}: {name} ({where}), enrolled {result.local(result.start)}",
        caption=f"send window {result.window}; agent {result.agent.first_name} "
        f"{result.agent.last_name}; zone {result.zone_text}",
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
        shown = row.text if is_sms or row.subject is None else f"Subject: {row.subject}\n{row.text}"
        text = Text(shown)  # never "Subject: None": a skipped email has no subject to show
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
    cap_line = result.cap_line()
    if cap_line is not None:
        console.print(cap_line)
    for warning in result.warnings:  # issue 11: empty variables, warned ahead
        console.print(f"warning: {warning}", style="yellow")


@click.command("sync")
@click.argument(
    "path", required=False, type=click.Path(path_type=Path), help="Campaign folder or file."
)
@click.option(
    "--prune",
    is_flag=True,
    help="Archive campaigns whose file is gone (see docs/campaigns.md).",
)
def sync(path: Path | None, prune: bool) -> None:
    """Load campaign files into the database; edits reach contacts already enrolled.

    A campaign whose file is gone stays live: plain sync warns about it,
    --prune archives it (its pending sends are cancelled).
    """
    from drip.campaigns.loader import load_campaigns
    from drip.services import lifecycle
    from drip.services.sync import sync_campaigns

    deps = ready_deps()
    now = deps.clock.now()
    source = path or deps.settings.campaigns_dir
    result = load_campaigns(source)
    for line in result.errors:
        click.secho(line, fg="red", err=True)
    summary = sync_campaigns(deps, list(result.campaigns.values()), now)
    for line in summary.lines():
        click.echo(line)
    gone = lifecycle.orphaned(deps, set(result.campaigns))
    if gone and prune:
        for done in lifecycle.prune(deps, gone, now):
            click.echo(done.message)
    elif gone:
        click.secho(
            f"warning: the file of {', '.join(gone)} is gone but the campaign is still live; "
            "`drip sync --prune` archives it (or `drip campaigns archive NAME`)",
            fg="yellow",
            err=True,
        )
    if result.errors:
        raise fail(f"{len(result.errors)} error(s): files with errors were not loaded")


@click.group("campaigns", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@click.pass_context
def campaigns(ctx: click.Context, as_json: bool, as_csv: bool) -> None:
    """List campaigns; pause, resume or archive one (see docs/campaigns.md).

    Without a subcommand: campaigns with their kind, status, active
    enrollments, pending sends and next due time.
    """
    if ctx.invoked_subcommand is not None:
        return
    from drip.services.lifecycle import list_campaigns

    check_format(as_json, as_csv)
    deps = ready_deps()
    rows = list_campaigns(deps)
    if as_json:
        echo_json([r.as_dict() for r in rows])
        return
    if as_csv:
        echo_csv([r.as_dict() for r in rows])
        return
    if not rows:
        click.echo("no campaigns: run `drip sync` to load campaigns/")
        return
    from drip.services.audit import local_time

    zone = deps.account.default_timezone
    click.echo(f"{'name':<28} {'kind':<11} {'status':<9} {'active':>7} {'pending':>8}  next due")
    for r in rows:
        due = local_time(r.next_due_at, zone) if r.next_due_at else "-"
        click.echo(
            f"{r.name:<28} {r.kind:<11} {r.status.value:<9} {r.active_enrollments:>7} "
            f"{r.pending_sends:>8}  {due}"
        )


_NAME = click.argument("name", help="Campaign name (or its YAML file).")


@campaigns.command("pause")
@_NAME
@AS_OPTION
def pause(name: str, as_name: str | None) -> None:
    """Hold every send of a campaign (new enrollments are scheduled and held too)."""
    from drip.cli._common import campaign_name
    from drip.services.operator_actions import Actor, campaign_pause

    deps = ready_deps()
    who = Actor(actor_name(as_name), "cli")
    click.echo(campaign_pause(deps, who, campaign_name(name), deps.clock.now()))


@campaigns.command("resume")
@_NAME
@AS_OPTION
def resume(name: str, as_name: str | None) -> None:
    """Release a paused campaign; overdue steps catch up one a day, in order."""
    from drip.cli._common import campaign_name
    from drip.services.operator_actions import Actor, campaign_resume

    deps = ready_deps()
    who = Actor(actor_name(as_name), "cli")
    click.echo(campaign_resume(deps, who, campaign_name(name), deps.clock.now()))


@campaigns.command("archive")
@_NAME
def archive(name: str) -> None:
    """Retire a campaign: no new enrollments; its pending sends are cancelled."""
    from drip.cli._common import campaign_name
    from drip.services.lifecycle import archive as archive_campaign

    deps = ready_deps()
    click.echo(archive_campaign(deps, campaign_name(name), deps.clock.now()).message)
