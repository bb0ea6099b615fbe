"""Replay: QA scenarios (docs/replay.md) on virtual time through the real pipeline, and ``drip demo``.

- :mod:`drip.replay.scenario`: the file format, frozen scenario values and the
  YAML reader (errors located as ``path:line:col: error: ...``, like campaign
  files), then the checks across fields;
- :mod:`drip.replay.runner`: the world of a run (a fresh database, a virtual
  clock, a recording transport), its events applied through the real services,
  the results read back, and the expectations checked;
- :mod:`drip.replay.report`: text timeline, one JSON document, HTML page;
- :mod:`drip.replay.demo`: built-in sample contacts, a year of campaigns;
- :mod:`drip.cli.replay`: ``drip replay`` and ``drip demo``.
"""
