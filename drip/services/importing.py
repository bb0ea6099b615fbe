"""Contacts from untrusted fields (a web form, a CSV row) and the CSV import.

The consent rules are in docs/compliance.md#consent.

Two parts:

- :func:`parse_contact` and :func:`parse_consent_flag` turn text fields into a
  validated :class:`ContactInput` or raise :class:`FieldError` naming the
  field; the registration endpoint (``POST /contacts``) and the import share them.
- :func:`import_rows` imports a CSV file; :func:`send_confirmations` then schedules
  the opt-in confirmations of the contacts that newly gave consent.

Import semantics (``drip contacts import FILE.csv``):

- Columns (header names are case-insensitive; blanks and dashes count as
  ``_``): ``first_name, last_name, phone, email, state, timezone, agent_phone,
  sms_consent, consent_at, consent_source, consent_text``. ``first_name`` and
  one of ``phone``/``email`` are required columns; unknown columns are
  reported and ignored.
- Consent needs complete evidence: ``sms_consent`` true *and*
  ``consent_at`` *and* ``consent_text``. A row without it is still imported,
  as a contact that cannot be texted (it may get email), and counted as
  "without consent evidence". ``sms_consent`` reads true/yes/y/on/1/x and
  false/no/n/off/0/blank; anything else is a bad row. ``consent_at`` is ISO
  8601 (``2025-06-01T14:30:00-04:00``, ``2025-06-01 14:30``, ``2025-06-01``)
  or US style (``06/01/2025 14:30``); without an offset it is read in the
  row's ``timezone``, else the account's default zone. A consent time in the
  future is a bad row. ``consent_source`` is one of registration, import,
  api, manual (blank: import).
- A bad row (bad phone, unknown agent, bad value...) is reported with its
  line number in the file (the line where the row starts; the header is
  line 1) and the reason; the other rows are kept. Each row runs in its own
  savepoint, and rows are committed in batches of :data:`COMMIT_EVERY`, so a
  crash keeps what was committed and re-running the same file is harmless.
- A phone number already present updates that contact (also when it appears
  twice in the same file: the second row updates what the first created);
  a row without a phone updates the phone-less contact with the same email,
  if there is one. Consent is never removed by an import: a row without
  evidence leaves earlier consent as it is.
- Opt-in confirmations for contacts that had no consent before the import
  and have it now are scheduled after the import committed, one pending
  send per contact, due now and held to the send pipeline: the contact's
  send window and state rules, and the sender's pacing, so an import at
  night confirms in the morning and a large import goes at the senders'
  rate. Each outcome is recorded on the contact's timeline when it fires.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from drip.domain.enums import ConsentEventKind, ConsentSource
from drip.domain.zones import normalize_phone, normalize_state, validate_timezone
from drip.errors import DripError, NotFoundError, ValidationError
from drip.services.confirmations import schedule_confirmations
from drip.services.consent import ConsentEvidence, consent_on_record, record_consent
from drip.services.contacts import ContactInput, upsert_contact
from drip.services.deps import Deps
from drip.store import agents as store_agents
from drip.store import contact_import as store
from drip.store import contacts as store_contacts
from drip.store import repository as repo
from drip.store import suppression
from drip.store.models import Contact

log = structlog.get_logger("drip.import")

#: Rows committed together (one transaction per batch); each row that updates or
#: may fail also has its own savepoint. Each commit waits for the WAL flush: with
#: 500, a 20,000-row import spent about a third of its time committing.
COMMIT_EVERY: Final = 2000
#: Column lengths of ``contacts`` (checked here so a long value is a bad row, not a DB error).
MAX_NAME: Final = 100
MAX_EMAIL: Final = 254
MAX_CONSENT_TEXT: Final = 5000
#: A consent time this far in the future is tolerated (clock skew between systems).
FUTURE_SLACK: Final = timedelta(minutes=5)

COLUMNS: Final = (
    "first_name",
    "last_name",
    "phone",
    "email",
    "state",
    "timezone",
    "agent_phone",
    "sms_consent",
    "consent_at",
    "consent_source",
    "consent_text",
)
TRUE_WORDS: Final = frozenset({"true", "t", "yes", "y", "on", "1", "x", "checked"})
FALSE_WORDS: Final = frozenset({"", "false", "f", "no", "n", "off", "0", "unchecked"})


class FieldError(ValidationError):
    """One input field is not acceptable: ``field`` names it, ``reason`` says why."""

    def __init__(self, field_name: str, reason: str) -> None:
        self.field = field_name
        self.reason = reason
        super().__init__(f"{field_name}: {reason}")


# --------------------------------------------------------------------------- fields


#: Control characters other than tab, newline and carriage return.
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _text(fields: Mapping[str, str | None], name: str, max_len: int | None = None) -> str | None:
    """The stripped value of ``name`` (None when absent or blank); control characters refused."""
    raw = fields.get(name)
    if raw is None:
        return None
    value = raw.strip()
    if not value:
        return None
    if _CONTROL.search(value):
        raise FieldError(name, "contains control characters")
    if max_len is not None and len(value) > max_len:
        raise FieldError(name, f"is longer than {max_len} characters")
    return value


def parse_consent_flag(raw: str | None, field_name: str = "sms_consent") -> bool:
    """The consent checkbox: only true/yes/on/1 (and y, t, x, checked) is consent.

    Absent, blank, unchecked, false, no, off and 0 are no consent; any other
    value is a FieldError (a form or file that says something else is broken).
    """
    if raw is None:
        return False
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise FieldError(field_name, f"{raw[:40]!r} is not yes or no (true/false, on/off, 1/0)")


def _email(value: str | None) -> str | None:
    if value is None:
        return None
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain or any(ch.isspace() for ch in value):
        raise FieldError("email", f"{value[:60]!r} is not an email address")
    return value


def parse_contact(fields: Mapping[str, str | None], source: ConsentSource) -> ContactInput:
    """A validated contact from text fields, or FieldError naming the first bad field."""
    first_name = _text(fields, "first_name", MAX_NAME)
    if first_name is None:
        raise FieldError("first_name", "is required")
    last_name = _text(fields, "last_name", MAX_NAME) or ""
    raw_phone = _text(fields, "phone", 64)
    email = _email(_text(fields, "email", MAX_EMAIL))
    if raw_phone is None and email is None:
        raise FieldError("phone", "a phone number or an email address is required")
    phone = None
    if raw_phone is not None:
        try:
            phone = normalize_phone(raw_phone)
        except ValidationError as exc:
            raise FieldError("phone", str(exc)) from exc
    state = _text(fields, "state", 64)
    if state is not None:
        try:
            state = normalize_state(state)
        except ValidationError as exc:
            raise FieldError("state", str(exc)) from exc
    tz = _text(fields, "timezone", 64)
    if tz is not None:
        try:
            tz = validate_timezone(tz)
        except ValidationError as exc:
            raise FieldError("timezone", str(exc)) from exc
    agent = _text(fields, "agent_phone", 64)
    if agent is not None:
        try:
            agent = normalize_phone(agent)
        except ValidationError as exc:
            raise FieldError("agent_phone", str(exc)) from exc
    return ContactInput(first_name, last_name, phone, email, state, tz, agent, source)


def parse_source(raw: str | None, default: ConsentSource, field_name: str) -> ConsentSource:
    """A consent source (registration, import, api, manual); blank gives ``default``."""
    if raw is None or not raw.strip():
        return default
    try:
        return ConsentSource(raw.strip().lower())
    except ValueError as exc:
        known = ", ".join(s.value for s in ConsentSource)
        raise FieldError(field_name, f"{raw[:40]!r} is not one of {known}") from exc


_US_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M %p", "%m/%d/%Y")


def parse_consent_at(raw: str, zone: str) -> datetime:
    """An aware instant from ISO 8601 or US style; naive times are read in ``zone``."""
    value = raw.strip()
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        for fmt in _US_FORMATS:
            try:
                parsed = datetime.strptime(value, fmt)  # noqa: DTZ007 - zone attached below
                break
            except ValueError:
                continue
    if parsed is None:
        raise FieldError(
            "consent_at", f"{value[:40]!r} is not a date and time (use 2025-06-01T14:30:00-04:00)"
        )
    if parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    return parsed


@dataclass(frozen=True, slots=True)
class RowEvidence:
    """The consent a row carries: evidence when complete, else why it is missing."""

    evidence: ConsentEvidence | None
    missing: str | None


def parse_evidence(
    fields: Mapping[str, str | None], contact: ContactInput, default_zone: str, now: datetime
) -> RowEvidence:
    """Consent evidence of an import row: complete or not, or FieldError."""
    consent = parse_consent_flag(fields.get("sms_consent"))
    raw_at = _text(fields, "consent_at", 64)
    text = _text(fields, "consent_text", MAX_CONSENT_TEXT)
    source = parse_source(fields.get("consent_source"), ConsentSource.IMPORT, "consent_source")
    at = parse_consent_at(raw_at, contact.timezone or default_zone) if raw_at else None
    if at is not None and at > now + FUTURE_SLACK:
        raise FieldError("consent_at", f"{raw_at} is in the future")
    if not consent:
        return RowEvidence(None, "sms_consent is not yes")
    missing = [name for name, value in (("consent_at", at), ("consent_text", text)) if not value]
    if missing:
        return RowEvidence(None, f"sms_consent is yes but {' and '.join(missing)} is missing")
    if contact.phone is None:
        return RowEvidence(None, "no phone number to text")
    assert at is not None and text is not None
    return RowEvidence(ConsentEvidence(at, source, text), None)


# --------------------------------------------------------------------------- import


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that was not imported: its line in the file, the field and the reason."""

    line: int
    field: str | None
    reason: str

    def describe(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportReport:
    """What an import did; :meth:`summary` is the line the command prints."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    without_consent: int = 0
    consent_recorded: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Contacts that had no SMS consent before this import and have it now.
    to_confirm: list[int] = field(default_factory=list)
    #: Every contact the file created or updated, in file order (``--enroll``).
    contact_ids: list[int] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.created + self.updated

    def summary(self) -> str:
        return (
            f"imported {self.imported} (created {self.created}, updated {self.updated}), "
            f"{self.without_consent} without consent evidence (not textable), "
            f"{len(self.bad_rows)} bad rows"
        )


class ImportFileError(ValidationError):
    """The file as a whole cannot be imported (unreadable, no header, missing columns)."""


@dataclass(frozen=True, slots=True)
class CsvRow:
    line: int
    fields: dict[str, str | None]
    problem: str | None = None


def _column(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


def read_csv(path: Path) -> tuple[list[CsvRow], list[str]]:
    """The data rows of ``path`` with their starting line numbers, and notes on the header."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return parse_csv_text(text, str(path))


def parse_csv_text(text: str, name: str = "<csv>") -> tuple[list[CsvRow], list[str]]:
    """:func:`read_csv` for text already in memory."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(f"{name}: the file is empty (a header line is needed)") from None
    except csv.Error as exc:
        raise ImportFileError(f"{name}: line 1: {exc}") from exc
    columns = [_column(h) for h in header]
    notes: list[str] = []
    missing = [] if "first_name" in columns else ["first_name"]
    if "phone" not in columns and "email" not in columns:
        missing.append("phone or email")
    if missing:
        raise ImportFileError(
            f"{name}: line 1: the header lacks {' and '.join(missing)} "
            f"(columns: {', '.join(COLUMNS)})"
        )
    unknown = [h for h, c in zip(header, columns, strict=True) if c not in COLUMNS]
    if unknown:
        notes.append(f"ignored unknown column(s): {', '.join(unknown)}")
    duplicated = sorted({c for c in columns if c in COLUMNS and columns.count(c) > 1})
    if duplicated:
        raise ImportFileError(f"{name}: line 1: column(s) given twice: {', '.join(duplicated)}")
    rows: list[CsvRow] = []
    line = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rows.append(CsvRow(line, {}, f"cannot parse the line: {exc}"))
            line = reader.line_num + 1
            continue
        start, line = line, reader.line_num + 1
        if not any(v.strip() for v in values):
            continue  # blank line
        if len(values) > len(columns):
            problem = f"{len(values)} fields but the header has {len(columns)}"
            rows.append(CsvRow(start, {}, problem))
            continue
        fields: dict[str, str | None] = dict.fromkeys(COLUMNS)
        for column, value in zip(columns, values, strict=False):
            if column in COLUMNS:
                fields[column] = value
        rows.append(CsvRow(start, fields))
    return rows, notes


def _upsert(session: Session, data: ContactInput, now: datetime) -> tuple[Contact, bool, list[str]]:
    """``upsert_contact``, and for a row without phone: update the phone-less contact by email."""
    if data.phone is None and data.email is not None:
        existing = store_contacts.by_email(session, data.email, without_phone=True)
        if existing is not None:
            agent_id = existing.agent_id
            if data.agent_phone is not None:
                agent = repo.agent_by_phone(session, data.agent_phone)
                if agent is None:
                    raise NotFoundError(f"agent: no agent texts from {data.agent_phone}")
                agent_id = agent.id
            existing.first_name = data.first_name
            existing.last_name = data.last_name or existing.last_name
            existing.state = data.state or existing.state
            existing.timezone = data.timezone or existing.timezone
            existing.agent_id = agent_id
            existing.updated_at = now
            return existing, False, []
    return upsert_contact(session, data, now)


def _store_error(exc: Exception) -> tuple[str | None, str]:
    if isinstance(exc, FieldError):
        return exc.field, str(exc)
    if isinstance(exc, NotFoundError) and str(exc).startswith("agent"):
        return "agent_phone", f"agent_phone: {str(exc).removeprefix('agent: ')}"
    if isinstance(exc, IntegrityError):
        return None, "conflicts with another contact (changed by someone else meanwhile?)"
    return None, str(exc)


def import_rows(
    deps: Deps,
    rows: Sequence[CsvRow],
    now: datetime,
    *,
    on_row: Callable[[], None] | None = None,
    commit_every: int = COMMIT_EVERY,
) -> ImportReport:
    """Import parsed CSV rows (see the module docstring); confirmations are not sent here."""
    report = ImportReport(rows=len(rows))
    default_zone = deps.account.default_timezone
    confirm: dict[int, None] = {}
    with deps.sessions() as session:
        with session.begin():
            agents = {a.phone: a.id for a in store_agents.all_agents(session)}
        for start in range(0, len(rows), commit_every):
            with session.begin():
                batch = rows[start : start + commit_every]
                fresh = _fresh_rows(session, batch, agents, default_zone, now)
                for row in batch:
                    if row.line not in fresh:
                        _import_one(
                            session,
                            row=row,
                            report=report,
                            confirm=confirm,
                            default_zone=default_zone,
                            now=now,
                        )
                    if on_row is not None:
                        on_row()
                _insert_fresh(
                    session,
                    list(fresh.values()),
                    agents=agents,
                    report=report,
                    confirm=confirm,
                    now=now,
                )
    report.bad_rows.sort(key=lambda bad: bad.line)
    report.to_confirm = list(confirm)
    log.info(
        "contacts_imported",
        rows=report.rows,
        created=report.created,
        updated=report.updated,
        without_consent=report.without_consent,
        bad_rows=len(report.bad_rows),
    )
    return report


@dataclass(frozen=True, slots=True)
class _Fresh:
    line: int
    data: ContactInput
    evidence: ConsentEvidence | None


def _fresh_rows(
    session: Session,
    batch: Sequence[CsvRow],
    agents: Mapping[str, int],
    default_zone: str,
    now: datetime,
) -> dict[int, _Fresh]:
    """The rows of ``batch`` that create a new contact and touch no other row: ``{line: row}``.

    Such a row has a phone no contact has (nor an orphan opt-out), an email no
    contact has, a known agent (or none), and shares neither phone nor email
    with another row of the batch. Everything else (updates, repeats, bad
    rows, phone-less rows) goes through :func:`_import_one`, row by row.
    """
    parsed: list[_Fresh] = []
    for row in batch:
        if row.problem is not None:
            continue
        try:
            data = parse_contact(row.fields, ConsentSource.IMPORT)  # normalized already
            evidence = parse_evidence(row.fields, data, default_zone, now).evidence
        except DripError:
            continue  # reported by the row-by-row path
        if data.phone is None or (data.agent_phone is not None and data.agent_phone not in agents):
            continue
        parsed.append(_Fresh(row.line, data, evidence))
    phones = Counter(f.data.phone for f in parsed)
    emails = Counter(f.data.email.lower() for f in parsed if f.data.email)
    known_phones = store.known_phones(session, [p for p in phones if p is not None])
    known_emails = store.known_emails(session, list(emails))
    # An erased contact's number or email: the row-by-row path carries its opt-outs over.
    known_phones |= suppression.suppressed_among(
        session, "phone", [p for p in phones if p is not None]
    )
    known_emails |= suppression.suppressed_among(session, "email", list(emails))
    # Every row of the batch counts here, parsed above or not (a bad row too).
    phone_of = {f.line: f.data.phone for f in parsed}
    raw_phones = Counter(
        phone_of[row.line] if row.line in phone_of else _raw_phone(row) for row in batch
    )
    raw_emails = Counter((row.fields.get("email") or "").strip().lower() for row in batch)
    out: dict[int, _Fresh] = {}
    for f in parsed:
        email = f.data.email.lower() if f.data.email else None
        if (
            f.data.phone in known_phones
            or phones[f.data.phone] > 1
            or raw_phones[f.data.phone] > 1
            or (email is not None and (email in known_emails or raw_emails[email] > 1))
        ):
            continue
        out[f.line] = f
    return out


def _raw_phone(row: CsvRow) -> str | None:
    raw = (row.fields.get("phone") or "").strip()
    if not raw:
        return None
    try:
        return normalize_phone(raw)
    except DripError:
        return None


def _insert_fresh(
    session: Session,
    fresh: list[_Fresh],
    *,
    agents: Mapping[str, int],
    report: ImportReport,
    confirm: dict[int, None],
    now: datetime,
) -> None:
    """Insert the fresh rows' contacts and consent events in two statements."""
    if not fresh:
        return
    values = [
        {
            "first_name": f.data.first_name,
            "last_name": f.data.last_name,
            "phone": f.data.phone,
            "email": f.data.email,
            "state": f.data.state,
            "timezone": f.data.timezone,
            "source": f.data.source,
            "agent_id": agents.get(f.data.agent_phone) if f.data.agent_phone else None,
            "sms_consent_at": f.evidence.at if f.evidence else None,
            "sms_consent_source": f.evidence.source if f.evidence else None,
            "sms_consent_text": f.evidence.text if f.evidence else None,
            "created_at": now,
            "updated_at": now,
        }
        for f in fresh
    ]
    ids = store.insert_contacts(session, values)
    events = [
        {
            "contact_id": contact_id,
            "kind": ConsentEventKind.GIVEN,
            "at": f.evidence.at,
            "source": f.evidence.source.value,
            "evidence": f.evidence.text,
        }
        for f, contact_id in zip(fresh, ids, strict=True)
        if f.evidence is not None
    ]
    store.insert_consent_events(session, events)
    for f, contact_id in zip(fresh, ids, strict=True):
        report.contact_ids.append(contact_id)
        report.created += 1
        if f.evidence is not None:
            report.consent_recorded += 1
            confirm[contact_id] = None
        else:
            report.without_consent += 1


def _import_one(
    session: Session,
    *,
    row: CsvRow,
    report: ImportReport,
    confirm: dict[int, None],
    default_zone: str,
    now: datetime,
) -> None:
    if row.problem is not None:
        report.bad_rows.append(BadRow(row.line, None, row.problem))
        return
    try:
        data = parse_contact(row.fields, ConsentSource.IMPORT)
        evidence = parse_evidence(row.fields, data, default_zone, now)
        with session.begin_nested():
            contact, created, notes = _upsert(session, data, now)
            had_consent = contact.sms_consent_at is not None and contact.sms_opted_out_at is None
            recorded = False
            if evidence.evidence is not None and consent_on_record(contact, evidence.evidence):
                recorded = True  # the same evidence again: in force, no new consent event
            elif evidence.evidence is not None:
                recorded = record_consent(session, contact, evidence.evidence, now)
                if not recorded:
                    notes.append("consent not recorded: the contact opted out after it was given")
            session.flush()
            contact_id = contact.id
    except (DripError, IntegrityError) as exc:
        name, reason = _store_error(exc)
        report.bad_rows.append(BadRow(row.line, name, reason))
        return
    report.contact_ids.append(contact_id)
    if created:
        report.created += 1
    else:
        report.updated += 1
    if recorded:
        report.consent_recorded += 1
        if not had_consent:
            confirm[contact_id] = None
    else:
        report.without_consent += 1
    for note in notes:
        report.notes.append(f"line {row.line}: {note}")


@dataclass
class ConfirmationReport:
    """The opt-in confirmations scheduled after an import: one pending send id per contact."""

    scheduled: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"scheduled": len(self.scheduled)} if self.scheduled else {}


def send_confirmations(
    deps: Deps,
    contact_ids: Iterable[int],
    now: datetime,
    *,
    on_sent: Callable[[int], None] | None = None,
) -> ConfirmationReport:
    """Schedule one opt-in confirmation per contact, due now, held to the pipeline.

    Imported consent is evidence of an earlier opt-in, so its confirmation goes
    through dispatch like a campaign text: the send window and state rules of
    the contact, and the sender's pacing, never a burst at
    night. ``on_sent`` gets the number of sends scheduled per batch.
    """
    return ConfirmationReport(schedule_confirmations(deps, contact_ids, now, on_batch=on_sent))


def exit_code(report: ImportReport) -> int:
    """0 when at least one row was imported (or the file had none), 1 when rows all failed."""
    if report.rows and report.imported == 0:
        return 1
    return 0
