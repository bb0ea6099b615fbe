"""A local HTTP server that speaks Twilio's Messages API: the test double for every SMS test.

It answers the real twilio SDK (see :class:`drip.transports.twilio_sms.TwilioSmsTransport`
with ``base_url``) the way api.twilio.com does, for the calls drip makes, and
refuses what Twilio refuses with Twilio's codes. Read in this order:

- :mod:`.codes`: Twilio's error codes, messages and error body, and what a
  create request is refused for (missing parameters 21602-21604, a body over
  1,600 characters 21617, a ``To`` that is not a phone number 21211, a bad
  ValidityPeriod 21624);
- :mod:`.ledger`: what the server keeps (requests, accepted messages,
  callbacks sent, arrivals) and the behaviours a test sets (failures, faults,
  delivery outcomes, STOP blocks);
- :mod:`.messages`: the Message resource: create (``POST .../Messages.json``
  with HTTP basic auth: ``201`` with ``sid`` ``SM`` + 32 hex digits, or
  Twilio's JSON error, 401/20003 on wrong credentials), fetch, and the
  Messages list (newest first, ``To``/``From``/``DateSent`` filters, pages
  with ``next_page_uri``);
- :mod:`.callbacks`: signed status callbacks through Twilio's lifecycle
  (repeated and reordered with ``reorder_seed``), inbound texts through
  Twilio's STOP filter (21610 until START);
- :mod:`.lookup`: Lookup v2's ``reassigned_number`` (``GET
  /v2/PhoneNumbers/{PhoneNumber}``): ``yes``/``no``/``no_data_available``,
  404 for what is not a phone number, faults (refused, malformed, hung);
- :mod:`.carrier`: the carrier's clock: arrival times and the sender queue's
  ValidityPeriod expiry (30036);
- :mod:`.httpd`: the standard library's ``ThreadingHTTPServer``, answering
  with a ``Content-Length`` or chunked, plain or gzip-compressed (per server);
- :mod:`.server`: :class:`FakeTwilioServer`, its life cycle, routes and the
  control endpoints for a server in its own process (``GET /_fake/stats``,
  ``/_fake/requests``, ``/_fake/ledger``, ``/_fake/arrivals``; ``POST
  /_fake/reset``, ``/_fake/fail``, ``/_fake/fault``, ``/_fake/reassigned``
  (``phone``, ``since``), ``/_fake/lookup_fault``);
- :mod:`.cli`: ``python -m drip.testing.fake_twilio --port 8099``;
- :mod:`.process`: :class:`FakeTwilioProcess`, that command started and read
  from a test (the pacing tests, whose arrival times must not wait for the
  test process's interpreter lock).
"""

from drip.testing.fake_twilio.cli import main
from drip.testing.fake_twilio.codes import API_VERSION, num_segments
from drip.testing.fake_twilio.ledger import (
    FAULT_KINDS,
    Arrival,
    ReceivedRequest,
    StatusCallbackResult,
)
from drip.testing.fake_twilio.process import FakeTwilioProcess
from drip.testing.fake_twilio.server import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    FakeTwilioServer,
)

__all__ = [
    "API_VERSION",
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "FAULT_KINDS",
    "Arrival",
    "FakeTwilioProcess",
    "FakeTwilioServer",
    "ReceivedRequest",
    "StatusCallbackResult",
    "main",
    "num_segments",
]
