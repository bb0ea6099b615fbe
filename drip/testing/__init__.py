"""Test doubles that speak the real protocols: a fake Twilio API server and a real SMTP server.

Used by the tests, the benchmarks and the demos; nothing here is used in production.
Import the submodules directly (``drip.testing.fake_twilio``, ``drip.testing.smtp_server``).
"""

from __future__ import annotations
