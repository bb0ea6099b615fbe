"""Campaign YAML loading: values, and every error located at its line and column (SPEC §5)."""

from __future__ import annotations

import re
import textwrap
from datetime import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drip.campaigns.links import find_links, link_shorteners, shortener_of
from drip.campaigns.loader import load_campaign, load_campaigns
from drip.domain.enums import CampaignKind, Channel, OptOutMode, SenderRole
from drip.errors import CampaignError

ROOT = Path(__file__).resolve().parents[2]
LOCATED_ERROR = re.compile(r"^.+:\d+:\d+: error: ")

VALID = """\
name: test-campaign
kind: smart_drip
steps:
  - day: 0
    body: "Hi {VisitorFirstName}, it's {AgentFirstName} with {CompanyName}."
  - day: 3
    channel: email
    subject: "Homes you may like"
    body: "Hi {VisitorFirstName}"
"""


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    """The located problems of a campaign file that must fail to load."""
    path = write(tmp_path, text)
    with pytest.raises(CampaignError) as info:
        load_campaign(path)
    return info.value.problems


def one(tmp_path: Path, text: str) -> tuple[int, int, str]:
    """The single problem of a file as (line, column, message)."""
    found = problems(tmp_path, text)
    assert len(found) == 1, found
    m = re.match(r"^(.+):(\d+):(\d+): error: (.*)$", found[0], re.DOTALL)
    assert m is not None, found[0]
    assert m.group(1) == str(tmp_path / "c.yaml")
    return int(m.group(2)), int(m.group(3)), m.group(4)


# -- what a good file gives ---------------------------------------------------


def test_valid_campaign_loads_with_defaults(tmp_path: Path) -> None:
    """A minimal valid file gives a Campaign with SPEC defaults and 1-based default ids."""
    path = write(tmp_path, VALID)
    campaign = load_campaign(path)
    assert campaign.name == "test-campaign"
    assert campaign.kind is CampaignKind.SMART_DRIP
    assert campaign.sender is SenderRole.AGENT
    assert campaign.stop_on_reply is False
    assert campaign.send_window is None
    assert campaign.opt_out.interval_days == 30
    assert campaign.source == str(path)
    first, second = campaign.steps
    assert (first.id, first.position, first.channel, first.opt_out) == (
        "1",
        1,
        Channel.SMS,
        OptOutMode.RULES,
    )
    assert (second.id, second.position, second.channel, second.subject) == (
        "2",
        2,
        Channel.EMAIL,
        "Homes you may like",
    )


def test_every_field_is_read(tmp_path: Path) -> None:
    """All optional fields of SPEC §5 reach the Campaign value."""
    path = write(
        tmp_path,
        """\
        name: full
        kind: concierge
        sender: concierge
        stop_on_reply: true
        send_window: {start: "09:00", end: "19:30"}
        opt_out:
          interval_days: 14
          footer: "Reply STOP to opt out."
        steps:
          - id: greeting
            day: 0
            at: "10:30"
            opt_out: always
            body: "Hi from {CompanyName}"
          - id: 7
            day: 2
            at: 11:15
            body: "Again"
        """,
    )
    campaign = load_campaign(path)
    assert campaign.sender is SenderRole.CONCIERGE
    assert campaign.stop_on_reply is True
    assert campaign.send_window is not None
    assert (campaign.send_window.start, campaign.send_window.end) == (time(9), time(19, 30))
    assert (campaign.opt_out.interval_days, campaign.opt_out.footer) == (
        14,
        "Reply STOP to opt out.",
    )
    greeting, second = campaign.steps
    assert (greeting.id, greeting.at, greeting.opt_out) == ("greeting", time(10, 30), "always")
    assert (second.id, second.at) == ("7", time(11, 15))  # unquoted 11:15 and an int id


# -- one test per error kind, at its exact line and column ----------------------


def test_yaml_syntax_error_uses_the_parser_position(tmp_path: Path) -> None:
    """A syntax error is reported at the parser's problem mark."""
    line, col, message = one(tmp_path, "name: x\nkind: smart_drip\nsteps: [\n  - day: 1\n")
    assert (line, col) == (4, 3)
    assert message.startswith("YAML syntax error:")


def test_bad_indentation_is_a_syntax_error(tmp_path: Path) -> None:
    """A mapping value where none is allowed is located on its line."""
    line, col, message = one(tmp_path, "name: x\n  kind: smart_drip\n")
    assert (line, col) == (2, 7)
    assert "YAML syntax error" in message


def test_empty_file(tmp_path: Path) -> None:
    """An empty file is an error at 1:1."""
    assert one(tmp_path, "# nothing\n")[:2] == (1, 1)


def test_root_must_be_a_mapping(tmp_path: Path) -> None:
    """A list at the top is reported where it starts."""
    line, col, message = one(tmp_path, "- day: 1\n")
    assert (line, col) == (1, 1)
    assert "must be a mapping" in message


def test_duplicate_key(tmp_path: Path) -> None:
    """A key given twice is an error at the second one, naming the first line."""
    line, col, message = one(
        tmp_path, VALID.replace("kind: smart_drip\n", "kind: smart_drip\nname: again\n")
    )
    assert (line, col) == (3, 1)
    assert message == "the campaign: duplicate key 'name' (first given on line 1)"


def test_duplicate_key_in_a_step(tmp_path: Path) -> None:
    """Duplicate keys are found inside steps too."""
    text = VALID.replace("  - day: 0\n", "  - day: 0\n    day: 1\n")
    line, col, message = one(tmp_path, text)
    assert (line, col) == (5, 5)
    assert "duplicate key 'day'" in message


def test_non_string_key(tmp_path: Path) -> None:
    """A number as a key is reported at the key."""
    line, col, message = one(tmp_path, VALID + "3: x\n")
    assert (line, col) == (10, 1)
    assert "a key must be a plain name, got a number 3" in message


def test_unknown_top_level_field_lists_the_allowed_ones(tmp_path: Path) -> None:
    """An unknown field is reported at its key with the allowed fields and a suggestion."""
    line, col, message = one(tmp_path, VALID.replace("kind:", "knd: smart_drip\nkind:"))
    assert (line, col) == (2, 1)
    assert message == (
        "unknown field 'knd' in the campaign; did you mean 'kind'? allowed: "
        "name, kind, sender, stop_on_reply, on_reply, resume_after, send_window, opt_out, steps, "
        "triggers, exit, group, priority, reenroll"
    )


def test_unknown_step_field(tmp_path: Path) -> None:
    """An unknown step field is reported at its key with the step's allowed fields."""
    text = VALID.replace(
        '    body: "Hi {VisitorFirstName}, it', '    delay: 2\n    body: "Hi {VisitorFirstName}, it'
    )
    line, col, message = one(tmp_path, text)
    assert (line, col) == (5, 5)
    assert message.startswith("unknown field 'delay' in step 1;")
    assert message.endswith("allowed: id, day, at, channel, subject, body, opt_out, expires_after")


def test_missing_required_top_level_field(tmp_path: Path) -> None:
    """A missing name is reported at the start of the campaign mapping."""
    line, col, message = one(tmp_path, VALID.replace("name: test-campaign\n", ""))
    assert (line, col) == (1, 1)
    assert message == "missing required field 'name' in the campaign"


@pytest.mark.parametrize("field", ["day", "body"])
def test_missing_required_step_field(tmp_path: Path, field: str) -> None:
    """A step without day or body is reported at the start of the step."""
    text = """\
    name: x
    kind: smart_drip
    steps:
      - channel: sms
        day: 1
        body: hi
    """.replace(f"    {field}:", "    x_" + field + ":")
    found = problems(tmp_path, text)
    assert f"{tmp_path / 'c.yaml'}:4:5: error: missing required field {field!r} in step 1" in found


def test_required_field_given_as_null(tmp_path: Path) -> None:
    """``name:`` with no value is a wrong type at the value."""
    line, col, message = one(tmp_path, VALID.replace("name: test-campaign", "name:"))
    assert (line, col) == (1, 6)
    assert message == "the campaign: name must be given, got null"


def test_day_as_quoted_string_is_a_wrong_type(tmp_path: Path) -> None:
    """A quoted number where a whole number is needed is reported at the value."""
    line, col, message = one(tmp_path, VALID.replace("day: 0", 'day: "15"'))
    assert (line, col) == (4, 10)
    assert message == 'step 1: day must be a whole number, got a text "15"'


def test_day_as_boolean_is_a_wrong_type(tmp_path: Path) -> None:
    """A YAML boolean is not a day, even though Python's bool is an int."""
    line, col, message = one(tmp_path, VALID.replace("day: 3", "day: yes"))
    assert (line, col) == (6, 10)
    assert message == "step 2: day must be a whole number, got a boolean yes"


def test_negative_day(tmp_path: Path) -> None:
    """A negative day is reported at the value."""
    line, col, message = one(tmp_path, VALID.replace("day: 3", "day: -3"))
    assert (line, col) == (6, 10)
    assert message == "step 2: day must not be negative, got -3"


def test_non_integer_day(tmp_path: Path) -> None:
    """A decimal day is reported at the value."""
    line, col, message = one(tmp_path, VALID.replace("day: 3", "day: 1.5"))
    assert (line, col) == (6, 10)
    assert message == "step 2: day must be a whole number, got a decimal number 1.5"


def test_day_too_far_ahead(tmp_path: Path) -> None:
    """A day more than ten years out is refused."""
    line, col, message = one(tmp_path, VALID.replace("day: 3", "day: 99999"))
    assert (line, col) == (6, 10)
    assert message == "step 2: day must be at most 3650, got 99999"


@pytest.mark.parametrize("value", ['"25:61"', '"24:00"', '"12:60"'])
def test_bad_at_time(tmp_path: Path, value: str) -> None:
    """An impossible time of day is reported at the value."""
    line, col, message = one(
        tmp_path, VALID.replace("  - day: 0\n", f"  - day: 0\n    at: {value}\n")
    )
    assert (line, col) == (5, 9)
    assert message == f"step 1: at {value} is not a time of day (00:00 to 23:59)"


@pytest.mark.parametrize(
    ("value", "shown"), [('"noon"', 'a text "noon"'), ("1030", "a number 1030")]
)
def test_at_that_is_not_a_time(tmp_path: Path, value: str, shown: str) -> None:
    """A value that is not HH:MM is reported with what was written."""
    line, col, message = one(
        tmp_path, VALID.replace("  - day: 0\n", f"  - day: 0\n    at: {value}\n")
    )
    assert (line, col) == (5, 9)
    assert message == f'step 1: at must be a time "HH:MM", got {shown}'


def test_send_window_bad_time(tmp_path: Path) -> None:
    """A bad send_window time is reported at that time."""
    text = VALID.replace("steps:", 'send_window: {start: "8am", end: "21:00"}\nsteps:')
    line, col, message = one(tmp_path, text)
    assert (line, col) == (3, 22)
    assert message == 'send_window start must be a time "HH:MM", got a text "8am"'


def test_send_window_end_not_after_start(tmp_path: Path) -> None:
    """An end before (or at) the start is reported at the end."""
    text = VALID.replace("steps:", 'send_window:\n  start: "21:00"\n  end: "08:00"\nsteps:')
    line, col, message = one(tmp_path, text)
    assert (line, col) == (5, 8)
    assert message == "send_window end 08:00 must be after its start 21:00"


def test_send_window_missing_end(tmp_path: Path) -> None:
    """A window needs both ends."""
    text = VALID.replace("steps:", 'send_window: {start: "08:00"}\nsteps:')
    line, col, message = one(tmp_path, text)
    assert (line, col) == (3, 14)
    assert message == "missing required field 'end' in send_window"


def test_unknown_template_variable_in_body_points_at_the_brace(tmp_path: Path) -> None:
    """The column is the one of the unknown variable's opening brace."""
    line, col, message = one(tmp_path, VALID.replace("it's {AgentFirstName}", "it's {AgentName}"))
    assert (line, col) == (5, 40)
    assert message.startswith("step 1 body: unknown template variable {AgentName}; ")


def test_unknown_template_variable_in_subject(tmp_path: Path) -> None:
    """Subjects are templates too."""
    line, col, message = one(
        tmp_path, VALID.replace('"Homes you may like"', "Homes for {FirstName}")
    )
    assert (line, col) == (8, 24)
    assert message.startswith("step 2 subject: unknown template variable {FirstName}")


def test_unknown_template_variable_in_a_block_scalar(tmp_path: Path) -> None:
    """In a multi-line body the variable is found on its own line."""
    text = VALID.replace(
        '    body: "Hi {VisitorFirstName}"\n',
        "    body: |\n      Hello,\n\n      see you {Tomorow}\n",
    )
    line, col, message = one(tmp_path, text)
    assert (line, col) == (12, 15)
    assert "{Tomorow}" in message


def test_double_braces_are_an_error(tmp_path: Path) -> None:
    """{{CompanyName}} would render with braces around the name."""
    line, col, message = one(tmp_path, VALID.replace("with {CompanyName}", "with {{CompanyName}}"))
    assert (line, col) == (5, 62)
    assert "double braces" in message


def test_email_step_without_subject(tmp_path: Path) -> None:
    """An email step without a subject is reported at the step."""
    line, col, message = one(tmp_path, VALID.replace('    subject: "Homes you may like"\n', ""))
    assert (line, col) == (6, 5)
    assert message == "step 2: an email step needs a subject"


def test_sms_step_with_subject(tmp_path: Path) -> None:
    """A subject on an SMS step is reported at the subject key."""
    line, col, message = one(
        tmp_path, VALID.replace("  - day: 0\n", "  - day: 0\n    subject: Hi\n")
    )
    assert (line, col) == (5, 5)
    assert message == ("step 1: an sms step has no subject (for an email step add channel: email)")


def test_duplicate_step_ids(tmp_path: Path) -> None:
    """The second step with an id already used is reported at its id."""
    text = VALID.replace("  - day: 0\n", "  - id: hello\n    day: 0\n").replace(
        "  - day: 3\n", "  - id: hello\n    day: 3\n"
    )
    line, col, message = one(tmp_path, text)
    assert (line, col) == (7, 9)
    assert message == "step 2: duplicate step id 'hello'; step 1 on line 4 has it too"


def test_explicit_id_clashing_with_a_default_position(tmp_path: Path) -> None:
    """A step without id is its position, which an explicit id may already hold."""
    text = VALID.replace("  - day: 0\n", "  - id: 2\n    day: 0\n")
    line, col, message = one(tmp_path, text)
    assert (line, col) == (7, 5)
    assert "duplicate step id '2' (a step without id has its position 2)" in message


def test_step_opt_out_must_be_always_or_rules(tmp_path: Path) -> None:
    """opt_out on a step accepts only always or rules."""
    line, col, message = one(
        tmp_path, VALID.replace("  - day: 0\n", "  - day: 0\n    opt_out: never\n")
    )
    assert (line, col) == (5, 14)
    assert message == "step 1: opt_out must be one of rules | always, got 'never'"


@pytest.mark.parametrize(
    ("old", "new", "where", "message"),
    [
        (
            "kind: smart_drip",
            "kind: drip",
            (2, 7),
            "kind must be one of smart_drip | concierge | nurture, got 'drip'",
        ),
        (
            "kind: smart_drip",
            "kind: smart_drip\nsender: robot",
            (3, 9),
            "sender must be one of agent | concierge, got 'robot'",
        ),
        (
            "channel: email",
            "channel: fax",
            (7, 14),
            "step 2: channel must be one of sms | email, got 'fax'",
        ),
    ],
)
def test_values_outside_the_allowed_sets(
    tmp_path: Path, old: str, new: str, where: tuple[int, int], message: str
) -> None:
    """kind, sender and channel accept only their SPEC values."""
    line, col, got = one(tmp_path, VALID.replace(old, new))
    assert (line, col) == where
    assert got == message


@pytest.mark.parametrize(
    ("link", "domain"),
    [
        ("bit.ly/3xYz", "bit.ly"),
        ("https://bit.ly/3xYz", "bit.ly"),
        ("HTTP://WWW.BIT.LY/abc", "bit.ly"),
        ("tinyurl.com/abc", "tinyurl.com"),
        ("https://t.co/x", "t.co"),
        ("goo.gl/maps/x", "goo.gl"),
        ("ow.ly/x", "ow.ly"),
        ("is.gd/x", "is.gd"),
        ("buff.ly/x", "buff.ly"),
        ("rebrand.ly/x", "rebrand.ly"),
        ("cutt.ly/x", "cutt.ly"),
        ("shorturl.at/x", "shorturl.at"),
    ],
)
def test_link_through_a_shortener(tmp_path: Path, link: str, domain: str) -> None:
    """A shortened link, with or without scheme and in any case, is an error at the link."""
    text = VALID.replace("with {CompanyName}.", f"with {{CompanyName}}. See {link} today")
    line, col, message = one(tmp_path, text)
    assert (line, col) == (5, 81)
    assert message.startswith(f"step 1 body: {link} goes through the link shortener {domain};")


@pytest.mark.parametrize(
    "text",
    [
        "https://www.acmerealty.com/listings",
        "acme.example.com/bit.ly",
        "notbit.ly/x",
        "write to dana@bit.ly",
        "bitly.example.com/x",
        "a.t.com",
    ],
)
def test_ordinary_links_are_not_shorteners(text: str) -> None:
    """Only a shortener's own host or its subdomains count."""
    assert all(shortener_of(link.host) is None for link in find_links(text))


def test_shortener_list_is_data() -> None:
    """The shortener list comes from drip/data and holds the SPEC's examples."""
    assert {"bit.ly", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "buff.ly"} <= (
        link_shorteners()
    )
    assert shortener_of("www.Bit.Ly") == "bit.ly"


def test_empty_steps_list(tmp_path: Path) -> None:
    """steps: [] is an error at the list."""
    line, col, message = one(tmp_path, "name: x\nkind: nurture\nsteps: []\n")
    assert (line, col) == (3, 8)
    assert message == "steps must list at least one step"


def test_steps_not_a_list(tmp_path: Path) -> None:
    """A mapping where the step list belongs is reported."""
    line, col, message = one(tmp_path, "name: x\nkind: nurture\nsteps:\n  day: 1\n")
    assert (line, col) == (4, 3)
    assert message == "steps must be a list, got a mapping"


def test_step_not_a_mapping(tmp_path: Path) -> None:
    """A step that is a plain text is reported where it is written."""
    line, col, message = one(tmp_path, "name: x\nkind: nurture\nsteps:\n  - hello\n")
    assert (line, col) == (4, 5)
    assert message == 'step 1 must be a mapping (key: value lines), got a text "hello"'


def test_stop_on_reply_must_be_a_boolean(tmp_path: Path) -> None:
    """A quoted "true" is text, not a boolean."""
    line, col, message = one(tmp_path, VALID.replace("steps:", 'stop_on_reply: "true"\nsteps:'))
    assert (line, col) == (3, 16)
    assert message == 'stop_on_reply must be true or false, got a text "true"'


def test_opt_out_interval_must_be_at_least_one(tmp_path: Path) -> None:
    """opt_out.interval_days 0 is refused at the value."""
    line, col, message = one(
        tmp_path, VALID.replace("steps:", "opt_out:\n  interval_days: 0\nsteps:")
    )
    assert (line, col) == (4, 18)
    assert message == "opt_out.interval_days must not be less than 1, got 0"


def test_footer_override_must_say_how_to_opt_out(tmp_path: Path) -> None:
    """A campaign footer that names no opt-out keyword is refused."""
    line, col, message = one(
        tmp_path, VALID.replace("steps:", "opt_out:\n  footer: Thanks!\nsteps:")
    )
    assert (line, col) == (4, 11)
    assert message.startswith("opt_out.footer must tell how to opt out")


def test_campaign_opt_out_given_as_a_step_value(tmp_path: Path) -> None:
    """opt_out: always at the campaign level belongs on a step."""
    line, col, message = one(tmp_path, VALID.replace("steps:", "opt_out: always\nsteps:"))
    assert (line, col) == (3, 10)
    assert "belongs on a step" in message


def test_unreadable_path(tmp_path: Path) -> None:
    """A file that does not exist is a located error too."""
    with pytest.raises(CampaignError) as info:
        load_campaign(tmp_path / "missing.yaml")
    assert len(info.value.problems) == 1
    assert LOCATED_ERROR.match(info.value.problems[0])


def test_not_utf8(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are reported on their line."""
    path = tmp_path / "c.yaml"
    path.write_bytes(b"name: x\nkind: caf\xe9\n")
    with pytest.raises(CampaignError) as info:
        load_campaign(path)
    assert info.value.problems == [f"{path}:2:10: error: the file is not UTF-8 text (byte 0xe9)"]


# -- all problems, and whole files ---------------------------------------------


def test_five_errors_are_all_reported_in_file_order(tmp_path: Path) -> None:
    """Every problem of a file is reported, sorted by position, not only the first."""
    text = """\
    name: five
    kind: drip
    steps:
      - day: -1
        body: "Hi {Visitor}"
      - day: 2
        at: "25:00"
        channel: email
        body: "See you"
    """
    found = problems(tmp_path, text)
    path = tmp_path / "c.yaml"
    assert [p.split(" error: ")[0] for p in found] == [
        f"{path}:2:7:",
        f"{path}:4:10:",
        f"{path}:5:15:",
        f"{path}:6:5:",
        f"{path}:7:9:",
    ]
    assert "an email step needs a subject" in found[3]


def test_bad_file_next_to_good_ones(tmp_path: Path) -> None:
    """A bad file loads nothing; the good files in the same folder still load."""
    write(tmp_path, VALID.replace("test-campaign", "good-one"), "a.yaml")
    write(tmp_path, VALID.replace("test-campaign", "bad-one").replace("day: 3", "day: x"), "b.yaml")
    write(tmp_path, VALID.replace("test-campaign", "good-two"), "c.yml")
    (tmp_path / "notes.txt").write_text("not a campaign")
    result = load_campaigns(tmp_path)
    assert sorted(result.campaigns) == ["good-one", "good-two"]
    assert result.errors == [
        f'{tmp_path / "b.yaml"}:6:10: error: step 2: day must be a whole number, got a text "x"'
    ]
    assert [p.name for p in result.paths] == ["a.yaml", "b.yaml", "c.yml"]
    assert not result.ok


def test_duplicate_campaign_name_across_files(tmp_path: Path) -> None:
    """The second file defining a name is in error at its name: value and loads nothing."""
    first = write(tmp_path, VALID, "a.yaml")
    second = write(tmp_path, "# same name\n" + VALID, "b.yaml")
    result = load_campaigns([first, second])
    assert list(result.campaigns) == ["test-campaign"]
    assert result.campaigns["test-campaign"].source == str(first)
    assert len(result.errors) == 1
    assert result.errors[0].startswith(
        f"{second}:2:7: error: duplicate campaign name 'test-campaign': {first} already defines it"
    )


def test_account_file_is_not_a_campaign(tmp_path: Path) -> None:
    """account.yaml in a folder is set aside for the account loader."""
    write(tmp_path, VALID, "a.yaml")
    write(tmp_path, "company: Acme Realty\n", "account.yaml")
    result = load_campaigns(tmp_path)
    assert result.ok
    assert list(result.campaigns) == ["test-campaign"]
    assert [p.name for p in result.account_files] == ["account.yaml"]


def test_missing_path_is_a_located_error(tmp_path: Path) -> None:
    """A path that does not exist is reported in the located format."""
    result = load_campaigns([tmp_path / "nope.yaml"])
    assert result.errors == [f"{tmp_path / 'nope.yaml'}:1:1: error: no such file or folder"]


def test_empty_folder_is_a_warning(tmp_path: Path) -> None:
    """A folder without campaign files loads nothing and says so."""
    result = load_campaigns(tmp_path)
    assert result.ok
    assert result.campaigns == {}
    assert result.warnings == [f"{tmp_path}:1:1: warning: no campaign files (*.yaml) here"]


def test_same_file_named_twice_is_read_once(tmp_path: Path) -> None:
    """A file given directly and through its folder is one file, not a duplicate name."""
    path = write(tmp_path, VALID)
    result = load_campaigns([path, tmp_path])
    assert result.ok
    assert result.paths == [path]


def test_bundled_campaigns_load() -> None:
    """The campaigns shipped in campaigns/ all load, with the Smart-Drip days of SPEC §2."""
    result = load_campaigns(ROOT / "campaigns")
    assert result.errors == []
    assert set(result.campaigns) == {
        "smart-drip-new-lead",
        "concierge-buyer",
        "concierge-seller",
        "concierge-default",
        "new-lead-nurture",
        "new-lead-online",
        "new-lead-open-house",
        "revive-archived",
        "property-view-follow-up",
    }
    drip = result.campaigns["smart-drip-new-lead"]
    assert [s.day for s in drip.steps] == [15, 45, 180, 270, 360]
    assert all(s.id != str(s.position) for s in drip.steps)  # stable ids given
    for name in ("concierge-buyer", "concierge-seller", "concierge-default"):
        campaign = result.campaigns[name]
        assert campaign.sender is SenderRole.CONCIERGE
        assert campaign.stop_on_reply is True
        assert campaign.steps[0].day == 0
        assert campaign.steps[0].opt_out is OptOutMode.ALWAYS
        assert campaign.steps[-1].day == 90
    nurture = result.campaigns["new-lead-nurture"]
    assert {s.channel for s in nurture.steps} == {Channel.SMS, Channel.EMAIL}
    assert max(s.day for s in nurture.steps) == 60


# -- the loader never crashes --------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["08:00", "25:61", "10:30", "sms", "email", "always", "bit.ly/x", "{Foo}"])
)
KEYS = st.sampled_from(
    [
        "name",
        "kind",
        "sender",
        "steps",
        "day",
        "body",
        "subject",
        "channel",
        "at",
        "id",
        "opt_out",
        "send_window",
        "start",
        "end",
        "footer",
        "interval_days",
        "stop_on_reply",
    ]
) | st.text(max_size=8)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(KEYS | st.integers(), children, max_size=5)
    ),
    max_leaves=20,
)


def assert_loads_or_located(path: Path) -> None:
    """The file loads, or fails with at least one problem, every one located."""
    found: list[str] | None = None
    try:
        load_campaign(path)
    except CampaignError as exc:
        found = exc.problems
    if found is not None:
        assert found
        assert all(LOCATED_ERROR.match(problem) for problem in found), found


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=DOCUMENTS)
def test_arbitrary_yaml_never_crashes_the_loader(tmp_path: Path, document: Any) -> None:
    """Any YAML document loads or fails with located errors, never an exception of another kind."""
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    assert_loads_or_located(path)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_valid_campaigns_never_crash_the_loader(
    tmp_path: Path, data: st.DataObject
) -> None:
    """Dropping or replacing any field of a valid campaign loads or fails with located errors."""
    document = yaml.safe_load(VALID)
    target = data.draw(st.sampled_from(["top", "step0", "step1"]))
    mapping = document if target == "top" else document["steps"][int(target[-1])]
    key = data.draw(st.sampled_from(sorted(mapping)))
    if data.draw(st.booleans()):
        del mapping[key]
    else:
        mapping[key] = data.draw(DOCUMENTS)
    path = tmp_path / "mutated.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    assert_loads_or_located(path)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(alphabet=st.sampled_from(list("ab:-[]{}\n '\"#&*!|>%@`?,\t")), max_size=40))
def test_arbitrary_text_never_crashes_the_loader(tmp_path: Path, text: str) -> None:
    """Even text that is not YAML at all fails with located errors only."""
    path = tmp_path / "text.yaml"
    path.write_text(text, encoding="utf-8")
    assert_loads_or_located(path)
