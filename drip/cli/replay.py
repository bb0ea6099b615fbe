"""``drip replay FILE... [--json] [--html OUT]`` and ``drip demo``.

Replaying a folder (or several files) in one ``drip replay`` call is the fast
way to run many scenarios: the pipeline's modules are imported once, the
migrated template database is made once, and each scenario starts from a copy
of it (see docs/replay.md).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from click.exceptions import Exit


def _quiet_logs() -> None:
    """Services log every decision at INFO; the replay prints them itself."""
    from drip.logging import configure_logging

    configure_logging("auto", "ERROR")


@click.command("replay")
@click.argument(
    "files",
    nargs=-1,
    required=True,
    type=click.Path(path_type=Path),
    help="Scenario files (YAML, see docs/replay.md) or folders of them.",
)
@click.option("--json", "as_json", is_flag=True, help="Write one JSON document to standard output.")
@click.option(
    "--html",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write a self-contained HTML timeline.",
)
def replay(files: tuple[Path, ...], as_json: bool, html: Path | None) -> None:
    """Run scenarios on virtual time through the real pipeline and check their expectations.

    Each file (format in docs/replay.md) runs alone on a fresh database; the
    timeline of every message, event and decision not to send is printed,
    then PASS or FAIL with each difference. Exit 0 when every expectation
    holds, 1 when one does not, 2 when a file is invalid (reported as
    path:line:col: error: ...). A folder runs all its scenarios in this one
    process, which is much faster than one call per file.

    Events: text, enroll, reply (reply_to), consent, text_status, bulk; and the
    extensions edit_campaign, downtime_until, carrier_opt_out,
    email_unsubscribe, opt_out_type (on reply), from (on text).
    """
    from drip.errors import DripError
    from drip.replay.report import as_json as to_json
    from drip.replay.report import text_report, write_html
    from drip.replay.runner import ReplayError, ScenarioResult
    from drip.replay.runner import replay as run_scenario
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
            results.append(run_scenario(scenario))
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
        click.echo(to_json(results, errors=errors, exit_code=code))
    else:
        for line in text_report(results):
            click.echo(line)
        for problem in errors:
            click.secho(problem, fg="red", err=True)
        passed = sum(1 for r in results if r.passed)
        click.echo(
            f"{len(results)} scenario(s) run: {passed} passed, {len(results) - passed} failed; "
            f"{len(errors)} problem(s) in invalid files; "
            f"{time.perf_counter() - began:.2f} s"
        )
        if html is not None:
            click.echo(f"HTML timeline: {html}")
    sys.stdout.flush()
    raise Exit(code)


@click.command("demo")
@click.option(
    "--html",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write the HTML timeline (default: $DRIP_HOME/demo.html).",
)
def demo(html: Path | None) -> None:
    """The main job on virtual time: a dozen sample contacts, a year of campaigns, a report.

    Needs no configuration: a fresh database in a temporary folder, the
    campaigns of ./campaigns (or those bundled with drip), a year replayed in
    seconds through the real pipeline; prints each contact's timeline and a
    summary, and writes the HTML timeline (.drip/demo.html by default).
    """
    from drip.replay.demo import run_demo

    _quiet_logs()
    raise Exit(run_demo(html=html, echo=click.echo))
