"""docker-compose.yml is valid and every service command resolves to a real entry point."""

from __future__ import annotations

import importlib
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


def _services() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    services = data["services"]
    assert isinstance(services, dict)
    return services


def _drip_commands(command: list[str]) -> list[list[str]]:
    """The drip / celery / gunicorn invocations inside a service command."""
    if command[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in command[2].split("&&")]
    return [command]


def _check_drip(argv: list[str]) -> None:
    drip = Path(sys.executable).with_name("drip")
    result = subprocess.run(
        [str(drip), *argv[1:], "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"`{' '.join(argv)}` is not a drip command: {result.stderr}"


def _check_celery(argv: list[str]) -> None:
    module = argv[argv.index("-A") + 1]
    app = importlib.import_module(module).app
    assert app.main == "drip"
    if "worker" in argv and "-Q" in argv:
        declared = {q.name for q in app.conf.task_queues or ()}
        for queue in argv[argv.index("-Q") + 1].split(","):
            assert queue in declared, f"queue {queue!r} is not declared by {module}"


def _check_gunicorn(argv: list[str]) -> None:
    module, _, attr = argv[-1].partition(":")
    target = importlib.import_module(module)
    assert hasattr(target, attr), f"{argv[-1]} does not exist"


def test_compose_services_resolve_to_entry_points() -> None:
    """Each drip-image service runs a command that exists in this project."""
    checked = 0
    for name, service in _services().items():
        if service.get("image") != "drip:latest" and "build" not in service:
            continue
        for argv in _drip_commands(service["command"]):
            tool = argv[0]
            if tool == "drip":
                _check_drip(argv)
            elif tool == "celery":
                _check_celery(argv)
            elif tool == "gunicorn":
                _check_gunicorn(argv)
            else:
                pytest.fail(f"service {name}: unexpected command {argv}")
            checked += 1
    assert checked >= 6


def test_compose_has_health_checked_backing_services() -> None:
    """redis and postgres carry health checks and the app waits for them."""
    services = _services()
    for name in ("redis", "postgres"):
        assert "healthcheck" in services[name]
    assert set(services) >= {"redis", "postgres", "migrate", "worker", "beat", "web", "flower"}


def test_compose_config_is_valid() -> None:
    """`docker-compose config -q` accepts the file."""
    tool = shutil.which("docker-compose")
    if tool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("docker-compose is not installed (.ci/run installs Debian's package)")
        pytest.skip("docker-compose is not installed; `apt-get install docker-compose`")
    result = subprocess.run(
        [tool, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_the_web_spool_is_on_a_named_volume() -> None:
    """The web service keeps its webhook spool on a named volume, so a new container keeps it."""
    data = yaml.safe_load(COMPOSE.read_text())
    web = data["services"]["web"]
    spool = Path(web["environment"]["DRIP_WEB_SPOOL"])
    mounts: dict[Path, str] = {}
    for volume in web["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[Path(target)] = source
    assert mounts.get(spool.parent) in data["volumes"], f"{spool.parent} is not a named volume"
    assert web["environment"]["DRIP_DATABASE_URL"].startswith("postgresql")  # the shared env too
