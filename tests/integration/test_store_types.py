"""UtcDateTime and StrEnumType on real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from itertools import count

import pendulum
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from drip.domain.enums import ConsentSource, TextStatus
from drip.errors import StoreError, ValidationError
from drip.store.models import Contact, OrphanOptOut

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
_phones = count(1)


def _phone() -> str:
    return f"+1617555{next(_phones):04d}"


def _store_and_read(session: Session, at: datetime) -> datetime:
    phone = _phone()
    session.add(OrphanOptOut(phone=phone, at=at, keyword="STOP"))
    session.commit()
    session.expunge_all()
    got = session.scalars(select(OrphanOptOut.at).where(OrphanOptOut.phone == phone)).one()
    session.commit()
    return got


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.timezones(),
    )
)
def test_aware_datetimes_round_trip_as_utc(session: Session, value: datetime) -> None:
    """Any aware instant, in any zone, comes back as the same instant in UTC."""
    got = _store_and_read(session, value)
    assert got.tzinfo is UTC
    assert got == value.astimezone(UTC)


def test_pendulum_datetime_is_accepted(session: Session) -> None:
    """A pendulum DateTime in a local zone is stored as the UTC instant it denotes."""
    local = pendulum.datetime(2026, 7, 4, 9, 30, tz="America/Los_Angeles")
    got = _store_and_read(session, local)
    assert got == datetime(2026, 7, 4, 16, 30, tzinfo=UTC)
    assert type(got) is datetime


def test_naive_datetime_is_refused(session: Session) -> None:
    """Writing a naive datetime fails with ValidationError and stores nothing."""
    session.add(OrphanOptOut(phone="+16175550999", at=datetime(2026, 3, 2, 15), keyword="STOP"))
    with pytest.raises(StatementError) as info:
        session.commit()
    assert isinstance(info.value.orig, ValidationError)
    assert "naive" in str(info.value.orig)
    session.rollback()
    assert session.scalars(select(OrphanOptOut)).all() == []


def test_naive_datetime_is_refused_in_a_where_clause(session: Session) -> None:
    """Comparing a column with a naive datetime is refused too, not silently shifted."""
    with pytest.raises(StatementError) as info:
        session.execute(select(OrphanOptOut).where(OrphanOptOut.at <= datetime(2026, 3, 2)))
    assert isinstance(info.value.orig, ValidationError)


def test_comparisons_use_the_instant_not_the_wall_time(session: Session) -> None:
    """A row at 10:00 New York is after one at 14:00 UTC, whatever zone the query uses."""
    ny = timezone(timedelta(hours=-5))
    session.add(OrphanOptOut(phone=_phone(), at=datetime(2026, 3, 2, 10, tzinfo=ny), keyword="a"))
    session.add(OrphanOptOut(phone=_phone(), at=datetime(2026, 3, 2, 14, tzinfo=UTC), keyword="b"))
    session.commit()
    cutoff = datetime(2026, 3, 2, 9, 30, tzinfo=ny)  # 14:30 UTC
    before = session.scalars(select(OrphanOptOut.keyword).where(OrphanOptOut.at <= cutoff)).all()
    assert before == ["b"]


def test_storage_is_utc(engine: Engine, session: Session) -> None:
    """SQLite holds UTC wall time as text; PostgreSQL holds timestamptz whatever its zone."""
    local = datetime(2026, 3, 2, 10, 0, tzinfo=timezone(timedelta(hours=-5)))
    session.add(OrphanOptOut(phone="+16175550003", at=local, keyword="STOP"))
    session.commit()
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            raw = conn.execute(text("SELECT at FROM orphan_optouts")).scalar_one()
            assert raw.startswith("2026-03-02 15:00:00")
        else:
            conn.execute(text("SET TIME ZONE 'Asia/Tokyo'"))
            kind = conn.execute(
                text(
                    "SELECT data_type FROM information_schema.columns"
                    " WHERE table_name = 'orphan_optouts' AND column_name = 'at'"
                )
            ).scalar_one()
            assert kind == "timestamp with time zone"
            shown = conn.execute(text("SELECT at::text FROM orphan_optouts")).scalar_one()
            assert shown == "2026-03-03 00:00:00+09"
            got = conn.execute(select(OrphanOptOut.at)).scalar_one()
            assert got == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
            assert got.tzinfo is UTC


def test_enum_columns_round_trip_as_members(session: Session) -> None:
    """A StrEnum column gives back the enum member, stored as its plain value."""
    contact = Contact(first_name="Ana", source=ConsentSource.IMPORT, created_at=NOW)
    session.add(contact)
    session.commit()
    session.expunge_all()
    loaded = session.get(Contact, contact.id)
    assert loaded is not None
    assert loaded.source is ConsentSource.IMPORT
    assert loaded.text_status is TextStatus.TEXTABLE
    raw = session.execute(text("SELECT source, text_status FROM contacts")).one()
    assert tuple(raw) == ("import", "textable")


def test_enum_column_refuses_an_unknown_value(session: Session) -> None:
    """Writing a string that is not a member of the enum fails before reaching the database."""
    session.add(Contact(first_name="Ana", source="carrier-pigeon", created_at=NOW))
    with pytest.raises(StatementError) as info:
        session.commit()
    assert isinstance(info.value.orig, ValidationError)
    assert "ConsentSource" in str(info.value.orig)


def test_enum_column_with_a_value_from_the_future_is_reported(session: Session) -> None:
    """A stored value unknown to this code raises StoreError on read instead of passing as str."""
    session.execute(
        text(
            "INSERT INTO contacts (first_name, last_name, source, text_status, email_opted_out,"
            " created_at, updated_at) VALUES ('A', '', 'api', 'paused', :f, :t, :t)"
        ),
        {"f": False, "t": NOW.replace(tzinfo=None)},
    )
    session.commit()
    with pytest.raises(StoreError, match="paused"):
        session.scalars(select(Contact.text_status)).all()
