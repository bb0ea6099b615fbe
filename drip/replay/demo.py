"""``drip demo``: a year of an account's campaigns on virtual time, with nothing to set up.

The demo is a set of built-in scenarios (in the format of docs/replay.md, one
contact each, no expectations) run together by the replay runner in one fresh SQLite database
in a temporary folder: the campaigns are synced, a dozen sample contacts
register at their own times with their own lives (never replies, replies on
day 20, STOP on day 100, no consent, imported without evidence, in Florida,
a concierge buyer, a seller, an email only, ...), a bulk text goes to every
contact on day 120, and a year passes on virtual time through the real
pipeline. It prints each contact's timeline and a summary, and writes the
HTML timeline (``.drip/demo.html``, or under ``DRIP_HOME``).

Campaigns: the ``campaigns/`` folder of the working directory when it holds
every campaign the samples use (so edits made there show up in the demo),
else the campaigns bundled with drip; the demo says which.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import time as clock_time
from pathlib import Path

from drip.campaigns.yamlsource import YamlSource
from drip.domain.campaign import Campaign
from drip.domain.schedule import at_local
from drip.errors import CampaignError
from drip.replay.report import Summary, summarize, timeline, write_html
from drip.replay.runner import ScenarioResult, run_together
from drip.replay.scenario import (
    Enroll,
    Scenario,
    bundled_project,
    parse_scenario,
    project_account,
)

#: The campaigns the sample contacts are enrolled in.
DEMO_CAMPAIGNS = (
    "smart-drip-new-lead",
    "new-lead-nurture",
    "concierge-buyer",
    "concierge-seller",
    "concierge-default",
)
DEMO_DATE = "2026-03-02"
DEMO_DAYS = 365
#: A bulk text to every contact (``drip bulk BODY``): day, local time, zone, body.
BROADCAST = (
    120,
    clock_time(11, 0),
    "America/New_York",
    "Acme Realty open house weekend: 20+ homes open Sat and Sun, 11 to 3. Want the list?",
)

_HEAD = """
start: "{date} {time}"
agent: {agent}
concierge: {{phone: "+16175550199"}}
until: day 365
"""
_SAM = '{first_name: Sam, last_name: Lee, phone: "+16175550100"}'
_ALEX = '{first_name: Alex, last_name: Kim, phone: "+16175550101"}'


@dataclass(frozen=True, slots=True)
class Sample:
    """One built-in life: its key, registration time, agent and the rest of its YAML."""

    key: str
    at: str
    body: str
    agent: str = _SAM

    def yaml(self) -> str:
        return _HEAD.format(date=DEMO_DATE, time=self.at, agent=self.agent) + self.body


SAMPLES: tuple[Sample, ...] = (
    Sample(
        "never-replies",
        "10:00",
        """
name: never replies (the seed example)
timezone: America/New_York
contact: {first_name: Dana, last_name: Ruiz, phone: "+16175550123", email: dana@example.com, state: MA}
events:
  - {at: day 0 10:05, text: "Hi Dana, this is Sam with Acme Realty. Thanks for registering!"}
  - {at: day 0 10:06, enroll: smart-drip-new-lead}
""",
    ),
    Sample(
        "replies-day-20",
        "11:20",
        """
name: replies on day 20 (no footer after that)
timezone: America/New_York
contact: {first_name: Ray, last_name: Chen, phone: "+16175550124", state: MA}
events:
  - {at: day 0 11:25, text: "Hi Ray, this is Sam with Acme Realty. Happy to help with your search."}
  - {at: day 0 11:26, enroll: smart-drip-new-lead}
  - {at: day 20 18:40, reply: "Thanks Sam, we are looking at 3 bedrooms in Newton"}
""",
    ),
    Sample(
        "stop-day-100",
        "09:10",
        """
name: texts STOP on day 100 (emails go on)
timezone: America/New_York
contact: {first_name: Stella, last_name: Ward, phone: "+16175550125", email: stella@example.com}
events:
  - {at: day 0 09:12, enroll: new-lead-nurture}
  - {at: day 0 09:13, enroll: smart-drip-new-lead}
  - {at: day 100 19:02, reply: "STOP"}
""",
    ),
    Sample(
        "no-consent",
        "14:00",
        """
name: registered without ticking the SMS box (emails only)
timezone: America/New_York
contact:
  first_name: Nora
  last_name: Quinn
  phone: "+16175550126"
  email: nora@example.com
  sms_consent: false
events:
  - {at: day 0 14:01, enroll: new-lead-nurture}
""",
    ),
    Sample(
        "imported-no-evidence",
        "09:00",
        """
name: imported without consent evidence (cannot be texted)
timezone: America/New_York
contact: {first_name: Ivan, last_name: Petrov, phone: "+16175550127", source: import}
events:
  - {at: day 0 09:05, enroll: smart-drip-new-lead}
""",
        _ALEX,
    ),
    Sample(
        "florida",
        "20:30",
        """
name: in Florida (08:00-20:00, 3 texts in 24 h)
timezone: America/New_York
contact: {first_name: Fiona, last_name: Reyes, phone: "+13055550128", email: fiona@example.com, state: FL}
events:
  - {at: day 0 20:31, enroll: concierge-buyer}
  - {at: day 0 20:32, enroll: new-lead-nurture}
  - {at: day 3 09:00, bulk: "Miami open house this Saturday, 11 to 2."}
  - {at: day 3 09:30, bulk: "Price drop in Coral Gables: 4 bed, pool."}
  - {at: day 3 10:00, bulk: "New listing in Brickell with a bay view."}
""",
        _ALEX,
    ),
    Sample(
        "concierge-buyer",
        "12:15",
        """
name: concierge buyer who answers the concierge
timezone: America/New_York
contact: {first_name: Carlos, last_name: Mendez, phone: "+16175550129"}
events:
  - {at: day 0 12:16, enroll: concierge-buyer}
  - {at: day 0 12:17, enroll: smart-drip-new-lead}
  - {at: day 3 18:05, reply_to: concierge, reply: "We like Brookline, 3 bedrooms, under 900k"}
""",
    ),
    Sample(
        "seller",
        "16:45",
        """
name: seller asking for a home valuation
timezone: America/New_York
contact: {first_name: Sally, last_name: Brooks, phone: "+16175550130", email: sally@example.com}
events:
  - {at: day 0 16:46, enroll: concierge-seller}
""",
        _ALEX,
    ),
    Sample(
        "email-only",
        "08:30",
        """
name: an email address and no phone
timezone: America/New_York
contact: {first_name: Emma, last_name: Stone, email: emma@example.com}
events:
  - {at: day 0 08:31, enroll: new-lead-nurture}
""",
    ),
    Sample(
        "chicago",
        "07:15",
        """
name: no time zone on record, Chicago by area code
contact: {first_name: Chris, last_name: Dunn, phone: "+13125550131"}
events:
  - {at: day 0 07:16, enroll: concierge-default}
  - {at: day 0 07:17, enroll: smart-drip-new-lead}
""",
    ),
    Sample(
        "help-phrase-start",
        "13:30",
        """
name: HELP, then "please stop texting me", then START
timezone: America/New_York
contact: {first_name: Henry, last_name: Ford, phone: "+16175550132"}
events:
  - {at: day 0 13:31, enroll: smart-drip-new-lead}
  - {at: day 5 10:00, reply: "HELP"}
  - {at: day 30 21:15, reply: "please stop texting me"}
  - {at: day 60 09:00, reply: "START"}
""",
    ),
    Sample(
        "cannot-be-texted",
        "15:00",
        """
name: an operator marks the contact cannot be texted on day 50
timezone: America/New_York
contact: {first_name: Olivia, last_name: Park, phone: "+16175550133"}
events:
  - {at: day 0 15:01, enroll: smart-drip-new-lead}
  - {at: day 50, text_status: cannot_be_texted}
""",
        _ALEX,
    ),
    Sample(
        "oklahoma",
        "20:30",
        """
name: Oklahoma by area code (zone and state rule from the phone)
contact: {first_name: Otis, last_name: Webb, phone: "+14055550134"}
events:
  - {at: day 0 20:31, enroll: concierge-default}
""",
    ),
)


# -- campaigns -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoProject:
    """Where the demo's campaigns and account settings come from, and why."""

    root: Path
    why: str


def choose_project(cwd: Path) -> DemoProject:
    """The working directory's campaigns when they hold the demo's, else drip's bundled ones."""
    from drip.campaigns.loader import load_campaigns

    folder = cwd / "campaigns"
    bundled = bundled_project()
    if folder.is_dir():
        loaded = load_campaigns(folder)
        missing = [name for name in DEMO_CAMPAIGNS if name not in loaded.campaigns]
        if not missing:
            try:
                project_account(cwd.resolve())
            except CampaignError:
                return DemoProject(bundled, f"{folder}/account.yaml is invalid")
            return DemoProject(cwd.resolve(), "the working directory's campaigns/ folder")
        return DemoProject(
            bundled, f"{folder} lacks {', '.join(missing)}; using the campaigns bundled with drip"
        )
    return DemoProject(bundled, "no campaigns/ in the working directory: bundled with drip")


def sample_scenarios(project: Path) -> list[Scenario]:
    """The built-in lives as scenarios, their campaigns looked up in ``project``."""
    here = Path(__file__)
    return [
        parse_scenario(
            YamlSource(f"{here.name}#{sample.key}", sample.yaml()), project=project, base=project
        )
        for sample in SAMPLES
    ]


def all_campaigns(project: Path) -> list[Campaign]:
    from drip.campaigns.loader import load_campaigns

    return list(load_campaigns(project / "campaigns").campaigns.values())


# -- running -----------------------------------------------------------------------------


def default_html_path(environ: dict[str, str] | None = None) -> Path:
    """``$DRIP_HOME/demo.html``, ``.drip/demo.html`` when ``DRIP_HOME`` is unset."""
    env = os.environ if environ is None else environ
    home = (env.get("DRIP_HOME") or "").strip() or ".drip"
    return Path(home).expanduser() / "demo.html"


def run_demo(*, html: Path | None, echo: Callable[[str], None]) -> int:
    """Run the demo; returns the exit code (0)."""
    began = time.perf_counter()
    project = choose_project(Path.cwd())
    echo(f"drip demo: campaigns from {project.root / 'campaigns'} ({project.why})")
    scenarios = sample_scenarios(project.root)
    campaigns = all_campaigns(project.root)
    day, wall, zone, body = BROADCAST
    start = datetime.fromisoformat(DEMO_DATE).date()
    broadcast_at = at_local(start.fromordinal(start.toordinal() + day), wall, zone)
    echo(
        f"a fresh database in a temporary folder; {len(scenarios)} sample contacts, "
        f"{len(campaigns)} campaigns, {DEMO_DAYS} days of virtual time from {DEMO_DATE}; "
        f"a bulk text to every contact on day {day}"
    )
    echo("")
    results = run_together(
        scenarios,
        campaigns=campaigns,
        account=scenarios[0].account,
        broadcasts=[(broadcast_at, body)],
    )
    for result in results:
        for line in timeline(result):
            echo(line)
        echo(f"  {contact_summary(result)}")
        echo("")
    summary = summarize(results)
    echo("Summary")
    for line in summary.lines():
        echo(f"  {line}")
    echo("")
    for line in per_contact_table(results):
        echo(line)
    target = (html or default_html_path()).resolve()
    write_html(results, target, title=f"drip demo: {len(results)} contacts, one year")
    echo("")
    echo(f"HTML timeline: {target}")
    echo(f"done in {time.perf_counter() - began:.1f} s")
    return 0


def contact_summary(r: ScenarioResult) -> str:
    one = summarize([r])
    return (
        f"{r.scenario.contact.full_name}: {_sentence(one)}"
        + (f"; skipped: {_flat(one.skipped)}" if one.skipped else "")
        + (f"; deferred: {_flat(one.deferred)}" if one.deferred else "")
    )


def _sentence(s: Summary) -> str:
    return f"{s.texts} text(s), {s.with_footer} with footer, {s.emails} email(s)"


def _flat(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))


def per_contact_table(results: Sequence[ScenarioResult]) -> list[str]:
    rows = [
        f"  {'contact':<16} {'texts':>5} {'footer':>6} {'emails':>6} {'segments':>8} "
        f"{'skipped':>7} {'deferred':>8}  life"
    ]
    for r in results:
        s = summarize([r])
        rows.append(
            f"  {r.scenario.contact.full_name:<16} {s.texts:>5} {s.with_footer:>6} "
            f"{s.emails:>6} {s.segments:>8} {sum(s.skipped.values()):>7} "
            f"{sum(s.deferred.values()):>8}  {r.scenario.name}"
        )
    return rows


def used_campaigns(scenarios: Sequence[Scenario]) -> set[str]:
    """The campaign names the scenarios enroll in (the demo's tests check DEMO_CAMPAIGNS)."""
    return {
        e.action.campaign.name for s in scenarios for e in s.events if isinstance(e.action, Enroll)
    }
