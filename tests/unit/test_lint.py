"""``lint_paths``: loader and account errors, and each located warning."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from drip.campaigns.lint import SAMPLE_VALUES, LintReport, lint_paths
from drip.domain.account import AccountSettings

ROOT = Path(__file__).resolve().parents[2]
CLEAN_BODY = "Hi {VisitorFirstName}, it's {AgentFirstName} with {CompanyName}. Still looking?"


def campaign(tmp_path: Path, steps: str, *, extra: str = "", name: str = "c.yaml") -> Path:
    """Write a campaign with the given (already indented) steps block."""
    path = tmp_path / name
    text = f"name: {path.stem}\nkind: smart_drip\n{extra}steps:\n" + textwrap.dedent(steps)
    path.write_text(text, encoding="utf-8")
    return path


def sms(day: int, body: str, more: str = "") -> str:
    return f'- day: {day}\n  body: "{body}"\n{more}'


def test_bundled_campaigns_lint_clean() -> None:
    """campaigns/ (with its account.yaml) has no error and no warning."""
    report = lint_paths([ROOT / "campaigns"])
    assert report.errors == []
    assert report.warnings == []
    assert report.campaigns == 9
    assert report.files == 10
    assert report.account.company == "Acme Realty"
    assert report.summary() == "10 files, 9 campaigns: 0 errors, 0 warnings"


def test_clean_campaign_has_no_warning(tmp_path: Path) -> None:
    """A short, introduced, GSM-7 text in day order gives nothing to warn about."""
    path = campaign(tmp_path, sms(0, CLEAN_BODY) + sms(5, "Any questions, {VisitorFirstName}?"))
    report = lint_paths([path])
    assert (report.errors, report.warnings) == ([], [])
    assert report.summary() == "1 file, 1 campaign: 0 errors, 0 warnings"


def test_first_text_must_introduce_the_sender(tmp_path: Path) -> None:
    """The earliest SMS step without {AgentFirstName} or {CompanyName} is warned at its body."""
    steps = sms(3, CLEAN_BODY) + sms(1, "Hi {VisitorFirstName}, still looking?")
    path = campaign(tmp_path, steps)
    report = lint_paths([path])
    intro = [w for w in report.warnings if "does not introduce" in w]
    assert intro == [
        f"{path}:7:9: warning: step 2 is the campaign's first text (day 1) and does not "
        "introduce the sender: name {AgentFirstName} or {CompanyName} so the lead knows "
        "who is texting"
    ]


def test_company_name_written_out_introduces_the_sender(tmp_path: Path) -> None:
    """Writing the company's name literally counts as an introduction."""
    path = campaign(tmp_path, sms(0, "Hi {VisitorFirstName}, this is Acme Realty."))
    assert lint_paths([path]).warnings == []


def test_text_past_two_segments_with_the_footer(tmp_path: Path) -> None:
    """A text that with the default footer and sample names needs 3 segments is warned."""
    body = CLEAN_BODY + " " + "We have many new homes for you to see this week." * 2
    path = campaign(tmp_path, sms(0, body))
    report = lint_paths([path])
    assert len(report.warnings) == 1
    warning = report.warnings[0]
    assert warning.startswith(f"{path}:5:9: warning: step 1: 3 segments with the footer (GSM-7, ")
    assert "keep the text under 149 chars with names filled in" in warning


def test_segments_use_the_campaign_footer_override(tmp_path: Path) -> None:
    """A short campaign footer leaves room that the long default footer would take."""
    body = CLEAN_BODY + " " + "We have many new homes for you to see this week." * 2
    footer = 'opt_out:\n  footer: "Reply STOP to opt out."\n'
    path = campaign(tmp_path, sms(0, body), extra=footer)
    assert lint_paths([path]).warnings == []


def test_segments_use_sample_names(tmp_path: Path) -> None:
    """Variables are measured with the sample names, not with the length of their tokens."""
    names = "{VisitorFirstName} {VisitorLastName} {AgentFirstName} {AgentLastName} "
    rendered = " ".join(
        SAMPLE_VALUES[k]
        for k in ("VisitorFirstName", "VisitorLastName", "AgentFirstName", "AgentLastName")
    )
    filler = "x" * (149 - len(rendered) - 1)  # 149 chars rendered: 2 segments with the footer
    assert len(names + filler) > 149
    path = campaign(tmp_path, sms(0, names + filler) + sms(1, names + filler + "x"))
    warnings = [w for w in lint_paths([path]).warnings if "segments" in w]
    assert len(warnings) == 1
    assert "step 2: 3 segments with the footer (GSM-7, 305 chars = 307 septets)" in warnings[0]


def test_ucs2_characters_are_named_with_their_cost(tmp_path: Path) -> None:
    """A curly apostrophe is named with its code point, the fix and the segments it costs."""
    body = "Hi {VisitorFirstName}, it\u2019s {AgentFirstName} with {CompanyName}. Still looking?"
    path = campaign(tmp_path, sms(0, body))
    report = lint_paths([path])
    ucs2 = [w for w in report.warnings if "UCS-2 encoding" in w]
    assert ucs2 == [
        f'{path}:5:35: warning: step 1: "\u2019" (U+2019) (use "\'") forces UCS-2 encoding; '
        "UCS-2 makes this 4 segments instead of 2"
    ]


def test_ucs2_cost_when_the_segment_count_stays(tmp_path: Path) -> None:
    """With a tiny footer the count may not change; the warning then says what room is lost."""
    path = campaign(
        tmp_path,
        sms(0, "{CompanyName}: open house 😀"),
        extra='opt_out:\n  footer: "Reply STOP to opt out."\n',
    )
    (warning,) = lint_paths([path]).warnings
    assert '"😀" (U+1F600) forces UCS-2 encoding' in warning
    assert "UCS-2 holds 70 chars per segment instead of 160 (1 segment with the footer)" in warning


def test_plain_http_link(tmp_path: Path) -> None:
    """An http:// link is warned at the link itself."""
    path = campaign(tmp_path, sms(0, "{CompanyName}: see http://acme.example/homes"))
    assert lint_paths([path]).warnings == [
        f"{path}:5:29: warning: step 1: http://acme.example/homes is a plain http:// link; "
        "use https://"
    ]


def test_plain_http_link_in_an_email_subject(tmp_path: Path) -> None:
    """Links in email subjects are checked too."""
    steps = (
        sms(0, CLEAN_BODY) + '- day: 1\n  channel: email\n  subject: "See http://acme.example"\n'
        '  body: "Hello"\n'
    )
    path = campaign(tmp_path, steps)
    assert lint_paths([path]).warnings == [
        f"{path}:8:17: warning: step 2: http://acme.example is a plain http:// link; use https://"
    ]


def test_steps_not_in_day_order(tmp_path: Path) -> None:
    """A step listed after a later one is warned at its day."""
    steps = sms(0, CLEAN_BODY) + sms(30, "Later") + sms(10, "Earlier")
    path = campaign(tmp_path, steps)
    assert lint_paths([path]).warnings == [
        f"{path}:8:8: warning: step 3 is on day 10 but listed after step 2 on day 30; "
        "list the steps in day order"
    ]


def test_at_outside_the_send_window(tmp_path: Path) -> None:
    """A fixed time outside the window is warned: the text would wait."""
    path = campaign(tmp_path, sms(0, CLEAN_BODY, '  at: "22:30"\n'))
    assert lint_paths([path]).warnings == [
        f"{path}:6:7: warning: step 1: at 22:30 is outside the send window 08:00-21:00; "
        "the text will wait until 08:00"
    ]


def test_email_steps_are_not_measured_as_sms(tmp_path: Path) -> None:
    """Long email bodies with any characters are fine."""
    body = "Hello “friend” 😀 " * 40
    steps = sms(0, CLEAN_BODY) + f'- day: 1\n  channel: email\n  subject: Hi\n  body: "{body}"\n'
    assert lint_paths([campaign(tmp_path, steps)]).warnings == []


def test_errors_are_reported_and_bad_files_not_counted(tmp_path: Path) -> None:
    """Loader errors come through; a bad file counts as a file but not a campaign."""
    good = campaign(tmp_path, sms(0, CLEAN_BODY), name="good.yaml")
    bad = campaign(tmp_path, sms(-1, CLEAN_BODY), name="bad.yaml")
    report = lint_paths([tmp_path])
    assert report.errors == [f"{bad}:4:8: error: step 1: day must not be negative, got -1"]
    assert (report.files, report.campaigns) == (2, 1)
    assert report.summary() == "2 files, 1 campaign: 1 error, 0 warnings"
    assert report.exit_code() == 1
    assert good.exists()


def test_account_file_in_a_folder_is_loaded_as_settings(tmp_path: Path) -> None:
    """account.yaml is validated as account settings and its footer and company are used."""
    (tmp_path / "account.yaml").write_text(
        'company: Harbor Homes\nfooter: "Reply STOP to opt out."\ndefault_sender: "+16175550199"\n',
        encoding="utf-8",
    )
    body = "Hi {VisitorFirstName}, this is Harbor Homes. " + "New homes this week. " * 5
    campaign(tmp_path, sms(0, body))
    report = lint_paths([tmp_path])
    assert (report.errors, report.warnings) == ([], [])
    assert report.account.company == "Harbor Homes"
    assert (report.files, report.campaigns) == (2, 1)


def test_account_file_errors_are_reported(tmp_path: Path) -> None:
    """A bad account.yaml is an error of the lint, located in that file."""
    (tmp_path / "account.yaml").write_text("default_timezone: Mars/Base\n", encoding="utf-8")
    report = lint_paths([tmp_path])
    assert len(report.errors) == 1
    assert report.errors[0].startswith(f"{tmp_path / 'account.yaml'}:1:19: error: ")


def test_explicit_account_argument_wins(tmp_path: Path) -> None:
    """The account passed in decides the footer used to measure texts."""
    body = CLEAN_BODY + " " + "We have many new homes for you to see this week." * 2
    path = campaign(tmp_path, sms(0, body))
    short = AccountSettings(footer="Reply STOP to opt out.")
    assert lint_paths([path], account=short).warnings == []
    assert len(lint_paths([path]).warnings) == 1


def test_every_problem_is_located(tmp_path: Path) -> None:
    """Each warning follows path:line:col: warning: message."""
    body = "hi it\u2019s http://x.example " + "long text " * 20
    path = campaign(tmp_path, sms(9, body) + sms(2, "again", '  at: "06:00"\n'))
    warnings = lint_paths([path]).warnings
    assert len(warnings) == 6
    assert all(re.match(r"^.+:\d+:\d+: warning: ", w) for w in warnings)


@pytest.mark.parametrize(
    ("report", "line"),
    [
        (LintReport(files=1, campaigns=1), "1 file, 1 campaign: 0 errors, 0 warnings"),
        (
            LintReport(errors=["e"], warnings=["w", "w"], files=3, campaigns=2),
            "3 files, 2 campaigns: 1 error, 2 warnings",
        ),
    ],
)
def test_summary_line(report: LintReport, line: str) -> None:
    """The summary counts files, campaigns, errors and warnings with plurals."""
    assert report.summary() == line


def test_exit_code_strict() -> None:
    """Warnings fail only in strict mode; errors always fail."""
    warned = LintReport(warnings=["w"])
    assert (warned.exit_code(), warned.exit_code(strict=True)) == (0, 1)
    assert LintReport(errors=["e"]).exit_code() == 1
    assert LintReport().exit_code(strict=True) == 0


def test_ucs2_in_the_campaign_footer(tmp_path: Path) -> None:
    """A non-GSM character in a footer override is warned once, at the footer."""
    footer = 'opt_out:\n  footer: "Reply STOP to opt out \u2014 thanks"\n'
    path = campaign(tmp_path, sms(0, CLEAN_BODY), extra=footer)
    assert lint_paths([path]).warnings == [
        f'{path}:4:34: warning: opt_out.footer: "\u2014" (U+2014) (use "-") forces UCS-2 on '
        "every text that carries the footer, which halves the room per segment"
    ]


def test_duplicate_ids_come_with_the_other_errors_of_the_steps(tmp_path: Path) -> None:
    """A duplicate step id is reported in the same round as the other errors of that step."""
    path = tmp_path / "dup.yaml"
    path.write_text(
        "name: dup\nkind: smart_drip\nsteps:\n"
        '  - id: a\n    day: 1\n    body: "Hi {CompanyName}"\n'
        '  - id: a\n    day: -2\n    body: "Hi {Nope}"\n',
        encoding="utf-8",
    )
    errors = lint_paths([path]).errors
    assert any("duplicate step id 'a'; step 1 on line 4 has it too" in e for e in errors)
    assert any("day must not be negative" in e for e in errors)
    assert any("unknown template variable {Nope}" in e for e in errors)


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        ("Hi {VisitorFirstName}: note: see you", "'body' is unquoted text with \": \" in it"),
        ("{VisitorFirstName}, hi", "'body' is unquoted text with '{' at its start"),
    ],
)
def test_yaml_syntax_error_suggests_quoting(tmp_path: Path, body: str, hint: str) -> None:
    """A syntax error caused by an unquoted text says to put that text in double quotes."""
    path = tmp_path / "q.yaml"
    path.write_text(f"name: q\nkind: smart_drip\nsteps:\n  - day: 1\n    body: {body}\n", "utf-8")
    (error,) = lint_paths([path]).errors
    assert "YAML syntax error" in error
    assert hint in error
    assert 'put it in double quotes: body: "..."' in error


def test_ucs2_size_advice_never_says_under_zero(tmp_path: Path) -> None:
    """A long UCS-2 text gets advice with a positive length, and the way back to GSM-7."""
    long_body = "Hi {VisitorFirstName}, it\u2019s {AgentFirstName} with {CompanyName}. " + (
        "We have new homes in your area this week, with prices that fit your plans. " * 2
    )
    path = campaign(tmp_path, sms(1, long_body))
    size = [w for w in lint_paths([path]).warnings if "segments with the footer" in w]
    assert len(size) == 1
    assert "under 0 chars" not in size[0]
    assert "replace the characters that force UCS-2" in size[0]
    room = re.findall(r"under (-?\d+)", size[0])
    assert room and all(int(n) > 0 for n in room)


def test_warnings_of_a_file_with_errors_are_shown_with_them(tmp_path: Path) -> None:
    """A file with an error still gets the warnings of the steps that could be read."""
    steps = (
        sms(0, CLEAN_BODY)
        + sms(5, "See http://example.com")
        + sms(-1, "Hi {Nope}, {AgentFirstName} here")
    )
    path = campaign(tmp_path, steps)
    report = lint_paths([path])
    assert report.campaigns == 0
    assert any("day must not be negative" in e for e in report.errors)
    assert any("unknown template variable {Nope}" in e for e in report.errors)
    assert any("http://example.com is a plain http:// link" in w for w in report.warnings)
    assert [severity for severity, _ in report.problems] == ["warning", "error", "error"]


def test_duplicate_names_are_found_in_files_with_other_errors(tmp_path: Path) -> None:
    """A name clash shows with the files' other errors; the file that loads keeps its name."""
    broken = campaign(tmp_path, sms(-1, CLEAN_BODY), name="a.yaml")
    good = campaign(tmp_path, sms(0, CLEAN_BODY), name="b.yaml")
    for path in (broken, good):
        path.write_text(path.read_text().replace(f"name: {path.stem}", "name: same"), "utf-8")
    report = lint_paths([tmp_path])
    assert report.campaigns == 1
    assert report.errors == [
        f"{broken}:1:7: error: duplicate campaign name 'same': {good} already defines it; "
        "campaign names must be unique",
        f"{broken}:4:8: error: step 1: day must not be negative, got -1",
    ]


@pytest.mark.parametrize(
    ("step", "words"),
    [
        ("- day: 10:30\n  body: Hi\n", "step 1: day must be a whole number, got a time 10:30"),
        (
            "- day: 1\n  body: no\n",
            'body must be text, got a boolean no; put it in double quotes: "no"',
        ),
        (
            '- day: 1\n  body: "Hi" said Sam\n',
            "'body' goes on after its closing quote; put the whole text in double quotes",
        ),
        ("- day: 1\n   body: Hi\n", "check the indentation of this line and of the line before it"),
        ("- day: 1\n  body: #1 agent\n", "got null; the '#' after it starts a YAML comment"),
    ],
)
def test_type_and_syntax_errors_say_how_to_mend_them(tmp_path: Path, step: str, words: str) -> None:
    """Each error names the mend: quotes for texts YAML reads otherwise, indentation, no base 60."""
    (error,) = lint_paths([campaign(tmp_path, step)]).errors
    assert words in error


def test_a_comment_cutting_an_unquoted_text_is_a_warning(tmp_path: Path) -> None:
    """`` #`` in an unquoted text starts a comment: the warning points at it and says to quote."""
    path = campaign(tmp_path, "- day: 1\n  body: Hi {AgentFirstName}, your #1 agent\n")
    assert lint_paths([path]).warnings == [
        f"{path}:5:35: warning: step 1 body: the text stops before this '#', which starts a YAML "
        'comment when the text is not quoted; put the whole text in double quotes: "..."'
    ]
