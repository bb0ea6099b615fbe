"""gunicorn with two workers and PROMETHEUS_MULTIPROC_DIR: /metrics adds up what every worker counted."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from net_support import free_port
from prometheus_client.parser import text_string_to_metric_families
from twilio.request_validator import RequestValidator

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
AUTH_TOKEN = "gunicorn-test-token"
INBOUND = 12


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 -- http://127.0.0.1 built here
        return str(answer.read().decode())


def inbound_texts(body: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if s.name == "drip_inbound_messages_total" and s.labels.get("kind") == "text"
    )


def test_every_scrape_counts_what_both_workers_handled(tmp_path: Path) -> None:
    """Signed inbound texts spread over two gunicorn workers; any worker's /metrics counts them all."""
    shutil.copytree(REPO / "campaigns", tmp_path / "campaigns")
    folder = tmp_path / "prometheus"
    folder.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_"))}
    env.update(
        DRIP_HOME=str(tmp_path / ".drip"),
        DRIP_PUBLIC_URL=base,
        TWILIO_ACCOUNT_SID="AC" + "1" * 32,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        PROMETHEUS_MULTIPROC_DIR=str(folder),
        DRIP_LOG_LEVEL="WARNING",
    )
    subprocess.run([str(BIN / "drip"), "db", "upgrade"], cwd=tmp_path, env=env, check=True)
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "-c", "python:drip.web.gunicorn_conf", "drip.web.wsgi:app"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(f"{base}/healthz")
                break
            except (urllib.error.URLError, OSError):
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.2)
        validator = RequestValidator(AUTH_TOKEN)
        url = f"{base}/twilio/sms"
        for i in range(INBOUND):
            params = {
                "MessageSid": f"SM{i:032d}",
                "From": f"+1617555{i:04d}",
                "To": "+16175550100",
                "Body": "hello there",
            }
            request = urllib.request.Request(  # noqa: S310 -- http://127.0.0.1 built here
                url,
                data=urllib.parse.urlencode(params).encode(),
                headers={"X-Twilio-Signature": validator.compute_signature(url, params)},
            )
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                assert answer.status == 200
        scrapes = [inbound_texts(get(f"{base}/metrics")) for _ in range(6)]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert scrapes == [INBOUND] * 6
