"""``drip replay FILE... [--json] [--html OUT]`` and ``drip demo``, registered on the CLI."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

from drip.cli import framework as cli


def register(app: cli.App) -> None:
    """Add the replay and demo commands to ``app``."""
    app.command("replay")(replay_command)
    app.command("demo")(demo_command)


def _quiet_logs() -> None:
    """Services log every decision at INFO; the replay prints them itself."""
    from drip.logging import configure_logging

    configure_logging("auto", "ERROR")


def replay_command(
    files: Annotated[
        list[Path], cli.Argument(help="Scenario files (YAML, SPEC §6) or folders of them.")
    ],
    as_json: Annotated[
        bool, cli.Option("--json", help="Write one JSON document to standard output.")
    ] = False,
    html: Annotated[
        Path | None, cli.Option("--html", help="Also write a self-contained HTML timeline.")
    ] = None,
) -> None:
    """Run scenarios on virtual time through the real pipeline and check their expectations.

    Each file (SPEC §6) runs alone on a fresh database; the timeline of every
    message, event and decision not to send is printed, then PASS or FAIL with
    each difference. Exit 0 when every expectation holds, 1 when one does
    not, 2 when a file is invalid (reported as path:line:col: error: ...).

    Events: text, enroll, reply (reply_to), consent, text_status, bulk; and the
    extensions edit_campaign, downtime_until, carrier_opt_out,
    email_unsubscribe, opt_out_type (on reply), from (on text).
    """
    with cli.importing():  # the pipeline's modules: most of the command's start-up
        from drip.errors import DripError
        from drip.replay.report import as_json as to_json
        from drip.replay.report import text_report, write_html
        from drip.replay.runner import ReplayError, ScenarioResult, replay
        from drip.replay.scenario import ScenarioError, load_scenario, scenario_files

    _quiet_logs()
    began = time.perf_counter()
    missing = [p for p in files if not p.exists()]
    errors = [f"{p}:1:1: error: no such file or folder" for p in missing]
    results: list[ScenarioResult] = []
    for path in scenario_files([p for p in files if p.exists()]):
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            errors.extend(exc.problems)
            continue
        try:
            results.append(replay(scenario))
        except (ReplayError, DripError) as exc:
            # The pipeline refused something the file asks for (not a failed expectation).
            errors.append(f"{path}:1:1: error: the replay stopped: {exc}")
    if errors:
        code = 2
    elif all(r.passed for r in results):
        code = 0
    else:
        code = 1
    if html is not None:
        write_html(results, html, title="drip replay")
    if as_json:
        cli.echo(to_json(results, errors=errors, exit_code=code))
    else:
        for line in text_report(results):
            cli.echo(line)
        for problem in errors:
            cli.secho(problem, fg=cli.colors.RED, err=True)
        passed = sum(1 for r in results if r.passed)
        cli.echo(
            f"{len(results)} scenario(s) run: {passed} passed, {len(results) - passed} failed; "
            f"{len(errors)} problem(s) in invalid files; "
            f"{time.perf_counter() - began:.2f} s"
        )
        if html is not None:
            cli.echo(f"HTML timeline: {html}")
    sys.stdout.flush()
    raise cli.Exit(code)


def demo_command(
    html: Annotated[
        Path | None,
        cli.Option(
            "--html", help="Where to write the HTML timeline (default: $DRIP_HOME/demo.html)."
        ),
    ] = None,
) -> None:
    """The main job on virtual time: a dozen sample contacts, a year of campaigns, a report.

    Needs no configuration: a fresh database in a temporary folder, the
    campaigns of ./campaigns (or those bundled with drip), a year replayed in
    seconds through the real pipeline; prints each contact's timeline and a
    summary, and writes the HTML timeline (.drip/demo.html by default).
    """
    from drip.replay.demo import run_demo

    _quiet_logs()
    raise cli.Exit(run_demo(html=html, echo=cli.echo))
