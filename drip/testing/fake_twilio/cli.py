"""``python -m drip.testing.fake_twilio``: the fake server as a process of its own."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Sequence
from types import FrameType

from drip.testing.fake_twilio.server import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    FakeTwilioServer,
)

__all__ = ["main"]


def _parse_failure(spec: str) -> tuple[str, int, int]:
    to, _, rest = spec.partition(":")
    code, _, status = rest.partition(":")
    return to, int(code or 21610), int(status or 400)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted (SIGINT or SIGTERM)."""
    parser = argparse.ArgumentParser(
        prog="python -m drip.testing.fake_twilio",
        description="A local fake of Twilio's Messages API, for tests, benchmarks and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--account-sid", default=DEFAULT_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN)
    parser.add_argument(
        "--status-callbacks", action="store_true", help="POST signed sent/delivered callbacks"
    )
    parser.add_argument("--callback-delay", type=float, default=0.0)
    parser.add_argument(
        "--record", action="store_true", help="keep every request (GET /_fake/requests)"
    )
    parser.add_argument(
        "--fail",
        action="append",
        default=[],
        metavar="TO[:CODE[:STATUS]]",
        help="always refuse messages to TO (default code 21610, status 400); repeatable",
    )
    parser.add_argument(
        "--chunked", action="store_true", help="answer with Transfer-Encoding: chunked"
    )
    parser.add_argument(
        "--gzip", action="store_true", help="gzip answers for clients that accept gzip"
    )
    args = parser.parse_args(argv)
    server = FakeTwilioServer(
        args.account_sid,
        args.auth_token,
        host=args.host,
        port=args.port,
        send_status_callbacks=args.status_callbacks,
        callback_delay=args.callback_delay,
        record_requests=args.record,
        chunked=args.chunked,
        gzip=args.gzip,
    )
    for spec in args.fail:
        to, code, status = _parse_failure(spec)
        server.fail(to, code=code, status=status)

    def _stop(signum: int, frame: FrameType | None) -> None:
        server.stop()

    signal.signal(signal.SIGTERM, _stop)
    server.start()
    print(
        f"fake Twilio listening on {server.base_url}\n"
        f"  TWILIO_ACCOUNT_SID={server.account_sid}\n"
        f"  TWILIO_AUTH_TOKEN={server.auth_token}\n"
        f"  stats: GET {server.base_url}/_fake/stats",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()
    return 0
