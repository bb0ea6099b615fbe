"""Alembic migrations: run from package data, idempotent, and equal to the models."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from drip.errors import StoreError
from drip.store.engine import make_engine
from drip.store.migrate import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    head_revision,
    include_object_for,
    upgrade,
)
from drip.store.models import Base


def _diff(engine: Engine) -> list[Any]:
    """Alembic's autogenerate comparison of the database against the models."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_object": include_object_for(conn.dialect.name),
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        return list(compare_metadata(context, Base.metadata))


@pytest.fixture
def migrated(empty_db_url: str) -> Iterator[Engine]:
    """An engine on a fresh database after ``upgrade``."""
    upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    yield engine
    engine.dispose()


def test_migrated_schema_matches_models(migrated: Engine) -> None:
    """After upgrade, autogenerate finds no difference between the database and the models."""
    assert _diff(migrated) == []


def test_comparison_detects_a_missing_index(migrated: Engine) -> None:
    """The comparison above is not vacuous: a dropped index shows up as a difference."""
    with migrated.begin() as conn:
        conn.execute(text("DROP INDEX ix_scheduled_sends_state_due_at"))
    diff = _diff(migrated)
    assert [d[0] for d in diff] == ["add_index"]
    assert diff[0][1].name == "ix_scheduled_sends_state_due_at"


def test_revision_before_and_after_upgrade(empty_db_url: str) -> None:
    """A new database has no revision; after upgrade it is at the shipped head."""
    assert current_revision(empty_db_url) is None
    upgrade(empty_db_url)
    assert head_revision() == "0020"
    assert current_revision(empty_db_url) == head_revision()


def test_upgrade_twice_is_a_no_op(empty_db_url: str) -> None:
    """Upgrading an up-to-date database changes nothing and does not fail."""
    upgrade(empty_db_url)
    upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    try:
        assert current_revision(engine) == head_revision()
        assert _diff(engine) == []
    finally:
        engine.dispose()


def test_downgrade_to_base_and_up_again(migrated: Engine) -> None:
    """The initial migration can be undone completely, with rows in it, and applied again."""
    with migrated.begin() as conn:
        conn.execute(
            text("INSERT INTO orphan_optouts (phone, at, keyword) VALUES (:p, :at, 'STOP')"),
            {"p": "+16175550100", "at": "2026-03-02 15:00:00"},
        )
    with migrated.begin() as conn:
        command.downgrade(alembic_config(connection=conn), "base")
    assert set(inspect(migrated).get_table_names()) - {"alembic_version"} == set()
    assert current_revision(migrated) is None
    upgrade(migrated)
    assert set(inspect(migrated).get_table_names()) >= set(Base.metadata.tables)
    assert _diff(migrated) == []


def test_upgrade_needs_no_alembic_ini(
    empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migrations run from the package directory whatever the working directory is."""
    monkeypatch.chdir(tmp_path)
    assert not (tmp_path / "alembic.ini").exists()
    assert (MIGRATIONS_DIR / "env.py").is_file()
    upgrade(empty_db_url)
    assert current_revision(empty_db_url) == head_revision()


def test_partial_index_on_pending_sends_only_on_postgres(migrated: Engine) -> None:
    """The pending-only index exists on PostgreSQL and is left out on SQLite."""
    names = {ix["name"] for ix in inspect(migrated).get_indexes("scheduled_sends")}
    assert "ix_scheduled_sends_state_due_at" in names
    expected = migrated.dialect.name == "postgresql"
    assert ("ix_scheduled_sends_pending_due_at" in names) is expected


def _send_index_sql(engine: Engine) -> dict[str, str]:
    """``{index name: its definition}`` of scheduled_sends, as the database keeps it."""
    if engine.dialect.name == "postgresql":
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'scheduled_sends'"
    else:
        query = (
            "SELECT name, sql FROM sqlite_master"
            " WHERE type = 'index' AND tbl_name = 'scheduled_sends' AND sql IS NOT NULL"
        )
    with engine.connect() as conn:
        return {str(name): str(sql) for name, sql in conn.execute(text(query))}


def test_0008_indexes_bulk_sends_only_and_downgrades(migrated: Engine) -> None:
    """0008 makes the bulk index partial (bulk_id set) on both databases; 0007 makes it full again."""
    assert "bulk_id IS NOT NULL" in _send_index_sql(migrated)["ix_scheduled_sends_bulk_id"]
    with migrated.begin() as conn:
        command.downgrade(alembic_config(connection=conn), "0007")
    assert "WHERE" not in _send_index_sql(migrated)["ix_scheduled_sends_bulk_id"]
    upgrade(migrated)
    assert "bulk_id IS NOT NULL" in _send_index_sql(migrated)["ix_scheduled_sends_bulk_id"]
    assert _diff(migrated) == []


def test_unknown_revision_is_a_store_error(empty_db_url: str) -> None:
    """Asking for a revision that does not exist raises StoreError and creates nothing."""
    with pytest.raises(StoreError, match="nosuchrev"):
        upgrade(empty_db_url, "nosuchrev")
    assert current_revision(empty_db_url) is None


def test_0001_database_upgrades_keeping_its_sends(empty_db_url: str) -> None:
    """A database at 0001 with a scheduled send upgrades to head; the send keeps its data."""
    upgrade(empty_db_url, "0001")
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO contacts (first_name, last_name, source, text_status,"
                    " email_opted_out, created_at, updated_at)"
                    " VALUES ('Dana', 'Ruiz', 'manual', 'textable', false, :t, :t)"
                ),
                {"t": "2026-03-02 15:00:00+00:00"},
            )
            contact_id = conn.execute(text("SELECT max(id) FROM contacts")).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO scheduled_sends (contact_id, kind, channel, body, sender_role,"
                    " due_at, original_due_at, state, catching_up, attempts, created_at,"
                    " updated_at) VALUES (:c, 'manual', 'sms', 'hi', 'agent', :t, :t, 'pending',"
                    " false, 0, :t, :t)"
                ),
                {"c": contact_id, "t": "2026-03-02 15:00:00+00:00"},
            )
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            row = conn.execute(text("SELECT body, sender_phone FROM scheduled_sends")).one()
        assert tuple(row) == ("hi", None)
    finally:
        engine.dispose()


def _index_sql(engine: Engine) -> dict[str, str]:
    """``{index name: its definition}`` of every table, as the database keeps it."""
    if engine.dialect.name == "postgresql":
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
    else:
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    with engine.connect() as conn:
        return {str(name): str(sql) for name, sql in conn.execute(text(query))}


#: Every partial index of the models and the predicate of its WHERE.
PARTIAL_INDEXES = {
    "uq_enrollments_active_contact_campaign": "status = 'active'",
    "ix_scheduled_sends_pending_due_at": "state = 'pending'",
    "ix_scheduled_sends_bulk_id": "bulk_id IS NOT NULL",
}


def test_partial_indexes_keep_their_where_in_models_and_migrations(migrated: Engine) -> None:
    """Each partial index has its WHERE in the migrated database and in the models' own DDL."""
    from sqlalchemy.schema import CreateIndex

    dialect = migrated.dialect.name
    migrated_sql = _index_sql(migrated)
    declared = {
        ix.name: ix
        for table in Base.metadata.tables.values()
        for ix in table.indexes
        if ix.name in PARTIAL_INDEXES
    }
    assert set(declared) == set(PARTIAL_INDEXES)
    for name, predicate in PARTIAL_INDEXES.items():
        if name == "ix_scheduled_sends_pending_due_at" and dialect != "postgresql":
            assert name not in migrated_sql  # PostgreSQL only
            continue
        where = re.sub(
            r"::(?:character varying|\w+)|[()']", "", migrated_sql[name].split(" WHERE ", 1)[1]
        )
        assert where == predicate.replace("'", "")
        ddl = str(CreateIndex(declared[name]).compile(dialect=migrated.dialect))
        assert f"WHERE {predicate}" in ddl


@pytest.mark.postgres
def test_a_lead_events_contact_update_touches_no_index_on_full_pages(pg_url: str) -> None:
    """Fillfactor 85 makes the events' write of stage and tags heap-only; unchanged contacts are not written."""
    from drip.services.event_apply import CONTACT_ROW_COLUMNS, ContactRow
    from drip.store.engine import session_factory
    from drip.store.events import contact_rows_by_refs, write_contacts, written_values

    upgrade(pg_url)
    engine = make_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO contacts (first_name, last_name, phone, email, source,"
                    " created_at, updated_at, external_id, stage) SELECT 'Lead' || g, 'Doe',"
                    " '+1617555' || lpad(g::text, 4, '0'), 'lead' || g || '@example.com',"
                    " 'import', now(), now(), 'crm-' || g, 'new' FROM generate_series(1, 3000) g"
                )
            )
            fill = conn.execute(
                text("SELECT reloptions FROM pg_class WHERE relname = 'contacts'")
            ).scalar_one()
            assert fill == ["fillfactor=85"]
        sessions = session_factory(engine)
        with sessions.begin() as session:
            refs = [f"crm-{n}" for n in range(1, 3001, 30)]
            rows = [
                ContactRow(*r)
                for r in contact_rows_by_refs(session, CONTACT_ROW_COLUMNS, refs, [], [])
            ]
            before = {row.id: written_values(row) for row in rows}
            for row in rows[:90]:
                row.stage, row.tags = "active", ["buyer"]
            write_contacts(session, rows, before)
            hot, updated = session.execute(
                text(
                    "SELECT pg_stat_get_xact_tuples_hot_updated('contacts'::regclass),"
                    " pg_stat_get_xact_tuples_updated('contacts'::regclass)"
                )
            ).one()
        # The ten contacts whose values are as they were read are not written at all.
        assert len(rows) == 100 and (hot, updated) == (90, 90)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_every_trigger_function_runs_without_jit_and_a_downgrade_puts_it_back(
    pg_url: str,
) -> None:
    """Each of drip's trigger functions is set jit=off at head; below 0020 none is."""
    from drip.store.migrate import migration_module

    functions = (
        "SELECT DISTINCT p.proname, p.proconfig FROM pg_trigger AS t"
        " JOIN pg_proc AS p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal"
    )
    upgrade(pg_url)
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            found = dict(conn.execute(text(functions)).tuples().all())
        assert set(found) == set(migration_module("0020").TRIGGER_FUNCTIONS)
        assert all(config == ["jit=off"] for config in found.values()), found
        with engine.begin() as conn:
            command.downgrade(alembic_config(connection=conn), "0019")
        with engine.connect() as conn:
            assert all(c is None for _, c in conn.execute(text(functions)).tuples().all())
    finally:
        engine.dispose()
