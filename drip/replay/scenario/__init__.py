"""Replay scenarios: the file format, its frozen values, and a reader whose errors are located.

Read in this order:

- :mod:`~drip.replay.scenario.format`: the fields, event kinds and expectation
  keys of a scenario file, and the choices made where the format is silent;
- :mod:`~drip.replay.scenario.values`: the frozen values a valid file becomes
  (:class:`Scenario`, :class:`Event` and its actions, :class:`Expectation`);
- :mod:`~drip.replay.scenario.project`: the project folder a scenario's
  campaigns and account settings come from;
- :mod:`~drip.replay.scenario.fields`, :mod:`~drip.replay.scenario.events`,
  :mod:`~drip.replay.scenario.expectations`: reading one field, the events,
  the expectations;
- :mod:`~drip.replay.scenario.validation`: the checks across fields (time
  order, sender numbers, one file per campaign);
- :mod:`~drip.replay.scenario.reader`: :func:`load_scenario`, the whole file,
  every problem reported as ``path:line:col: error: message``.

The names used elsewhere are importable from this package.
"""

from drip.replay.scenario.format import NO_VALIDITY
from drip.replay.scenario.project import bundled_project, find_project, project_account
from drip.replay.scenario.reader import (
    ScenarioError,
    load_scenario,
    parse_scenario,
    scenario_files,
)
from drip.replay.scenario.values import (
    Action,
    AgentSpec,
    Archive,
    Backlog,
    Bulk,
    CarrierOptOut,
    CarrierReport,
    Consent,
    ContactSpec,
    DayTime,
    Downtime,
    EditCampaign,
    EmailUnsubscribe,
    Enroll,
    Erase,
    Event,
    Expectation,
    LeadEvent,
    LookupOutage,
    ManualText,
    NumberReassigned,
    Pause,
    PauseContact,
    Reply,
    Resume,
    ResumeContact,
    Scenario,
    SetTextStatus,
    Unenroll,
)

__all__ = [
    "NO_VALIDITY",
    "Action",
    "AgentSpec",
    "Archive",
    "Backlog",
    "Bulk",
    "CarrierOptOut",
    "CarrierReport",
    "Consent",
    "ContactSpec",
    "DayTime",
    "Downtime",
    "EditCampaign",
    "EmailUnsubscribe",
    "Enroll",
    "Erase",
    "Event",
    "Expectation",
    "LeadEvent",
    "LookupOutage",
    "ManualText",
    "NumberReassigned",
    "Pause",
    "PauseContact",
    "Reply",
    "Resume",
    "ResumeContact",
    "Scenario",
    "ScenarioError",
    "SetTextStatus",
    "Unenroll",
    "bundled_project",
    "find_project",
    "load_scenario",
    "parse_scenario",
    "project_account",
    "scenario_files",
]
