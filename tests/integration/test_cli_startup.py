"""CLI start-up: the schema check without Alembic, and what a command imports.

The revision check every database command runs reads one row and the
migration files' headers; it must agree with Alembic. A command imports only
what it uses: ``drip history`` no Alembic, Flask, Celery, Redis, twilio,
holidays, pendulum, prometheus-client, the campaign loader or the modules of
other commands;
``drip replay`` no Alembic (the cached template), Flask, Celery, Redis or
twilio. The replay template is kept only in a cache folder that is the
user's own.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from drip.errors import StoreError
from drip.store.engine import make_engine
from drip.store.migrate import head_revision, upgrade
from drip.store.schema_version import (
    database_revision,
    migrations_digest,
    shipped_head,
)

REPO = Path(__file__).resolve().parents[2]

#: Modules neither ``drip history`` nor a one-scenario ``drip replay`` may import.
NOT_FOR_ANY_LOCAL_COMMAND = (
    "flask",
    "werkzeug",
    "celery",
    "redis",
    "limits",
    "twilio",
    "requests",
    "typer",
    "pydantic",
)

#: Modules no read-only database command needs.
NOT_FOR_HISTORY = (
    *NOT_FOR_ANY_LOCAL_COMMAND,
    "holidays",
    "pendulum",
    "dateutil",
    # drip.metrics makes its counters on first use: a command that counts nothing skips it
    "prometheus_client",
    "regex",
    "phonenumbers",
    "drip.campaigns.loader",
    "drip.store.claims",
    "drip.transports.recording",
    "drip.services.fire",
    # the other command modules: the root group imports only the chosen one
    "drip.cli.campaigns",
    "drip.cli.contacts",
    "drip.cli.db",
    "drip.cli.enrollments",
    "drip.cli.replay",
    "drip.cli.texts",
    "drip.cli.web",
)

#: Modules a one-scenario ``drip replay`` does not need.
NOT_FOR_REPLAY = (
    *NOT_FOR_ANY_LOCAL_COMMAND,
    # A database command checks the schema head with Alembic; replay migrates its own.
    "alembic",
    "drip.cli.operations",
    "drip.cli.campaigns",
    # GSM-7 texts only: the grapheme pattern's library is not loaded.
    "regex",
)


def test_shipped_head_is_alembics_head() -> None:
    """The head the CLI checks against is the one Alembic computes from the scripts."""
    assert shipped_head() == head_revision()
    assert shipped_head() is not None


def test_database_revision_of_empty_and_migrated_sqlite(tmp_path: Path) -> None:
    """None before the first upgrade, the head after it; two rows are an error."""
    engine = make_engine(f"sqlite:///{tmp_path / 'drip.db'}")
    try:
        assert database_revision(engine) is None
        upgrade(engine)
        assert database_revision(engine) == head_revision()
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('zzzz')"))
        with pytest.raises(StoreError, match="several revisions"):
            database_revision(engine)
    finally:
        engine.dispose()


def test_migrations_digest_changes_with_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay template's cache key follows the migration files' contents."""
    import drip.store.schema_version as sv

    monkeypatch.setattr(sv, "VERSIONS_DIR", tmp_path)
    (tmp_path / "a.py").write_text('revision = "a"\n')
    first = migrations_digest()
    (tmp_path / "a.py").write_text('revision = "a"\n# edited\n')
    assert migrations_digest() != first


def _drip_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_"))}
    env.update(
        DRIP_HOME=str(home),
        DRIP_CAMPAIGNS_DIR=str(REPO / "campaigns"),
        XDG_CACHE_HOME=str(home / "cache"),
    )
    return env


def _loaded_by(argv: list[str], names: tuple[str, ...], env: dict[str, str], cwd: Path) -> Any:
    """Run ``drip ARGV`` in a fresh interpreter: its output and which of ``names`` it imported."""
    probe = (
        "import io, contextlib, json, sys\n"
        f"sys.argv = ['drip', *{argv!r}]\n"
        "from drip.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, exc.code\n"
        f"names = {names!r}\n"
        "print(json.dumps({'out': out.getvalue(), 'loaded': [m for m in names if m in sys.modules]}))\n"
    )
    return json.loads(_run_probe(probe, env, cwd).strip().splitlines()[-1])


def _run_probe(probe: str, env: dict[str, str], cwd: Path) -> str:
    """The stdout of ``python -c probe``, which must exit 0."""
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_history_imports_only_what_it_uses(tmp_path: Path) -> None:
    """``drip history`` imports none of :data:`NOT_FOR_HISTORY` (nothing cached: the first run)."""
    env = _drip_env(tmp_path / "home")
    drip = str(Path(sys.executable).with_name("drip"))
    for command in (["db", "upgrade"], ["contacts", "add", "--phone", "+13055550123", "-f", "Ann"]):
        subprocess.run([drip, *command], env=env, cwd=tmp_path, check=True, capture_output=True)
    result = _loaded_by(["history", "1"], NOT_FOR_HISTORY, env, tmp_path)
    assert "contact 1: Ann" in result["out"]
    assert "area code 305" in result["out"]
    assert result["loaded"] == []


def test_replay_imports_only_what_it_uses(tmp_path: Path) -> None:
    """A one-scenario ``drip replay`` imports none of :data:`NOT_FOR_REPLAY` (template cached)."""
    env = _drip_env(tmp_path / "home")
    scenario = str(REPO / "tests" / "scenarios" / "window_deferral.yaml")
    first = _loaded_by(["replay", scenario], (), env, tmp_path)  # makes the cached template
    result = _loaded_by(["replay", scenario], NOT_FOR_REPLAY, env, tmp_path)
    assert "1 passed" in first["out"]
    assert result["out"].split("; ")[:2] == first["out"].split("; ")[:2]
    assert result["loaded"] == []


def test_commands_refuse_an_old_schema_without_alembic(tmp_path: Path) -> None:
    """A database behind the shipped head is refused with the upgrade hint, as before."""
    env = _drip_env(tmp_path / "home")
    drip = str(Path(sys.executable).with_name("drip"))
    subprocess.run([drip, "db", "upgrade"], env=env, cwd=tmp_path, check=True, capture_output=True)
    engine = make_engine(f"sqlite:///{tmp_path / 'home' / 'drip.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    finally:
        engine.dispose()
    done = subprocess.run(
        [drip, "contacts", "list"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "run `drip db upgrade` first" in done.stderr
    status = subprocess.run(
        [drip, "status"], env=env, cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert "(revision 0001)" in status.stdout


def test_replay_template_is_made_once_and_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The migrated template is kept in the private cache folder; a new process copies it."""
    from drip.replay.runner import world as runner
    from drip.store import migrate

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(runner, "_template", None)
    runner.fresh_database(tmp_path / "one.db")
    folder = tmp_path / "cache" / "drip"
    cached = folder / runner._template_name()
    assert cached.exists()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700

    def no_alembic(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the cached template should have been copied")

    monkeypatch.setattr(runner, "_template", None)  # as in a new process
    monkeypatch.setattr(migrate, "upgrade", no_alembic)
    runner.fresh_database(tmp_path / "two.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'two.db'}")
    try:
        assert database_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_replay_template_is_not_read_from_a_folder_others_can_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache folder open to group or others is not used: the template is made afresh elsewhere."""
    from drip.replay.runner import world as runner

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "drip"
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    planted = folder / runner._template_name()
    planted.write_bytes(b"not the template")
    monkeypatch.setattr(runner, "_template", None)
    runner.fresh_database(tmp_path / "one.db")
    assert runner._template is not None and runner._template.parent != folder
    assert planted.read_bytes() == b"not the template"  # neither read nor replaced
    engine = make_engine(f"sqlite:///{tmp_path / 'one.db'}")
    try:
        assert database_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_a_cache_folder_is_trusted_only_when_it_is_the_users_own(tmp_path: Path) -> None:
    """A folder of mode 0700 owned by this user passes; a link, an open mode or a file does not."""
    from drip.user_cache import unsafe_because

    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    assert unsafe_because(os.lstat(private)) is None
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(0o755)
    assert "mode 0755" in (unsafe_because(os.lstat(open_folder)) or "")
    link = tmp_path / "link"
    link.symlink_to(private)
    assert "not a folder" in (unsafe_because(os.lstat(link)) or "")
    file = tmp_path / "file"
    file.write_text("")
    assert "not a folder" in (unsafe_because(os.lstat(file)) or "")


@pytest.mark.parametrize(
    "name",
    ["America/New_York", "america/new_york", "US/Eastern", "UTC", "Etc/Unknown", "America",
     "../etc/passwd", "localtime", "Factory", "posixrules", "Mars/Olympus"],
)  # fmt: skip
def test_canonical_zone_agrees_with_the_full_zone_list(name: str) -> None:
    """Opening one zone file gives the same answer as listing every zone, in any case."""
    import zoneinfo

    from drip.domain.zones import _NOT_ZONES, _canonical_zone

    folded = {z.casefold(): z for z in zoneinfo.available_timezones() - _NOT_ZONES}
    assert _canonical_zone(name) == folded.get(name.casefold())


def test_a_command_closes_its_connections_before_exit(tmp_path: Path) -> None:
    """``main`` disposes every engine a command built and leaves the exit-time collection out."""
    env = _drip_env(tmp_path / "home")
    drip = str(Path(sys.executable).with_name("drip"))
    for command in (["db", "upgrade"], ["contacts", "add", "--phone", "+13055550123", "-f", "Ann"]):
        subprocess.run([drip, *command], env=env, cwd=tmp_path, check=True, capture_output=True)
    probe = (
        "import gc, io, contextlib, sys\n"
        "sys.argv = ['drip', 'history', '1']\n"
        "from drip.cli import _common, main\n"
        "built = []\n"
        "make = _common.deps\n"
        "def spy():\n"
        "    d = make()\n"
        "    built.append(d)\n"
        "    with d.engine.connect():\n"
        "        pass\n"
        "    return d\n"
        "_common.deps = spy\n"
        "import drip.cli.operations as ops\n"
        "ops.build_deps = spy\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, exc.code\n"
        "print(len(built), [d.engine.pool.checkedin() for d in built], _common.BUILT,\n"
        "      gc.get_freeze_count() > 0)\n"
    )
    assert _run_probe(probe, env, tmp_path).split() == ["1", "[0]", "[]", "True"]
