"""Webhooks out: outbox events delivered by drip against the same POSTs made by a plain loop.

``webhook_delivery_vs_post`` = (seconds of N POSTs by a ``requests.Session`` loop in one
process) / (seconds drip's delivery takes for N outbox events to the same receiver):
claim, sign, post, settle, commit. The receiver is a separate process (http.server,
HTTP/1.1 keep-alive) answering 204, so neither side shares its interpreter with it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from harness import PYTHON, Context, base_env, free_port, say, wait_for
from sqlalchemy import insert

EVENTS = {"smoke": 300, "quick": 2_000, "full": 10_000}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return


def serve(port: int) -> None:
    """The receiver process: answers every POST with 204 until killed."""
    ThreadingHTTPServer(("127.0.0.1", port), _Handler).serve_forever()


def _plain(url: str, n: int) -> float:
    body = json.dumps({"id": "evt_x", "type": "reply.received", "data": {"text": "hi"}}).encode()
    began = time.perf_counter()
    with requests.Session() as http:
        for _ in range(n):
            http.post(
                url, data=body, headers={"Content-Type": "application/json"}, timeout=(3, 10)
            ).close()
    return time.perf_counter() - began


def _seed(ctx: Context, n: int) -> None:
    from drip.store.models import OutboxEvent

    rows = [
        {
            "event_id": f"evt_bench_{i}",
            "type": "reply.received",
            "contact_id": i % 1000,
            "payload": {"text": f"reply {i}", "contact": {"id": i % 1000}},
            "created_at": ctx.now,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": ctx.now,
        }
        for i in range(n)
    ]
    with ctx.deps.sessions.begin() as session:
        for start in range(0, n, 2000):
            session.execute(insert(OutboxEvent), rows[start : start + 2000])


def run(ctx: Context) -> dict[str, Any]:
    from drip.domain.account import WebhookTarget
    from drip.services import webhooks

    n = EVENTS.get(ctx.sizes.mode, 10_000)
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    child = ctx.processes.start(
        "webhook-receiver",
        [PYTHON, __file__, "--serve", str(port)],
        base_env(ctx.workdir),
    )
    try:
        wait_for("the webhook receiver", lambda: _up(url), timeout=30)
        say(f"webhooks: {n} plain POSTs")
        plain = _plain(url, n)
        _seed(ctx, n)
        os.environ["DRIP_BENCH_HOOK_SECRET"] = "bench-secret"  # noqa: S105 - a benchmark-only key
        target = WebhookTarget(
            "bench", url, frozenset({"reply.received"}), "DRIP_BENCH_HOOK_SECRET"
        )
        deps = replace(ctx.deps, account=replace(ctx.deps.account, webhooks=(target,)))
        say(f"webhooks: {n} outbox events delivered")
        began = time.perf_counter()
        done = webhooks.deliver_due(deps, ctx.now + timedelta(seconds=1), embedded=True,
                                    rounds=n)  # fmt: skip
        drip = time.perf_counter() - began
    finally:
        ctx.processes.stop(child)
    return {
        "webhook_events": n,
        "webhook_delivered": done.delivered,
        "webhook_plain_s": round(plain, 3),
        "webhook_drip_s": round(drip, 3),
        "webhook_delivery_vs_post": round(plain / drip, 3) if drip else None,
    }


def _up(url: str) -> bool:
    try:
        requests.post(url, data=b"{}", timeout=1).close()
    except requests.RequestException:
        return False
    return True


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--serve":
    serve(int(sys.argv[2]))
