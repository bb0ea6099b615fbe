"""``drip lint`` in one round (issue 13): every error and warning of every file at once.

The CLI runs as a subprocess on a folder of several bad files, next to the
bundled ``account.yaml``. One run must show every problem: the warnings of
files that also have errors, and campaign names that clash across files that
have other errors. Then every reported error is mended, and a second run must
find no error the first one missed and the same warnings.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DRIP = str(Path(sys.executable).with_name("drip"))

#: file name -> (the file as broken, the mends of only its reported errors: (old, new))
FILES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "a_open_house.yaml": (
        "name: open-house\n"
        "kind: nurture\n"
        "steps:\n"
        "  - id: invite\n"
        "    day: 5\n"
        '    body: "Hi {VisitorFirstName}, {AgentFirstName} here. See http://example.com"\n'
        "  - id: reminder\n"
        "    day: -2\n"
        '    body: "Hi {VisitorFirstname}, the open house is Sunday."\n'
        "  - id: thanks\n"
        "    day: 3\n"
        '    body: "Thanks for coming \u2019 see you soon"\n',
        (("day: -2", "day: 7"), ("{VisitorFirstname}", "{VisitorFirstName}")),
    ),
    "b_open_house_copy.yaml": (
        "name: open-house\n"
        "kind: nurture\n"
        "steps:\n"
        "  - day: 1\n"
        '    body: "New homes this week: bit.ly/abc"\n',
        (("open-house", "open-house-copy"), ("bit.ly/abc", "https://example.com/homes")),
    ),
    "c_colon.yaml": (
        "name: colon\n"
        "kind: smart_drip\n"
        "steps:\n"
        "  - day: 1\n"
        "    body: Hi {VisitorFirstName}, it's {AgentFirstName}: call me\n",
        (("body: Hi", 'body: "Hi'), ("call me\n", 'call me"\n')),
    ),
    "d_comment.yaml": (
        "name: comment\n"
        "kind: smart_drip\n"
        "steps:\n"
        "  - day: 0\n"
        "    body: Hi, {AgentFirstName} here, your #1 agent\n"
        "  - day: 2\n"
        "    body: #1 in town\n",
        (("body: #1 in town", 'body: "#1 in town"'),),
    ),
    "e_ids.yaml": (
        "name: ids\n"
        "kind: concierge\n"
        "steps:\n"
        "  - id: hello\n"
        "    day: 0\n"
        '    body: "Welcome home"\n'
        "  - id: hello\n"
        "    day: 1\n"
        "    channel: email\n"
        '    body: "Listings"\n',
        (
            ("  - id: hello\n    day: 1", "  - id: listings\n    day: 1"),
            ("channel: email\n", 'channel: email\n    subject: "Listings"\n'),
        ),
    ),
}

#: (file, line, severity, words the message must hold), every problem of the broken folder.
EXPECTED = [
    ("a_open_house.yaml", 6, "warning", "http://example.com is a plain http:// link"),
    ("a_open_house.yaml", 8, "error", "step 2: day must not be negative, got -2"),
    ("a_open_house.yaml", 9, "error", "did you mean {VisitorFirstName}?"),
    ("a_open_house.yaml", 11, "warning", "is on day 3 but listed after step 1 (invite) on day 5"),
    ("a_open_house.yaml", 12, "warning", "3 segments with the footer (UCS-2, 187 chars)"),
    ("a_open_house.yaml", 12, "warning", '"\u2019" (U+2019) (use "\'") forces UCS-2'),
    ("a_open_house.yaml", 9, "warning", "may be the campaign's first text once its day"),
    ("a_open_house.yaml", 12, "warning", "is the first text of the valid steps (day 3)"),
    ("b_open_house_copy.yaml", 1, "error", "duplicate campaign name 'open-house'"),
    ("b_open_house_copy.yaml", 5, "error", "link shortener bit.ly"),
    ("b_open_house_copy.yaml", 5, "warning", "does not introduce the sender"),
    ("c_colon.yaml", 5, "error", 'put it in double quotes: body: "..."'),
    ("d_comment.yaml", 5, "warning", "starts a YAML comment when the text is not quoted"),
    ("d_comment.yaml", 7, "error", "body must be given, got null; the '#' after it starts"),
    ("e_ids.yaml", 6, "warning", "does not introduce the sender"),
    ("e_ids.yaml", 7, "error", "duplicate step id 'hello'"),
    ("e_ids.yaml", 7, "error", "an email step needs a subject"),
]
LOCATED = re.compile(r"^campaigns/(\w+\.yaml):(\d+):\d+: (error|warning): (.*)$")


def write_folder(tmp_path: Path, version: int) -> Path:
    """``campaigns/`` with the bundled account file and the broken (0) or mended (1) files."""
    folder = tmp_path / "campaigns"
    folder.mkdir(exist_ok=True)
    shutil.copy(REPO / "campaigns" / "account.yaml", folder / "account.yaml")
    for name, (broken, mends) in FILES.items():
        text = broken
        for old, new in mends if version else ():
            assert old in text, (name, old)
            text = text.replace(old, new, 1)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def lint(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``drip lint campaigns/`` in ``tmp_path``, embedded, with no colours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_"))}
    env.update(DRIP_HOME=str(tmp_path / ".drip"), DRIP_LOG_FORMAT="json", NO_COLOR="1")
    return subprocess.run(
        [DRIP, "lint", "campaigns/"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def problems(stdout: str) -> list[tuple[str, int, str, str]]:
    """(file, line, severity, message) of each located line of the output, in order."""
    found = []
    for line in stdout.splitlines():
        m = LOCATED.match(line)
        if m:
            found.append((m.group(1), int(m.group(2)), m.group(3), m.group(4)))
    return found


def test_one_run_shows_every_error_and_warning_of_every_file(tmp_path: Path) -> None:
    """One run lists each error and warning of five bad files, file by file in line order."""
    write_folder(tmp_path, 0)

    result = lint(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    shown = problems(result.stdout)
    for file, line, severity, words in EXPECTED:
        assert any(
            (f, n, s) == (file, line, severity) and words in message for f, n, s, message in shown
        ), (file, line, severity, words, result.stdout)
    assert len(shown) == len(EXPECTED), result.stdout
    assert [(f, n) for f, n, _, _ in shown] == sorted((f, n) for f, n, _, _ in shown)
    assert result.stdout.splitlines()[-1] == "6 files, 0 campaigns: 8 errors, 9 warnings"
    for bad in ("None", "False", "under 0", "(day 3) (", "see the next warning"):
        assert bad not in result.stdout


def test_mending_the_reported_errors_leaves_no_error_for_a_second_round(tmp_path: Path) -> None:
    """With only the reported errors mended, lint finds no new error and the same warnings."""
    folder = write_folder(tmp_path, 0)
    first = problems(lint(tmp_path).stdout)
    write_folder(tmp_path, 1)

    second = lint(tmp_path)

    assert second.returncode == 0, second.stdout + second.stderr
    assert [p for p in problems(second.stdout) if p[2] == "error"] == []
    # Every warning left was shown, at the same place, in the first round.
    warnings_before = {(f, n) for f, n, s, _ in first if s == "warning"}
    warnings_after = {(f, n) for f, n, _, _ in problems(second.stdout)}
    assert warnings_after <= warnings_before, (warnings_after - warnings_before, second.stdout)
    assert second.stdout.splitlines()[-1] == "6 files, 5 campaigns: 0 errors, 8 warnings"
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES, "account.yaml"])
