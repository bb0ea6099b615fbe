"""Deferred dialect options: the same index as the keyword argument, without loading the dialect."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import Column, Index, Integer, MetaData, String, Table, exc, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex

from drip.store.dialect_options import deferred


def _table(metadata: MetaData) -> Table:
    return Table("t", metadata, Column("id", Integer, primary_key=True), Column("s", String(8)))


def _pair() -> tuple[Index, Index]:
    eager_t, lazy_t = _table(MetaData()), _table(MetaData())
    eager = Index(
        "ix_t_s",
        eager_t.c.s,
        unique=True,
        sqlite_where=text("s = 'a'"),
        postgresql_where=text("s = 'a'"),
    )
    lazy = deferred(
        Index("ix_t_s", lazy_t.c.s, unique=True, sqlite_where=text("s = 'a'")),
        "postgresql",
        where=text("s = 'a'"),
    )
    return eager, lazy


def _ddl(index: Index) -> list[str]:
    return [
        str(CreateIndex(index).compile(dialect=d)) for d in (postgresql.dialect(), sqlite.dialect())
    ]


def test_deferred_index_compiles_as_the_keyword_argument() -> None:
    """The PostgreSQL and SQLite DDL of a deferred index equal the eager index's."""
    eager, lazy = _pair()
    assert _ddl(lazy) == _ddl(eager)
    assert "WHERE s = 'a'" in _ddl(lazy)[0]


def test_deferred_options_read_as_the_keyword_argument() -> None:
    """``dialect_kwargs``, ``dialect_options`` and a copy to new metadata show the same options."""
    eager, lazy = _pair()
    assert (
        set(lazy.dialect_kwargs)
        == set(eager.dialect_kwargs)
        == {
            "sqlite_where",
            "postgresql_where",
        }
    )
    assert str(lazy.dialect_options["postgresql"]["where"]) == "s = 'a'"
    assert set(lazy.dialect_options["postgresql"]) == set(eager.dialect_options["postgresql"])
    assert lazy.table is not None
    copied = lazy.table.to_metadata(MetaData())
    (copy,) = copied.indexes
    assert str(copy.dialect_options["postgresql"]["where"]) == "s = 'a'"


def test_an_unknown_deferred_option_is_refused_when_read() -> None:
    """An option the dialect does not take is an ArgumentError, as the keyword argument is."""
    index = deferred(Index("ix_x", "s"), "postgresql", wher=text("s = 'a'"))
    with pytest.raises(exc.ArgumentError, match="postgresql_wher"):
        index.dialect_options["postgresql"]


def test_models_on_sqlite_do_not_load_the_postgresql_dialect() -> None:
    """Importing the models leaves the PostgreSQL dialect unloaded; compiling for it loads it."""
    probe = (
        "import sys\n"
        "from drip.store.models import Enrollment\n"
        "assert 'sqlalchemy.dialects.postgresql' not in sys.modules\n"
        "from sqlalchemy.dialects import postgresql\n"
        "from sqlalchemy.schema import CreateIndex\n"
        "(ix,) = [i for i in Enrollment.__table__.indexes if i.unique]\n"
        "print(CreateIndex(ix).compile(dialect=postgresql.dialect()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "WHERE status = 'active'" in done.stdout
