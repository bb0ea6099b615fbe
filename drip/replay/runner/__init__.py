"""Running scenarios on virtual time through the real pipeline, and checking them.

Read in this order:

- :mod:`~drip.replay.runner.world`: :func:`replay` and :func:`run_together`;
  a run's fresh database, services and virtual clock, and the loop that moves
  the clock from event to event, firing what falls due in between;
- :mod:`~drip.replay.runner.events`: each scenario event applied through the
  service an operator, a contact, the carrier or the webhook would reach;
- :mod:`~drip.replay.runner.results`: what a run gives (messages, decisions
  not to send, happenings), read back from the run's database;
- :mod:`~drip.replay.runner.checking`: the expectations against the messages
  sent, in send order.

The names used elsewhere are importable from this package.
"""

from drip.replay.runner.checking import check, decisions_near, differences
from drip.replay.runner.results import (
    DecisionRecord,
    Happening,
    Mismatch,
    OutMessage,
    ReplayError,
    ScenarioResult,
    day_number,
)
from drip.replay.runner.world import fresh_database, replay, run_together

__all__ = [
    "DecisionRecord",
    "Happening",
    "Mismatch",
    "OutMessage",
    "ReplayError",
    "ScenarioResult",
    "check",
    "day_number",
    "decisions_near",
    "differences",
    "fresh_database",
    "replay",
    "run_together",
]
