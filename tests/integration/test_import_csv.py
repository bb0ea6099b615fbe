"""``drip contacts import``: good rows kept, bad rows reported by line, duplicates merged, C1-C3."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from test_web_support import AGENT_PHONE, DANA_PHONE, NY, Web, open_web

from drip.domain.enums import ConsentEventKind, ConsentSource, MessageKind
from drip.services.importing import (
    ImportFileError,
    exit_code,
    import_rows,
    parse_csv_text,
    send_confirmations,
)
from drip.store.models import Contact

HEADER = (
    "first_name,last_name,phone,email,state,timezone,agent_phone,"
    "sms_consent,consent_at,consent_source,consent_text"
)
OLIVE = "+16175550124"
PAT = "+16175550125"
EXISTING = "+16175550126"
QUINN = "+16175550127"
CSV = "\n".join(
    [
        HEADER,  # line 1
        f"Dana,Ruiz,{DANA_PHONE},dana@example.com,MA,,{AGENT_PHONE},yes,"
        "2025-06-01T14:30:00-04:00,registration,Yes text me",  # 2: evidence
        f"Olive,Ng,{OLIVE},,FL,,,yes,,,Yes text me",  # 3: no consent_at
        "Bad,Phone,555-01,,,,,,,,",  # 4: bad phone
        "Dana,Ruiz-Lee,(617) 555-0123,,,,,yes,2025-06-02 09:00,,Yes again",  # 5: same as 2
        f"Eve,Existing,{EXISTING},eve@example.com,,,,no,,,",  # 6: already a contact
        f"Ann,Agentless,{PAT},,,,+16175550111,,,,",  # 7: unknown agent
        f'Quinn,Multi,{QUINN},,,America/Chicago,{AGENT_PHONE},1,06/01/2025 10:00,import,"I agree',
        'to texts"',  # 8-9: one row over two lines, naive time in Chicago
        "Rae,Time,+16175550128,,,,,yes,yesterday,,Yes",  # 10: bad consent_at
        "Sam,Maybe,+16175550129,,,,,maybe,,,",  # 11: bad sms_consent
        "Tia,Future,+16175550130,,,,,yes,2099-01-01T00:00:00Z,,Yes",  # 12: future
        "Uma,Mail,,uma@example.com,,,,,,,",  # 13: email only
        "Uma,Mail,,UMA@example.com,NY,,,,,,",  # 14: same email, no phone
        "Vic,Extra,+16175550131,,,,,,,,,,surplus",  # 15: too many fields
        "",  # blank line
    ]
)
BAD_LINES = [(4, "phone"), (7, "agent_phone"), (10, "consent_at"), (11, "sms_consent"),
             (12, "consent_at"), (15, None)]  # fmt: skip


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[Web]:
    """Services on the test database with agent Sam and one existing contact (Eve)."""
    with open_web(db_url, tmp_path) as w:
        w.add_dana(phone=EXISTING, email=None, first_name="Eve", consent=False)
        yield w


def by_phone(web: Web, phone: str) -> Contact:
    with web.deps.sessions() as session:
        return session.scalars(select(Contact).where(Contact.phone == phone)).one()


def test_import_keeps_good_rows_and_reports_every_bad_row_by_line(web: Web) -> None:
    """Good rows are imported, duplicates update, and each bad row is listed with its line."""
    rows, notes = parse_csv_text(CSV)

    report = import_rows(web.deps, rows, web.now)

    assert [(b.line, b.field) for b in report.bad_rows] == BAD_LINES
    assert all(b.reason for b in report.bad_rows)
    assert "555-01" in report.bad_rows[0].reason
    assert report.created == 4  # Dana, Olive, Quinn, Uma
    assert report.updated == 3  # Dana again, Eve, Uma again
    assert report.without_consent == 4  # Olive (no consent_at), Eve (no), Uma twice (blank)
    assert report.summary() == (
        "imported 7 (created 4, updated 3), 4 without consent evidence (not textable), 6 bad rows"
    )
    assert notes == []
    assert exit_code(report) == 0


def test_small_commit_batches_give_the_same_result(web: Web) -> None:
    """Committing every 2 rows (savepoints inside each batch) imports exactly the same."""
    report = import_rows(web.deps, parse_csv_text(CSV)[0], web.now, commit_every=2)

    assert report.summary() == (
        "imported 7 (created 4, updated 3), 4 without consent evidence (not textable), 6 bad rows"
    )
    assert by_phone(web, DANA_PHONE).last_name == "Ruiz-Lee"


def test_import_records_evidence_and_merges_duplicates(web: Web) -> None:
    """Complete evidence becomes consent with its time, source and text; duplicates never double."""
    before = web.count(Contact)

    import_rows(web.deps, parse_csv_text(CSV)[0], web.now)

    assert web.count(Contact) == before + 4
    dana = by_phone(web, DANA_PHONE)
    assert dana.last_name == "Ruiz-Lee"  # line 5 updated line 2's contact
    assert dana.source is ConsentSource.IMPORT
    assert dana.sms_consent_at == datetime(2025, 6, 2, 13, 0, tzinfo=UTC)  # 09:00 New York
    assert dana.sms_consent_text == "Yes again"
    given = [e for e in web.events(dana.id) if e.kind is ConsentEventKind.GIVEN]
    assert [(e.source, e.evidence) for e in given] == [
        ("registration", "Yes text me"),
        ("import", "Yes again"),
    ]
    quinn = by_phone(web, QUINN)
    assert quinn.sms_consent_at == datetime(2025, 6, 1, 15, 0, tzinfo=UTC)  # 10:00 Chicago
    assert quinn.sms_consent_text == "I agree\nto texts"
    olive = by_phone(web, OLIVE)
    assert olive.sms_consent_at is None  # C2: incomplete evidence, not textable
    assert by_phone(web, EXISTING).email == "eve@example.com"
    with web.deps.sessions() as session:
        umas = list(session.scalars(select(Contact).where(Contact.first_name == "Uma")))
    assert [(u.email, u.state) for u in umas] == [("uma@example.com", "NY")]


def test_confirmations_go_to_newly_consented_contacts_once(web: Web) -> None:
    """After the import, one opt-in confirmation per newly consented contact (C3), none on re-import."""
    report = import_rows(web.deps, parse_csv_text(CSV)[0], web.now)

    scheduled = send_confirmations(web.deps, report.to_confirm, web.now)

    assert scheduled.counts() == {"scheduled": 2}
    assert web.transport.sms == []  # held to the pipeline (SPEC C3), not sent in a burst
    assert web.tick().counts() == {"sent": 2}
    assert sorted(s.msg.to for s in web.transport.sms) == sorted([DANA_PHONE, QUINN])
    dana = by_phone(web, DANA_PHONE)
    assert [m.kind for m in web.messages(dana.id)] == [MessageKind.OPT_IN_CONFIRMATION]
    again = import_rows(web.deps, parse_csv_text(CSV)[0], web.now)
    assert again.created == 0
    assert again.to_confirm == []


def test_evidence_before_a_later_stop_is_not_recorded(web: Web) -> None:
    """An import cannot undo a STOP sent after the consent it carries."""
    dana = web.add_dana()
    assert web.sms("STOP", sid="SM" + "7" * 32).status_code == 200
    csv_text = "\n".join(
        [HEADER, f"Dana,Ruiz,{DANA_PHONE},,,,,yes,2025-01-01T00:00:00Z,,Old consent"]
    )

    report = import_rows(web.deps, parse_csv_text(csv_text)[0], web.now)

    assert report.updated == 1
    assert report.to_confirm == []
    assert web.contact(dana).sms_opted_out_at is not None
    assert any("opted out" in n for n in report.notes)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("last_name,phone\nRuiz,+16175550123", "first_name"),
        ("first_name,state\nDana,MA", "phone or email"),
        ("first_name,phone,phone\nDana,1,2", "twice"),
    ],
)
def test_unusable_files_are_refused_as_a_whole(text: str, message: str) -> None:
    """A file without a usable header is one error, not a row-by-row report."""
    with pytest.raises(ImportFileError, match=message):
        parse_csv_text(text)


def test_all_rows_bad_is_exit_1_and_unknown_columns_are_noted(web: Web) -> None:
    """Nothing imported from a file with rows is a failure; extra columns are reported."""
    rows, notes = parse_csv_text("first_name,phone,favourite_color\n,+16175550123,blue\n")

    report = import_rows(web.deps, rows, web.now)

    assert notes == ["ignored unknown column(s): favourite_color"]
    assert [(b.line, b.field) for b in report.bad_rows] == [(2, "first_name")]
    assert exit_code(report) == 1


def test_header_names_are_forgiving(web: Web) -> None:
    """'First Name' and 'SMS-Consent' are the same columns as first_name and sms_consent."""
    rows, _ = parse_csv_text(
        "\ufeffFirst Name,Phone,SMS-Consent,Consent At,Consent Text\n"
        f"Dana,{DANA_PHONE},Yes,2025-06-01,Yes text me\n"
    )

    report = import_rows(web.deps, rows, web.now)

    assert (report.created, report.consent_recorded) == (1, 1)
    assert by_phone(web, DANA_PHONE).sms_consent_at == datetime(2025, 6, 1, tzinfo=NY)


# --------------------------------------------------------------------------- the command


def _drip(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    drip = Path(sys.executable).with_name("drip")
    return subprocess.run(
        [str(drip), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for the drip CLI on a migrated SQLite file with agent Sam (shared: slow CLI)."""
    tmp_path = tmp_path_factory.mktemp("cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_"))}
    env.update(
        DRIP_HOME=str(tmp_path / "home"),
        DRIP_DATABASE_URL=f"sqlite:///{tmp_path / 'drip.db'}",
        DRIP_OUTBOX=str(tmp_path / "outbox.jsonl"),
        DRIP_LOG_FORMAT="json",
        DRIP_LOG_LEVEL="WARNING",
    )
    assert _drip(env, "db", "upgrade").returncode == 0
    assert _drip(env, "agents", "Sam", "Lee", AGENT_PHONE).returncode == 0
    return env


def test_command_prints_summary_bad_lines_and_sends_confirmations(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """`drip contacts import` lists bad rows as FILE:line N, prints the summary, exits 0."""
    path = tmp_path / "leads.csv"
    path.write_text(CSV)

    result = _drip(cli_env, "contacts", "import", str(path))

    assert result.returncode == 0, result.stderr
    for line, _field in BAD_LINES:
        assert f"{path}:line {line}: " in result.stderr
    assert "imported 7 (created 5, updated 2)" in result.stdout  # Eve is new here
    assert "6 bad rows" in result.stdout
    assert "opt-in confirmations: 2 scheduled" in result.stdout
    outbox_file = Path(cli_env["DRIP_OUTBOX"])
    sent_at_import = outbox_file.read_text().splitlines() if outbox_file.exists() else []
    assert sent_at_import == []  # SPEC C3: through the pipeline, not at import time


def test_command_exit_codes(cli_env: dict[str, str], tmp_path: Path) -> None:
    """Exit 1 when no row of the file imports, 2 when the file itself is unusable."""
    bad = tmp_path / "bad.csv"
    bad.write_text("first_name,phone\nDana,12\n")
    unusable = tmp_path / "unusable.csv"
    unusable.write_text("name,number\nDana,+16175550123\n")

    all_bad = _drip(cli_env, "contacts", "import", str(bad))
    no_header = _drip(cli_env, "contacts", "import", str(unusable))

    assert all_bad.returncode == 1
    assert f"{bad}:line 2: phone" in all_bad.stderr
    assert no_header.returncode == 2
    assert "first_name" in no_header.stderr


def test_an_import_at_night_confirms_at_the_next_opening_of_the_window(web: Web) -> None:
    """Imported consent at 23:00 local: its confirmation waits for 08:00, recorded as a deferral."""
    night = web.later(hours=13)  # 10:00 + 13 h = 23:00 in New York
    report = import_rows(web.deps, parse_csv_text(CSV)[0], night)
    send_confirmations(web.deps, report.to_confirm, night)

    summary = web.tick()

    assert summary.counts() == {"deferred": 2}
    assert {r.code for r in summary.results} == {"window"}
    assert web.transport.sms == []
    eastern = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # 08:00 in New York (Dana)
    central = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)  # 08:00 in Chicago (Quinn)
    assert {r.deferred_until for r in summary.results} == {eastern, central}
    web.clock.set(eastern)
    assert web.tick().counts() == {"sent": 1}
    web.clock.set(central)
    assert web.tick().counts() == {"sent": 1}
    dana = by_phone(web, DANA_PHONE)
    sent = [m for m in web.messages(dana.id) if m.direction == "outbound"]
    assert [(m.kind, m.sent_at) for m in sent] == [(MessageKind.OPT_IN_CONFIRMATION, eastern)]
    assert sent[0].footer is False


def test_a_large_file_imported_twice_records_each_contact_and_consent_once(web: Web) -> None:
    """1,200 rows in three batches: each id gets its row, a known email is its contact, twice adds nothing."""
    lines = [HEADER]
    for i in range(1200):
        email = "EVE@example.com" if i == 700 else f"lead{i}@example.com"
        lines.append(
            f"Lead{i},Bulk,+1617{4000000 + i:07d},{email},MA,,,yes,"
            f"2025-06-01T14:30:00-04:00,registration,Consent {i}"
        )
    rows = parse_csv_text("\n".join(lines))[0]
    with web.deps.sessions.begin() as session:  # Eve gets an email to be recognised by
        session.execute(
            Contact.__table__.update()
            .where(Contact.phone == EXISTING)
            .values(email="eve@example.com", phone=None)
        )
    before = web.count(Contact)

    first = import_rows(web.deps, rows, web.now, commit_every=500)

    assert (first.created, len(first.bad_rows)) == (1199, 0), first.summary()
    assert first.updated == 1  # line 702: Eve's email in capitals is Eve
    assert web.count(Contact) == before + 1199
    for i in (0, 499, 500, 1199):  # each id carries its own row, across batch edges
        lead = by_phone(web, f"+1617{4000000 + i:07d}")
        assert (lead.first_name, lead.email) == (f"Lead{i}", f"lead{i}@example.com")
        assert lead.sms_consent_text == f"Consent {i}"
        given = [e.evidence for e in web.events(lead.id) if e.kind is ConsentEventKind.GIVEN]
        assert given == [f"Consent {i}"]
    with web.deps.sessions() as session:
        eves = list(session.scalars(select(Contact).where(Contact.email.ilike("eve@example.com"))))
    assert len(eves) == 1

    again = import_rows(web.deps, rows, web.now, commit_every=500)

    assert (again.created, again.updated, len(again.bad_rows)) == (0, 1200, 0)
    assert web.count(Contact) == before + 1199
    lead = by_phone(web, f"+1617{4000000 + 42:07d}")
    assert len([e for e in web.events(lead.id) if e.kind is ConsentEventKind.GIVEN]) == 1
