"""The lazy root group: its table names every command the modules declare, and help lists them all."""

from __future__ import annotations

import importlib
from pathlib import Path

import click
from click.testing import CliRunner

from drip.cli import COMMANDS, app

CLI_FOLDER = Path(__file__).resolve().parents[2] / "drip" / "cli"


def _top_level_commands() -> dict[str, str]:
    """Every click command a module of drip/cli defines at top level, not inside a group."""
    found: dict[str, str] = {}
    for path in sorted(CLI_FOLDER.glob("*.py")):
        if path.stem.startswith("_"):
            continue
        module = importlib.import_module(f"drip.cli.{path.stem}")
        commands = {
            name: value for name, value in vars(module).items() if isinstance(value, click.Command)
        }
        inside_groups = {
            id(sub)
            for group in commands.values()
            if isinstance(group, click.Group)
            for sub in group.commands.values()
        }
        for attribute, command in commands.items():
            if id(command) not in inside_groups:
                assert command.name is not None
                found[command.name] = f"{module.__name__}:{attribute}"
    return found


def test_the_table_is_what_the_modules_declare() -> None:
    """Each top-level command of drip/cli is in the table under its own name, and only those."""
    assert _top_level_commands() == COMMANDS


def test_help_lists_every_command_with_its_summary() -> None:
    """``drip --help`` shows every command of the table with the first words of its help."""
    result = CliRunner().invoke(app, ["--help"], prog_name="drip")
    assert result.exit_code == 0, result.output
    listing = result.output.split("Commands:", 1)[1]
    for name in COMMANDS:
        command = app.get_command(click.Context(app), name)
        assert command is not None
        summary = command.get_short_help_str()
        line = next(line for line in listing.splitlines() if line.split()[:1] == [name])
        assert summary.split()[0] in line, (name, line)


def test_an_unknown_command_is_a_usage_error() -> None:
    """A name not in the table stops with exit 2 and says so."""
    result = CliRunner().invoke(app, ["no-such-command"], prog_name="drip")
    assert result.exit_code == 2
    assert "No such command 'no-such-command'" in result.output


def test_a_command_parses_as_declared() -> None:
    """Options, on/off pairs, ranges and argument help show in help and are enforced."""
    result = CliRunner().invoke(app, ["contacts", "list", "--help"], prog_name="drip")
    assert result.exit_code == 0, result.output
    assert "--textable / --not-textable" in result.output
    assert "--limit" in result.output
    replay_help = CliRunner().invoke(app, ["replay", "--help"], prog_name="drip").output
    assert "Scenario files" in replay_help  # an argument's help is listed
    bad = CliRunner().invoke(app, ["serve", "--port", "0"], prog_name="drip")
    assert bad.exit_code == 2
    assert "--port" in bad.output
    bad_limit = CliRunner().invoke(app, ["contacts", "list", "--limit", "0"], prog_name="drip")
    assert bad_limit.exit_code == 2


def test_a_missing_argument_is_a_usage_error() -> None:
    """A required argument left out stops with exit 2 and names it, before any work."""
    for argv, name in ((["history"], "CONTACT"), (["lint"], "PATHS"), (["replay"], "FILES")):
        result = CliRunner().invoke(app, argv, prog_name="drip")
        assert result.exit_code == 2, (argv, result.output)
        assert f"Missing argument '{name}" in result.output


def test_a_required_option_left_out_is_a_usage_error() -> None:
    """``contacts add`` without --first-name stops with exit 2 and names the option."""
    result = CliRunner().invoke(app, ["contacts", "add", "--phone", "+13055550123"])
    assert result.exit_code == 2
    assert "--first-name" in result.output


def test_bulk_sends_a_body_and_cancels_by_name() -> None:
    """``drip bulk BODY`` goes to ``send``; ``drip bulk cancel ID`` to ``cancel`` (help only)."""
    send = CliRunner().invoke(app, ["bulk", "Open house", "--help"], prog_name="drip")
    assert send.exit_code == 0
    assert "--two-way-only" in send.output
    cancel = CliRunner().invoke(app, ["bulk", "cancel", "--help"], prog_name="drip")
    assert cancel.exit_code == 0
    assert "BULK_ID" in cancel.output
