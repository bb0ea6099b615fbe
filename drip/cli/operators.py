"""Console operators: ``drip operators add|list|disable``."""

from __future__ import annotations

import sys

import click

from drip.cli._common import fail, ready_deps


@click.group("operators", invoke_without_command=True)
@click.pass_context
def operators(ctx: click.Context) -> None:
    """Console operators and their roles (viewer, operator, compliance); no subcommand: list."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(operators_list)


@operators.command("add")
@click.argument("name")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["viewer", "operator", "compliance"]),
    help="viewer reads; operator also acts on contacts; compliance: every action and the audit.",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (scripts).",
)
def operators_add(name: str, role: str, password_stdin: bool) -> None:
    """Create operator NAME; the password is asked twice on a terminal (never an argument)."""
    from drip.errors import DripError
    from drip.services.operators import add_operator, check_name

    try:
        name = check_name(name)
    except DripError as exc:
        raise fail(str(exc)) from exc
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = click.prompt(
            f"Password for {name}", hide_input=True, confirmation_prompt=True, err=True
        )
    else:
        raise fail("no terminal to ask the password on: pass --password-stdin and pipe it in")
    deps = ready_deps()
    try:
        added = add_operator(deps, name, role, password, deps.clock.now())
    except DripError as exc:
        raise fail(str(exc)) from exc
    click.echo(f"operator {added.name} added, role {added.role}")


@operators.command("list")
def operators_list() -> None:
    """Every operator: name, role, active or disabled, when added."""
    from drip.services.operators import list_operators

    rows = list_operators(ready_deps())
    if not rows:
        click.echo("no operators: add one with `drip operators add NAME --role ROLE`")
        return
    click.echo(f"{'name':<24} {'role':<11} {'state':<9} added (UTC)")
    for r in rows:
        state = "active" if r.active else "disabled"
        click.echo(f"{r.name:<24} {r.role:<11} {state:<9} {r.created_at:%Y-%m-%d %H:%M}")


@operators.command("disable")
@click.argument("name")
def operators_disable(name: str) -> None:
    """Stop NAME from logging in; their open console sessions end at the next request."""
    from drip.errors import DripError
    from drip.services.operators import disable_operator

    deps = ready_deps()
    try:
        click.echo(disable_operator(deps, name, deps.clock.now()))
    except DripError as exc:
        raise fail(str(exc)) from exc
