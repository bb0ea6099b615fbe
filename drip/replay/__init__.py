"""Replay: SPEC §6 scenarios on virtual time through the real pipeline, and ``drip demo``.

- :mod:`drip.replay.scenario`: frozen scenario values and the YAML loader
  (errors located as ``path:line:col: error: ...``, like campaign files);
- :mod:`drip.replay.runner`: a fresh database, a virtual clock and a recording
  transport; the real services, from registration to dispatch;
- :mod:`drip.replay.report`: text timeline, one JSON document, HTML page;
- :mod:`drip.replay.demo`: built-in sample contacts, a year of campaigns;
- :mod:`drip.cli.replay`: ``drip replay`` and ``drip demo``.
"""
