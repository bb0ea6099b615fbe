"""The lazy root group: its table names every command its modules declare, and help lists them all."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

from click.testing import CliRunner

from drip.cli import COMMANDS, app
from drip.cli.framework import App, Argument, Option


def test_the_table_is_what_the_modules_declare() -> None:
    """Each module's ``register`` declares exactly the commands the table gives it."""
    declared: dict[str, str] = {}
    for module in sorted(set(COMMANDS.values())):
        group = App()
        importlib.import_module(module).register(group)
        declared.update(dict.fromkeys(group.commands, module))
    assert declared == COMMANDS


def test_help_lists_every_command_with_its_summary() -> None:
    """``drip --help`` shows every command of the table with the first words of its help."""
    result = CliRunner().invoke(app, ["--help"], prog_name="drip")
    assert result.exit_code == 0, result.output
    listing = result.output.split("Commands:", 1)[1]
    for name in COMMANDS:
        command = app.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None and command.short_help, name
        line = next(line for line in listing.splitlines() if line.split()[:1] == [name])
        assert command.short_help.split()[0] in line, (name, line)


def test_a_command_parses_as_declared() -> None:
    """Options, flags and their help come from the Annotated declarations."""
    result = CliRunner().invoke(app, ["contacts", "list", "--help"], prog_name="drip")
    assert result.exit_code == 0, result.output
    assert "--textable / --not-textable" in result.output
    assert "--limit" in result.output
    bad = CliRunner().invoke(app, ["serve", "--port", "0"], prog_name="drip")
    assert bad.exit_code == 2
    assert "--port" in bad.output


def test_a_missing_argument_is_a_usage_error() -> None:
    """A required argument left out stops with exit 2 and names it, before any work."""
    for argv, name in ((["history"], "CONTACT"), (["lint"], "PATHS"), (["replay"], "FILES")):
        result = CliRunner().invoke(app, argv, prog_name="drip")
        assert result.exit_code == 2, (argv, result.output)
        assert f"Missing argument '{name}" in result.output


def test_declarations_give_the_values_typer_gave() -> None:
    """Defaults, flags, on/off pairs, optional and repeated parameters reach the function as declared."""
    seen: list[tuple[object, ...]] = []

    def probe(
        paths: Annotated[list[Path], Argument(help="Files.")],
        textable: Annotated[bool | None, Option("--textable/--not-textable")] = None,
        dry_run: Annotated[bool, Option("--dry-run")] = False,
        limit: Annotated[int | None, Option(min=1)] = None,
        sender: Annotated[str, Option("--from")] = "agent",
    ) -> None:
        seen.append((paths, textable, dry_run, limit, sender))

    group = App()
    group.command("probe")(probe)
    cli = group.build("drip")
    runner = CliRunner()
    assert runner.invoke(cli, ["probe", "a", "b"]).exit_code == 0
    assert (
        runner.invoke(cli, ["probe", "a", "--not-textable", "--dry-run", "--limit", "3"]).exit_code
        == 0
    )
    assert runner.invoke(cli, ["probe", "a", "--textable", "--from", "concierge"]).exit_code == 0
    assert seen == [
        ([Path("a"), Path("b")], None, False, None, "agent"),
        ([Path("a")], False, True, 3, "agent"),
        ([Path("a")], True, False, None, "concierge"),
    ]
    assert runner.invoke(cli, ["probe", "a", "--limit", "0"]).exit_code == 2
