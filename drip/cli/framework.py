"""The commands' declarations, built into click commands (start-up time).

The command modules declare parameters the way typer does (``Annotated[str,
cli.Argument(help=...)]``, ``cli.Option("--json", help=...)``); this module
turns those declarations into click parameters. typer itself validated every
parameter through a pydantic ``TypeAdapter``: about 40 ms of imports and
100 ms of schema building on every command, more than the work of ``drip
history``. drip uses a small part of typer: ``str``, ``int``, ``bool``,
``Path``, ``X | None`` and ``list[Path]`` parameters, flags with an explicit
``--on/--off`` pair, ``min``/``max``, ``metavar``, ``dir_okay`` and a
``click.Context`` first parameter; anything else is refused when the command
is built, so a new kind of parameter fails loudly in the tests.

:class:`App` collects commands and sub-groups (``register(app)`` in each
command module); :class:`LazyGroup` is the root, importing a command's module
only when that command is run (``--help`` imports them all).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import inspect
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click
from click import Context, confirm, echo, secho
from click.exceptions import Exit

__all__ = [
    "App",
    "Argument",
    "Command",
    "Context",
    "Exit",
    "Group",
    "LazyGroup",
    "Option",
    "colors",
    "confirm",
    "echo",
    "importing",
    "keep_imports",
    "secho",
]


#: Whether :func:`importing` moves what was imported out of the collector's reach
#: (``gc.freeze``): set by :func:`keep_imports` in the ``drip`` process itself, not
#: in a process that merely calls the commands (tests), whose heap is not all kept.
_freeze_imports = False


def keep_imports() -> None:
    """From now on, what :func:`importing` imports is kept out of later collections."""
    global _freeze_imports  # noqa: PLW0603 - one switch per process, set by drip.cli.main
    _freeze_imports = True


@contextlib.contextmanager
def importing() -> Iterator[None]:
    """Imports without the cyclic garbage collector, which is then back as it was.

    Importing a command's modules allocates a few hundred thousand objects
    (classes, functions, SQLAlchemy's tables and mappers), nearly all of them
    kept for the life of the process: the collector, triggered every 700
    allocations, walks them over and over for nothing. Off during the imports,
    it would still walk them all twice afterwards (young, then middle-aged),
    unless they are frozen (``gc.freeze``: kept out of every later collection;
    reference counting still frees them), which :func:`keep_imports` turns on
    for the ``drip`` process. Imports make next to no cyclic garbage.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if _freeze_imports:
            gc.freeze()
        if enabled:
            gc.enable()


class colors:  # noqa: N801  (typer's spelling: ``cli.colors.RED``)
    """The colour names ``secho`` takes."""

    RED = "red"
    GREEN = "green"
    YELLOW = "yellow"
    BLUE = "blue"


class _Info:
    """What a parameter declares besides its type and default."""

    def __init__(
        self,
        decls: Sequence[str] = (),
        *,
        help: str | None = None,
        metavar: str | None = None,
        min: int | None = None,
        max: int | None = None,
        dir_okay: bool = True,
    ) -> None:
        self.decls = tuple(decls)
        self.help = help
        self.metavar = metavar
        self.min = min
        self.max = max
        self.dir_okay = dir_okay


class Argument(_Info):
    """A positional parameter: ``Annotated[str, Argument(help=...)]``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__((), **kwargs)


class Option(_Info):
    """An option: ``Annotated[bool, Option("--json", help=...)]``; no names: ``--param-name``."""

    def __init__(self, *decls: str, **kwargs: Any) -> None:
        super().__init__(decls, **kwargs)


#: click 8.3+ lists arguments with their help itself ("Positional arguments").
_CLICK_SHOWS_ARGUMENT_HELP = "help" in inspect.signature(click.Argument.__init__).parameters


class _HelpArgument(click.Argument):
    """A click argument that keeps its help text (older clicks do not list it)."""

    def __init__(self, decls: Sequence[str], *, help: str | None = None, **kwargs: Any) -> None:
        if _CLICK_SHOWS_ARGUMENT_HELP:
            kwargs["help"] = help
        super().__init__(decls, **kwargs)
        self.help_text = help


def _format_arguments(command: click.Command, ctx: click.Context, formatter: Any) -> None:
    if _CLICK_SHOWS_ARGUMENT_HELP:
        return
    rows = [
        (p.make_metavar(ctx), p.help_text or "")
        for p in command.get_params(ctx)
        if isinstance(p, _HelpArgument)
    ]
    if rows:
        with formatter.section("Arguments"):
            formatter.write_dl(rows)


class Command(click.Command):
    """A click command whose help lists its arguments with their help, as typer's did."""

    def format_options(self, ctx: click.Context, formatter: Any) -> None:
        _format_arguments(self, ctx, formatter)
        super().format_options(ctx, formatter)


class Group(click.Group):
    """A click group listing its commands in the order they were added."""

    command_class = Command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def format_options(self, ctx: click.Context, formatter: Any) -> None:
        _format_arguments(self, ctx, formatter)
        super().format_options(ctx, formatter)


def _unwrap(hint: Any) -> tuple[Any, _Info | None, bool, bool]:
    """(base type, declaration, optional, a list) of an annotation."""
    info: _Info | None = None
    if typing.get_origin(hint) is typing.Annotated:
        info = next((m for m in hint.__metadata__ if isinstance(m, _Info)), None)
        hint = typing.get_args(hint)[0]
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(members) != 1:
            raise TypeError(f"unsupported parameter type {hint!r}")
        optional, hint = True, members[0]
    many = typing.get_origin(hint) is list
    if many:
        (hint,) = typing.get_args(hint)
    return hint, info, optional, many


def _click_type(base: Any, info: _Info) -> click.ParamType[Any]:
    if base is str:
        return click.STRING
    if base is int:
        if info.min is not None or info.max is not None:
            return click.IntRange(info.min, info.max)
        return click.INT
    if base is float:
        return click.FLOAT
    if base is Path:
        return click.Path(path_type=Path, dir_okay=info.dir_okay)
    raise TypeError(f"unsupported parameter type {base!r}")


def _as_list(_ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _parameter(name: str, hint: Any, default: Any) -> click.Parameter:
    base, info, _optional, many = _unwrap(hint)
    required = default is inspect.Parameter.empty
    # A required parameter gets no default at all: click (8.3+) takes an explicit
    # ``default=None`` as a value, and the missing argument would not be reported.
    defaults: dict[str, Any] = {} if required else {"default": default}
    if many:  # click gives a tuple; the declaration (and typer) says list
        defaults["callback"] = _as_list
    if isinstance(info, Argument) or (info is None and required):
        info = info or Argument()
        return _HelpArgument(
            [name],
            type=_click_type(base, info),
            required=required,
            nargs=-1 if many else 1,
            metavar=info.metavar,
            help=info.help,
            **defaults,
        )
    info = info or Option()
    decls = info.decls or (f"--{name.replace('_', '-')}",)
    if base is bool:
        if any("/" in d for d in decls):
            return click.Option([name, *decls], help=info.help, **defaults)
        return click.Option([name, *decls], is_flag=True, help=info.help, **defaults)
    return click.Option(
        [name, *decls],
        type=_click_type(base, info),
        required=required,
        multiple=many,
        metavar=info.metavar,
        help=info.help,
        show_default=not required and default is not None,
        **defaults,
    )


def build_command(
    name: str,
    func: Callable[..., Any],
    cls: type[click.Command] = Command,
    **attrs: Any,
) -> click.Command:
    """A click command (or group, with ``cls``) calling ``func`` with its parsed parameters."""
    hints = typing.get_type_hints(func, include_extras=True)
    params: list[click.Parameter] = []
    context_name: str | None = None
    for p in inspect.signature(func).parameters.values():
        if hints.get(p.name) is click.Context:
            context_name = p.name
            continue
        params.append(_parameter(p.name, hints[p.name], p.default))

    def callback(**values: Any) -> Any:
        if context_name is not None:
            values[context_name] = click.get_current_context()
        return func(**values)

    doc = inspect.getdoc(func) or ""
    return cls(
        name,
        callback=callback,
        params=params,
        help=doc,
        short_help=_summary(doc),
        **attrs,
    )


def _summary(doc: str) -> str:
    """The docstring's first paragraph on one line: the command list shows it whole."""
    return " ".join(doc.split("\n\n", 1)[0].split())


class App:
    """A group being declared: ``register(app)`` adds commands, callbacks and sub-groups."""

    def __init__(
        self,
        name: str | None = None,
        *,
        help: str | None = None,
        cls: type[click.Group] = Group,
        no_args_is_help: bool = False,
        invoke_without_command: bool = False,
    ) -> None:
        self.name = name
        self.help = help
        self.cls = cls
        self.no_args_is_help = no_args_is_help
        self.invoke_without_command = invoke_without_command
        self.commands: dict[str, click.Command] = {}
        self._callback: Callable[..., Any] | None = None

    def command(
        self, name: str, *, cls: type[click.Command] = Command
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: ``func`` becomes the command ``name``."""

        def add(func: Callable[..., Any]) -> Callable[..., Any]:
            self.commands[name] = build_command(name, func, cls)
            return func

        return add

    def callback(self) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: ``func`` runs for the group itself (its options are the group's)."""

        def add(func: Callable[..., Any]) -> Callable[..., Any]:
            self._callback = func
            return func

        return add

    def add_group(self, sub: App, name: str) -> None:
        """Add ``sub`` as the sub-group ``name`` (typer called it ``add_typer``)."""
        self.commands[name] = sub.build(name)

    def build(self, name: str | None = None) -> click.Group:
        """The click group of everything declared."""
        attrs: dict[str, Any] = {
            "no_args_is_help": self.no_args_is_help,
            "invoke_without_command": self.invoke_without_command,
            "commands": self.commands,
        }
        group_name = name or self.name
        if self._callback is not None:
            group = build_command(group_name or "", self._callback, self.cls, **attrs)
            assert isinstance(group, click.Group)
            if self.help:
                group.help, group.short_help = self.help, _summary(self.help)
            return group
        return self.cls(group_name, help=self.help, short_help=_summary(self.help or ""), **attrs)


class LazyGroup(Group):
    """The root group: a command's module is imported when the command is run.

    ``table`` maps each command name to the module whose ``register(app)``
    declares it (tests check the table against the modules). ``--help``
    imports every module, to show each command's short help.
    """

    def __init__(self, name: str, table: dict[str, str], **attrs: Any) -> None:
        super().__init__(name, **attrs)
        self.table = table

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.table)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.table:
            app = App()
            with importing():
                module = importlib.import_module(self.table[cmd_name])
            module.register(app)
            self.commands.update(app.commands)
        return self.commands.get(cmd_name)
