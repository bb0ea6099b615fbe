"""The fake server in a process of its own, driven from a test: ``with FakeTwilioProcess() as fake``.

A test that judges timing at the fake (the pacing tests: how many texts of one
number arrived in any second) runs the fake here. Its handler threads then
never wait for the test process's interpreter lock, which the test's
dispatcher threads and pollers hold, so an arrival is stamped when the request
came and not when the test's process let the fake's thread run. The server is
the same :class:`~drip.testing.fake_twilio.server.FakeTwilioServer` (``python -m
drip.testing.fake_twilio``), read through its control endpoints.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any

import requests

from drip.testing.fake_twilio.ledger import Arrival
from drip.testing.fake_twilio.server import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

if TYPE_CHECKING:
    from drip.transports.twilio_sms import TwilioSmsTransport

__all__ = ["FakeTwilioProcess"]

_BANNER = "fake Twilio listening on "


class FakeTwilioProcess:
    """``python -m drip.testing.fake_twilio`` on a free port, with the server's read side.

    ``options`` are the command's own (``--status-callbacks``, ``--record``,
    ``--fail TO:CODE``, ...). The benchmarks start the fake this way too.
    What a test reads (:attr:`count`,
    :attr:`arrivals`, :meth:`stats`) is fetched from the process each time.
    """

    def __init__(
        self,
        *options: str,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._options = options
        self._process: subprocess.Popen[str] | None = None
        self._base_url: str | None = None
        self._http = requests.Session()

    # -- life cycle ----------------------------------------------------------

    def start(self) -> FakeTwilioProcess:
        """Start the process and wait for its banner (the port it bound); returns self."""
        if self._process is not None:
            return self
        command = [
            *(sys.executable, "-m", "drip.testing.fake_twilio", "--port", "0"),
            *("--account-sid", self.account_sid, "--auth-token", self.auth_token),
            *self._options,
        ]
        self._process = subprocess.Popen(  # noqa: S603  # our own module, no shell
            command,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        stdout = self._process.stdout
        banner = stdout.readline() if stdout is not None else ""  # "" if it died first
        if not banner.startswith(_BANNER):
            self.stop()
            raise RuntimeError(f"the fake Twilio process did not start: {banner!r}")
        self._base_url = banner[len(_BANNER) :].strip()
        return self

    def stop(self) -> None:
        """SIGTERM (the server closes its connections and exits), killed after 10 s."""
        process, self._process = self._process, None
        self._http.close()
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> FakeTwilioProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: what ``TwilioSmsTransport(base_url=...)`` takes."""
        if self._base_url is None:
            raise RuntimeError("the fake Twilio process is not started")
        return self._base_url

    @property
    def pid(self) -> int:
        """The process's id: what a benchmark reads the fake's CPU time by."""
        if self._process is None:
            raise RuntimeError("the fake Twilio process is not started")
        return self._process.pid

    def transport(self, **kwargs: Any) -> TwilioSmsTransport:
        """A real :class:`TwilioSmsTransport` pointed at this process, with its credentials."""
        from drip.transports.twilio_sms import TwilioSmsTransport

        return TwilioSmsTransport(
            self.account_sid, self.auth_token, base_url=self.base_url, **kwargs
        )

    # -- what happened -------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """``GET /_fake/stats``: counts of requests, acceptances, refusals, callbacks."""
        data: dict[str, int] = self._get("/_fake/stats")
        return data

    @property
    def count(self) -> int:
        """How many Messages API create requests were received (accepted or refused)."""
        return self.stats()["count"]

    @property
    def arrivals(self) -> list[Arrival]:
        """``GET /_fake/arrivals``: every create request's arrival, in order."""
        return [Arrival(**row) for row in self._get("/_fake/arrivals")]

    def reset(self) -> None:
        """``POST /_fake/reset``: forget requests, counts, behaviours and arrivals."""
        self._http.post(f"{self.base_url}/_fake/reset", timeout=10).raise_for_status()

    def _get(self, path: str) -> Any:
        response = self._http.get(f"{self.base_url}{path}", timeout=30)
        response.raise_for_status()
        return response.json()
