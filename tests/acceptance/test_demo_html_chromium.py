"""The demo's HTML timeline in headless Chromium: drawn, not blank, and no network request.

Chromium is looked up on PATH (``chromium``, ``chromium-browser``,
``google-chrome``). Missing, the tests are skipped with the reason, except
under ``CI=true`` where they fail: CI installs it (``.ci/run``).

No network request: Chromium's own NetLog is read. Requests the page makes
carry the page as initiator (``null`` for a ``file://`` page); Chromium's
background requests (updates, accounts) say ``not an origin`` and are not the
page's. A page with an image, a stylesheet and a ``fetch`` is checked the same
way first, so a detector that sees nothing would fail the test.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from drip.replay.demo import run_demo

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
LEAKY = """<!doctype html><title>leaky</title><img src="http://example.com/a.png">
<link rel="stylesheet" href="https://fonts.example.net/c.css">
<script>fetch("https://example.org/b.json").catch(function () {});</script>"""


@pytest.fixture(scope="module")
def chromium() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    reason = "chromium is not installed (apt-get install -y --no-install-recommends chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI must have it")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def demo_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    page = folder / "demo.html"
    assert run_demo(html=page, echo=lambda _line: None) == 0
    return page


def run_chromium(browser: str, work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = work / f"profile-{len(list(work.iterdir()))}"
    return subprocess.run(
        [browser, *FLAGS, f"--user-data-dir={profile}", "--window-size=1400,900", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def page_requests(netlog: Path) -> set[str]:
    """URLs the page itself asked for, from a Chromium NetLog."""
    log = json.loads(netlog.read_text(encoding="utf-8"))
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    browser_own: set[str] = set()
    seen: set[str] = set()
    for event in log["events"]:
        params = event.get("params") or {}
        url = params.get("url")
        if not isinstance(url, str) or not url.startswith(("http:", "https:", "ws:", "wss:")):
            continue
        seen.add(url)
        kind = names.get(event["type"])
        if kind == "URL_REQUEST_START_JOB" and params.get("initiator") == "not an origin":
            browser_own.add(url)
    return seen - browser_own


def png_pixels(path: Path) -> Iterator[tuple[int, int, int]]:
    """The RGB pixels of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (size,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + size]
        pos += 12 + size
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and interlace == 0 and color in (2, 6)
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(b"".join(chunks)), width * bpp
    prev = bytearray(stride)
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + ((a + b) >> 1)) & 255
            elif kind == 4:
                c = prev[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp):
            yield line[x], line[x + 1], line[x + 2]
        prev = line


def test_screenshot_is_not_blank(chromium: str, demo_page: Path, tmp_path: Path) -> None:
    """The page renders: many non-white pixels, and several colours (lanes, marks, legend)."""
    shot = tmp_path / "shot.png"
    done = run_chromium(chromium, tmp_path, f"--screenshot={shot}", demo_page.as_uri())
    assert shot.is_file(), done.stderr[-2000:]
    pixels = list(png_pixels(shot))
    assert len(pixels) == 1400 * 900
    inked = [p for p in pixels if min(p) < 235]
    assert len(inked) > 0.02 * len(pixels)
    colours = {(r // 32, g // 32, b // 32) for r, g, b in inked}
    assert len(colours) >= 6


def test_script_draws_one_lane_per_contact(chromium: str, demo_page: Path, tmp_path: Path) -> None:
    """After the page's script ran, the DOM holds a drawn lane per sample contact."""
    done = run_chromium(chromium, tmp_path, "--dump-dom", demo_page.as_uri())
    dom = done.stdout
    assert 'data-rendered="13"' in dom, done.stderr[-2000:]
    for i in range(13):
        assert f'id="lane-{i}"' in dom
    assert dom.count('class="mark ') > 100
    assert "Fiona Reyes" in dom and "Emma Stone" in dom


def test_page_makes_no_network_request(chromium: str, demo_page: Path, tmp_path: Path) -> None:
    """Chromium's NetLog shows requests a leaky page makes, and none for the demo page."""
    leaky = tmp_path / "leaky.html"
    leaky.write_text(LEAKY, encoding="utf-8")
    control = tmp_path / "control.json"
    run_chromium(chromium, tmp_path, f"--log-net-log={control}", "--dump-dom", leaky.as_uri())
    assert page_requests(control) >= {"http://example.com/a.png", "https://example.org/b.json"}
    netlog = tmp_path / "netlog.json"
    done = run_chromium(
        chromium, tmp_path, f"--log-net-log={netlog}", "--dump-dom", demo_page.as_uri()
    )
    assert 'data-rendered="13"' in done.stdout
    assert page_requests(netlog) == set()
