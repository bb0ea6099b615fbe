"""``campaigns/account.yaml``: the account's texts, defaults and state rules.

Every field is optional; a field left out keeps the default of
``AccountSettings`` and a missing file gives ``AccountSettings()``. Problems
are reported like the campaign loader's, ``path:line:col: error: message``,
all of them, and a file with any error raises ``CampaignError``.

The compliance texts are checked against what carriers (CTIA) ask of them:

- ``opt_in_confirmation``: names the program (``{CompanyName}`` or the
  company's name), says the message frequency varies ("frequency"),
  "Msg & data rates may apply", and gives HELP and STOP instructions.
- ``help_reply``: names the program, says how to reach support
  (``{SupportPhone}``, ``{SupportEmail}``, or a phone number or email address
  written out), STOP instructions and "Msg & data rates may apply".
- ``opt_out_confirmation``: says the contact is unsubscribed, tells how to
  resubscribe (START), and carries no marketing: no link.
- ``resubscribe_confirmation``: names the program, HELP and STOP.
- ``footer``: tells how to opt out (a STOP-family keyword of SPEC §3,
  e.g. "reply end").

Keywords (HELP, STOP, START) must be written in capitals, the way carriers
look for them; "Message and data rates may apply" is accepted for the
rates phrase. Account texts may use the campaign variables plus
``{SupportPhone}`` and ``{SupportEmail}``.

``default_agent`` is ``{first_name, last_name, phone}`` (E.164 phone), the
agent who sends for contacts without one.

``state_rules`` is a list of ``{state, window: {start, end}, max_per_24h}``;
a rule for a state replaces that state's default rule entirely (no
``max_per_24h`` means no cap), and rules for other states are added.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pendulum
import yaml

from drip.campaigns.loader import find_links, mentions_opt_out, shortener_of
from drip.campaigns.yamlsource import Field, Position, YamlSource, is_null
from drip.domain.account import AccountSettings, AgentProfile
from drip.domain.message import ACCOUNT_TEMPLATE_VARIABLES, TEMPLATE_VARIABLES, template_problems
from drip.domain.window import DEFAULT_STATE_RULES, SendWindow, StateRule
from drip.errors import CampaignError

#: Every field of ``AccountSettings``, in the order the bundled account.yaml uses.
ACCOUNT_FIELDS = (
    "company",
    "default_timezone",
    "send_window",
    "footer",
    "opt_in_confirmation",
    "help_reply",
    "opt_out_confirmation",
    "resubscribe_confirmation",
    "twilio_sends_opt_out_confirmation",
    "support_phone",
    "support_email",
    "concierge_phone",
    "default_agent",
    "state_rules",
)
AGENT_FIELDS = ("first_name", "last_name", "phone")
STATE_RULE_FIELDS = ("state", "window", "max_per_24h")
WINDOW_FIELDS = ("start", "end")
COMPLIANCE_TEXTS = (
    "opt_in_confirmation",
    "help_reply",
    "opt_out_confirmation",
    "resubscribe_confirmation",
)

_RATES = re.compile(r"\b(msg|message)s?\s*(&|and)\s*data\s+rates\s+may\s+apply", re.IGNORECASE)
_PHONE = re.compile(r"\+?\d[\d\s().\-]{6,}\d")
_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(\.[\w\-]+)+")
# The part after the "@": matched only where an "@" is (see _has_email).
_EMAIL_DOMAIN = re.compile(r"[\w\-]+(\.[\w\-]+)+")
_LOCAL_CHAR = re.compile(r"[\w.+\-]")


def _has_email(text: str) -> bool:
    """Whether ``text`` contains an address, in time linear in its length.

    ``_EMAIL.search`` retries its greedy local part from every position, which
    is quadratic on a long text without an address (100,000 characters of
    help text took 17 s); here each "@" is looked at once.
    """
    at = text.find("@")
    while at != -1:
        if at > 0 and _LOCAL_CHAR.match(text, at - 1) and _EMAIL_DOMAIN.match(text, at + 1):
            return True
        at = text.find("@", at + 1)
    return False


_E164 = re.compile(r"\+[1-9]\d{7,14}")


def _word(word: str) -> re.Pattern[str]:
    return re.compile(rf"\b{word}\b")


_HELP, _STOP, _START = _word("HELP"), _word("STOP"), re.compile(r"\b(START|UNSTOP)\b")


def names_program(text: str, company: str) -> bool:
    """Whether ``text`` names the program: ``{CompanyName}`` or the company, any case."""
    return "{CompanyName}" in text or (bool(company) and company.lower() in text.lower())


def compliance_problems(name: str, text: str, company: str) -> list[str]:
    """What the account text ``name`` lacks for carriers (see the module docstring)."""
    checks: list[tuple[bool, str]] = []
    program = (names_program(text, company), f"name the program ({{CompanyName}} or {company!r})")
    rates = (_RATES.search(text) is not None, 'say "Msg & data rates may apply"')
    help_ = (_HELP.search(text) is not None, 'give HELP instructions ("Reply HELP for help")')
    stop = (_STOP.search(text) is not None, 'give STOP instructions ("Reply STOP to opt out")')
    if name == "opt_in_confirmation":
        frequency = ("frequency" in text.lower(), 'say "Msg frequency varies"')
        checks = [program, frequency, rates, help_, stop]
    elif name == "help_reply":
        support = (
            "{SupportPhone}" in text
            or "{SupportEmail}" in text
            or _PHONE.search(text) is not None
            or _has_email(text),
            "say how to reach support ({SupportPhone}, {SupportEmail}, a phone or an email)",
        )
        checks = [program, support, stop, rates]
    elif name == "opt_out_confirmation":
        lowered = text.lower()
        checks = [
            (
                "unsubscribed" in lowered or "opted out" in lowered,
                'say the contact is unsubscribed ("You have been unsubscribed")',
            ),
            (
                _START.search(text) is not None,
                'say how to resubscribe ("Reply START to resubscribe")',
            ),
        ]
    elif name == "resubscribe_confirmation":
        checks = [program, help_, stop]
    elif name == "footer":
        checks = [(mentions_opt_out(text), 'tell how to opt out ("reply STOP" or "reply END")')]
    return [f"{name} must {need}" for ok, need in checks if not ok]


def load_account(path: Path | str) -> AccountSettings:
    """The settings of ``path`` (a file, or a folder holding ``account.yaml``).

    A missing file gives the defaults; an invalid one raises ``CampaignError``
    with every located problem.
    """
    target = Path(path)
    if target.is_dir():
        target = target / "account.yaml"
    if not target.exists():
        return AccountSettings()
    source = YamlSource.read(target)
    settings = parse_account(source)
    if source.errors or settings is None:
        raise CampaignError(source.errors or [f"{source.label}:1:1: error: not account settings"])
    return settings


def parse_account(source: YamlSource) -> AccountSettings | None:
    """The settings of ``source``, or None; every problem is recorded on ``source``."""
    root = source.compose()
    if root is None:
        return None
    fields = source.mapping(root, "the account settings")
    if fields is None:
        return None
    before = source.error_count
    source.check_fields(fields, root, "the account settings", allowed=ACCOUNT_FIELDS)
    defaults = AccountSettings()
    values: dict[str, object] = {}

    def read(name: str, reader: Callable[[yaml.Node], object | None]) -> None:
        item = fields.get(name)
        if item is None or is_null(item.value):
            return
        value = reader(item.value)
        if value is not None:
            values[name] = value

    read("company", lambda n: _stripped(source.string(n, "company")))
    company = str(values.get("company", defaults.company))
    read("default_timezone", lambda n: _timezone(source, n))
    read("send_window", lambda n: _window(source, n, "send_window"))
    read("footer", lambda n: _text(source, n, "footer", company, TEMPLATE_VARIABLES))
    for name in COMPLIANCE_TEXTS:
        read(name, _text_reader(source, name, company))
    read(
        "twilio_sends_opt_out_confirmation",
        lambda n: source.boolean(n, "twilio_sends_opt_out_confirmation"),
    )
    read("support_phone", lambda n: _phone(source, n, "support_phone"))
    read("support_email", lambda n: _email(source, n, "support_email"))
    read("concierge_phone", lambda n: _phone(source, n, "concierge_phone"))
    read("default_agent", lambda n: _agent(source, n))
    read("state_rules", lambda n: _state_rules(source, n))

    if source.error_count > before:
        return None
    return AccountSettings(**values)  # type: ignore[arg-type]


def _text_reader(source: YamlSource, name: str, company: str) -> Callable[[yaml.Node], str | None]:
    return lambda node: _text(source, node, name, company)


def _stripped(value: str | None) -> str | None:
    return value.strip() if value is not None else None


def _timezone(source: YamlSource, node: yaml.Node) -> str | None:
    name = source.string(node, "default_timezone")
    if name is None:
        return None
    name = name.strip()
    try:
        pendulum.timezone(name)
    except Exception:  # pendulum raises several types for bad names
        source.error(
            node,
            f"default_timezone {name!r} is not a known time zone; "
            'use an IANA name such as "America/New_York"',
        )
        return None
    return name


def _window(source: YamlSource, node: yaml.Node, what: str) -> SendWindow | None:
    fields = source.mapping(node, what)
    if fields is None:
        return None
    if not source.check_fields(fields, node, what, allowed=WINDOW_FIELDS, required=WINDOW_FIELDS):
        return None
    start = source.time_of_day(fields["start"].value, f"{what} start")
    end = source.time_of_day(fields["end"].value, f"{what} end")
    if start is None or end is None:
        return None
    if end <= start:
        source.error(
            fields["end"].value, f"{what} end {end:%H:%M} must be after its start {start:%H:%M}"
        )
        return None
    return SendWindow(start, end)


def _text(
    source: YamlSource,
    node: yaml.Node,
    name: str,
    company: str,
    allowed: frozenset[str] = ACCOUNT_TEMPLATE_VARIABLES,
) -> str | None:
    text = source.string(node, name)
    if text is None:
        return None
    before = source.error_count
    for problem in template_problems(text, allowed):
        source.error(
            source.find(node, text, problem.offset, problem.token), f"{name}: {problem.message}"
        )
    for link in find_links(text):
        if name == "opt_out_confirmation":
            source.error(
                source.find(node, text, link.offset, link.text),
                f"opt_out_confirmation must carry no marketing: remove the link {link.text}",
            )
        elif (domain := shortener_of(link.host)) is not None:
            source.error(
                source.find(node, text, link.offset, link.text),
                f"{name}: {link.text} goes through the link shortener {domain}; carriers "
                "filter shortened links, so use the full address on your own domain",
            )
    for lack in compliance_problems(name, text, company):
        source.error(node, lack)
    return text.strip() if source.error_count == before else None


def _phone(source: YamlSource, node: yaml.Node, name: str) -> str | None:
    value = source.string(node, name)
    if value is None:
        return None
    if not _E164.fullmatch(value.strip()):
        source.error(node, f'{name} must be an E.164 phone number such as "+16175550100"')
        return None
    return value.strip()


def _email(source: YamlSource, node: yaml.Node, name: str) -> str | None:
    value = source.string(node, name)
    if value is None:
        return None
    if not _EMAIL.fullmatch(value.strip()):
        source.error(node, f"{name} must be an email address such as support@example.com")
        return None
    return value.strip()


def _agent(source: YamlSource, node: yaml.Node) -> AgentProfile | None:
    what = "default_agent"
    fields = source.mapping(node, what)
    if fields is None:
        return None
    if not source.check_fields(fields, node, what, allowed=AGENT_FIELDS, required=AGENT_FIELDS):
        return None
    first = _stripped(source.string(fields["first_name"].value, f"{what}: first_name"))
    last = _stripped(source.string(fields["last_name"].value, f"{what}: last_name"))
    phone = _phone(source, fields["phone"].value, f"{what}: phone")
    if first is None or last is None or phone is None:
        return None
    return AgentProfile(first_name=first, last_name=last, phone=phone)


def _state_rules(source: YamlSource, node: yaml.Node) -> tuple[StateRule, ...] | None:
    items = source.sequence(node, "state_rules")
    if items is None:
        return None
    given: dict[str, tuple[StateRule, Position]] = {}
    ok = True
    for index, item in enumerate(items, start=1):
        what = f"state rule {index}"
        fields = source.mapping(item, what)
        if fields is None:
            ok = False
            continue
        if not source.check_fields(
            fields, item, what, allowed=STATE_RULE_FIELDS, required=("state", "window")
        ):
            ok = False
            continue
        rule = _state_rule(source, fields, what)
        if rule is None:
            ok = False
            continue
        first = given.get(rule.state)
        if first is not None:
            source.error(
                fields["state"].value,
                f"{what}: {rule.state} already has a rule (line {first[1].line})",
            )
            ok = False
            continue
        given[rule.state] = (rule, source.at(fields["state"].value))
    if not ok:
        return None
    rules = {r.state: r for r in DEFAULT_STATE_RULES}
    rules.update({state: rule for state, (rule, _) in given.items()})
    return tuple(rules.values())


def _state_rule(source: YamlSource, fields: dict[str, Field], what: str) -> StateRule | None:
    state = source.string(fields["state"].value, f"{what}: state")
    if state is not None and not re.fullmatch(r"[A-Z]{2}", state.strip()):
        source.error(
            fields["state"].value,
            f"{what}: state must be a two-letter code in capitals such as FL, got {state!r}",
        )
        state = None
    window = _window(source, fields["window"].value, f"{what}: window")
    cap: int | None = None
    cap_ok = True
    if "max_per_24h" in fields and not is_null(fields["max_per_24h"].value):
        cap = source.integer(
            fields["max_per_24h"].value, f"{what}: max_per_24h", minimum=1, maximum=1000
        )
        cap_ok = cap is not None
    if state is None or window is None or not cap_ok:
        return None
    return StateRule(state.strip(), window, max_per_24h=cap)
