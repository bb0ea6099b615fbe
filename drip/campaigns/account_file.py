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
- ``footer``: tells how to opt out (a STOP-family keyword,
  e.g. "reply end").

Keywords (HELP, STOP, START) must be written in capitals, the way carriers
look for them; "Message and data rates may apply" is accepted for the
rates phrase. Account texts may use the campaign variables plus
``{SupportPhone}`` and ``{SupportEmail}``.

``default_agent`` is ``{first_name, last_name, phone}`` (E.164 phone), the
agent who sends for contacts without one.

``postal_address`` is the account's postal address, printed in every email
(CAN-SPAM); ``default_sender`` is the E.164 number compliance replies come
from when a contact has no agent and there is no ``default_agent``;
``keywords`` maps ``opt_out``, ``help`` and ``opt_in`` to lists of words the
account adds to those families (other languages; matched whole-message,
case- and accent-insensitive).

``state_rules`` extends the rule pack bundled with drip (``drip/rules/us.yaml``;
rows as ``drip.campaigns.rules_file`` reads them): a row for a state
replaces that state's bundled row entirely (no ``max_per_24h`` means no cap),
rows for other states are added, and ``{state: XX, enabled: false}`` turns a
bundled row off. ``blackouts`` lists closed date ranges per state.

``send_window`` (and every campaign's) must lie inside the federal quiet
hours of the rule pack, 08:00-21:00 (47 CFR 64.1200(c)(1)).

``senders`` sets each number's throughput: ``default`` is the
segments per second of any number not listed (when left out, the carrier's
rate of a US long code, 1, from ``drip/data/provider_facts.json``),
``numbers`` maps E.164 numbers to their own rate, ``daily_segments`` caps the
segments the brand sends in a day. Pacing is always on: without the section
every number sends 1 segment per second, as a US long code does.

``frequency_cap: {texts: N, days: D}`` holds campaign and bulk texts to at
most N per contact in any D days, across campaigns and senders
(``drip.campaigns.compliance_fields``; docs/compliance.md).

``retention: {message_bodies_days: N}`` is how long ``drip purge`` keeps
message bodies (default 1,461 days, the 4-year limitation period).

``reassigned_numbers: {enabled: false, max_age_days: 30, on_unknown: defer}``
turns on the reassigned-numbers check before campaign and bulk texts whose
consent (or last verification) is older than ``max_age_days``; ``on_unknown``
says what a text does when the check gets no answer (``defer`` or ``send``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from drip.campaigns.compliance_fields import frequency_cap, reassigned_numbers, retention
from drip.campaigns.links import find_links, mentions_opt_out, shortener_of
from drip.campaigns.rules_file import blackouts as read_blackouts
from drip.campaigns.rules_file import (
    looser_than,
    merge,
    send_window,
    state_rule_rows,
)
from drip.campaigns.webhooks_file import read_webhooks
from drip.campaigns.yamlsource import YamlSource, is_null
from drip.domain.account import AccountSettings, AgentProfile
from drip.domain.message import ACCOUNT_TEMPLATE_VARIABLES, TEMPLATE_VARIABLES, template_problems
from drip.domain.pacing import Senders
from drip.domain.window import SendWindow, StateRule
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
    "postal_address",
    "default_sender",
    "keywords",
    "blackouts",
    "senders",
    "frequency_cap",
    "reassigned_numbers",
    "webhooks",
    "reply_forwarding",
    "retention",
)
SENDERS_FIELDS = ("default", "numbers", "daily_segments")
AGENT_FIELDS = ("first_name", "last_name", "phone")
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

    def read(
        name: str, reader: Callable[[yaml.Node], object | None], key: str | None = None
    ) -> None:
        item = fields.get(key or name)
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
    _read_inbound_fields(source, read)
    read("blackouts", lambda n: read_blackouts(source, n))
    read("senders", lambda n: _senders(source, n))
    read("frequency_cap", lambda n: frequency_cap(source, n))
    read("reassigned_numbers", lambda n: reassigned_numbers(source, n))
    read("webhooks", lambda n: read_webhooks(source, n))
    read("reply_forwarding", lambda n: source.choice(n, "reply_forwarding", ("email",)))
    read("retention", lambda n: retention(source, n))

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
        # What pendulum.timezone accepts (its Timezone is a ZoneInfo, plus "utc" in
        # any case), without importing pendulum at start-up.
        if name.upper() != "UTC":
            ZoneInfo(name)
    except Exception:  # bad names raise several types
        source.error(
            node,
            f"default_timezone {name!r} is not a known time zone; "
            'use an IANA name such as "America/New_York"',
        )
        return None
    return name


def _window(source: YamlSource, node: yaml.Node, what: str) -> SendWindow | None:
    from drip.rules import bundled_pack  # package data, loaded and validated once

    return send_window(source, node, what, bundled_pack())


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
    from drip.rules import bundled_state_rules

    rows = state_rule_rows(source, node, require_source=False, allow_disable=True)
    if rows is None:
        return None
    bundled = {rule.state: rule for rule in bundled_state_rules()}
    for rule, where in zip(rows.rules, rows.where, strict=True):
        law = bundled.get(rule.state)
        looser = looser_than(rule, law) if law is not None else []
        if law is not None and looser:
            source.warning(
                where,
                f"state rule {rule.state} allows more than the bundled row ({law.cited}): "
                + "; ".join(looser),
            )
    return merge(bundled_state_rules(), rows)


# --- inbound, carrier and email fidelity (issue 11) ---

KEYWORD_FAMILIES = ("opt_out", "help", "opt_in")
MAX_POSTAL_ADDRESS = 300


def _read_inbound_fields(source: YamlSource, read: Callable[..., None]) -> None:
    read("postal_address", lambda n: _postal_address(source, n))
    read("default_sender", lambda n: _phone(source, n, "default_sender"))
    read("keywords", lambda n: _keywords(source, n))


def _postal_address(source: YamlSource, node: yaml.Node) -> str | None:
    value = source.string(node, "postal_address")
    if value is None:
        return None
    text = " ".join(value.split())
    if not text or len(text) > MAX_POSTAL_ADDRESS:
        source.error(
            node, f"postal_address must be a postal address of 1 to {MAX_POSTAL_ADDRESS} characters"
        )
        return None
    return text


def _keywords(source: YamlSource, node: yaml.Node) -> tuple[tuple[str, str], ...] | None:
    """``keywords: {opt_out: [...], help: [...], opt_in: [...]}`` as (word, family) pairs."""
    from drip.domain.keywords import KEYWORDS, keyword_key

    fields = source.mapping(node, "keywords")
    if fields is None:
        return None
    ok = source.check_fields(fields, node, "keywords", allowed=KEYWORD_FAMILIES)
    built_in = {keyword_key(k): v.value for k, v in KEYWORDS.items()}
    seen: dict[str, str] = {}
    pairs: list[tuple[str, str]] = []
    for family, item in fields.items():
        if family not in KEYWORD_FAMILIES or is_null(item.value):
            continue
        if not isinstance(item.value, yaml.SequenceNode):
            source.error(item.value, f"keywords: {family} must be a list of words")
            ok = False
            continue
        for word_node in item.value.value:
            word = source.string(word_node, f"keywords: {family}")
            if word is None:
                ok = False
                continue
            key = keyword_key(word)
            if not key or len(key) > 40:
                source.error(word_node, f"keywords: {family}: {word!r} is not a keyword")
                ok = False
                continue
            other = seen.get(key)
            if other is not None and other != family:
                source.error(word_node, f"keywords: {word!r} is in both {other} and {family}")
                ok = False
                continue
            clash = built_in.get(key)
            if clash is not None and clash != family:
                source.error(word_node, f"keywords: {word!r} is already a built-in {clash} keyword")
                ok = False
                continue
            seen[key] = family
            pairs.append((word.strip(), family))
    return tuple(pairs) if ok else None


# --- carrier pacing ---

#: Highest rate accepted for one number, segments per second (a short code does ~100).
MAX_RATE = 10_000


def _rate(source: YamlSource, node: yaml.Node, what: str) -> float | None:
    """A positive number of segments per second (a whole number or a decimal)."""
    raw = node.value if isinstance(node, yaml.ScalarNode) else None
    try:
        value = float(raw) if isinstance(raw, str) and node.tag.endswith(("int", "float")) else None
    except ValueError:
        value = None
    if value is None or not (0 < value <= MAX_RATE):
        source.error(node, f"{what} must be segments per second, a number in (0, {MAX_RATE}]")
        return None
    return value


def _senders(source: YamlSource, node: yaml.Node) -> Senders | None:
    what = "senders"
    fields = source.mapping(node, what)
    if fields is None:
        return None
    if not source.check_fields(fields, node, what, allowed=SENDERS_FIELDS):
        return None
    default = Senders().default_rate
    if "default" in fields:
        rate = _rate(source, fields["default"].value, "senders: default")
        if rate is None:
            return None
        default = rate
    rates: dict[str, float] = {}
    if "numbers" in fields:
        numbers = source.mapping(fields["numbers"].value, "senders: numbers")
        if numbers is None:
            return None
        for phone, item in numbers.items():
            if not _E164.fullmatch(phone):
                source.error(item.value, f'senders: {phone!r} is not an E.164 number ("+1...")')
                return None
            rate = _rate(source, item.value, f"senders: rate of {phone}")
            if rate is None:
                return None
            rates[phone] = rate
    cap: int | None = None
    if "daily_segments" in fields and not is_null(fields["daily_segments"].value):
        cap = source.integer(
            fields["daily_segments"].value,
            "senders: daily_segments",
            minimum=1,
            maximum=100_000_000,
        )
        if cap is None:
            return None
    return Senders(default_rate=default, rates=rates, daily_segments=cap)
