"""Settings from the environment: defaults, every variable, and errors that name the variable."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import FrozenInstanceError, fields
from pathlib import Path

import pytest

from drip.config import (
    DEV_SECRET_KEY,
    ENV_VARS,
    NEEDED_BY,
    VARIABLES,
    Settings,
    markdown_table,
)
from drip.config import main as config_main
from drip.errors import ConfigError


class _Recording(Mapping[str, str]):
    """A mapping that remembers every key looked up."""

    def __init__(self, data: dict[str, str]) -> None:
        self.data = data
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(key)
        return self.data.get(key, default)


def test_defaults_are_embedded_sqlite_console() -> None:
    """With nothing set, drip runs embedded: SQLite under .drip, no broker, no Twilio."""
    settings = Settings.from_env({})
    assert settings.home == Path(".drip")
    assert settings.database_url == "sqlite:///.drip/drip.db"
    assert settings.broker_url is None
    assert settings.result_backend is None
    assert settings.embedded
    assert not settings.twilio_enabled
    assert settings.tick_seconds == 15
    assert settings.dispatch_batch == 500
    assert settings.send_batch == 50
    assert settings.sending_timeout_seconds == 300
    assert settings.campaigns_dir == Path("campaigns")
    assert settings.public_url == "http://127.0.0.1:8000"
    assert settings.api_token is None
    assert settings.secret_key == DEV_SECRET_KEY
    assert settings.secret_key_is_default
    assert settings.smtp_url is None
    assert settings.email_from == "drip@localhost"
    assert settings.log_format == "auto"
    assert settings.log_level == "INFO"
    assert settings.outbox == Path(".drip/outbox.jsonl")
    assert settings.twilio_base_url is None
    assert settings.default_timezone is None


def test_defaults_match_the_constructor() -> None:
    """An empty environment gives the same settings as the dataclass defaults."""
    assert Settings.from_env({}) == Settings()


def test_every_variable_is_parsed() -> None:
    """Each documented variable lands in its field, normalised."""
    env = {
        "DRIP_HOME": "/srv/drip",
        "DRIP_DATABASE_URL": "postgresql+psycopg://drip:pw@db:5432/drip",
        "DRIP_BROKER_URL": "redis://redis:6379/0",
        "DRIP_RESULT_BACKEND": "redis://redis:6379/1",
        "DRIP_TICK_SECONDS": "5",
        "DRIP_DISPATCH_BATCH": "1000",
        "DRIP_SEND_BATCH": "20",
        "DRIP_SENDING_TIMEOUT_SECONDS": "600",
        "DRIP_CAMPAIGNS_DIR": "/srv/campaigns",
        "DRIP_PUBLIC_URL": "https://drip.example.com/",
        "DRIP_API_TOKEN": "tok",
        "DRIP_SECRET_KEY": "s3cret",
        "DRIP_SMTP_URL": "smtp://user:pw@mail:2525",
        "DRIP_EMAIL_FROM": "Acme Realty <homes@acme.example>",
        "DRIP_LOG_FORMAT": "JSON",
        "DRIP_LOG_LEVEL": "debug",
        "DRIP_OUTBOX": "/var/spool/drip/outbox.jsonl",
        "DRIP_TWILIO_BASE_URL": "http://127.0.0.1:9999/",
        "DRIP_DEFAULT_TIMEZONE": "America/Chicago",
        "TWILIO_ACCOUNT_SID": "AC123",
        "TWILIO_AUTH_TOKEN": "authtok",
    }
    settings = Settings.from_env(env)
    assert settings.home == Path("/srv/drip")
    assert settings.database_url == "postgresql+psycopg://drip:pw@db:5432/drip"
    assert settings.broker_url == "redis://redis:6379/0"
    assert settings.result_backend == "redis://redis:6379/1"
    assert not settings.embedded
    assert settings.tick_seconds == 5
    assert settings.dispatch_batch == 1000
    assert settings.send_batch == 20
    assert settings.sending_timeout_seconds == 600
    assert settings.campaigns_dir == Path("/srv/campaigns")
    assert settings.public_url == "https://drip.example.com"
    assert settings.status_callback_url == "https://drip.example.com/twilio/status"
    assert settings.api_token == "tok"
    assert settings.secret_key == "s3cret"
    assert not settings.secret_key_is_default
    assert settings.smtp_url == "smtp://user:pw@mail:2525"
    assert settings.email_from == "Acme Realty <homes@acme.example>"
    assert settings.log_format == "json"
    assert settings.log_level == "DEBUG"
    assert settings.outbox == Path("/var/spool/drip/outbox.jsonl")
    assert settings.twilio_base_url == "http://127.0.0.1:9999"
    assert settings.default_timezone == "America/Chicago"
    assert settings.twilio_account_sid == "AC123"
    assert settings.twilio_auth_token == "authtok"
    assert settings.twilio_enabled


def test_home_moves_the_database_and_outbox() -> None:
    """DRIP_HOME alone moves the default SQLite file and outbox with it."""
    settings = Settings.from_env({"DRIP_HOME": "/var/lib/drip"})
    assert settings.database_url == "sqlite:////var/lib/drip/drip.db"
    assert settings.outbox == Path("/var/lib/drip/outbox.jsonl")


def test_home_moves_the_web_spool_unless_it_is_named() -> None:
    """The web spool follows DRIP_HOME by default; DRIP_WEB_SPOOL puts it anywhere."""
    assert Settings.from_env({"DRIP_HOME": "/var/lib/drip"}).web_spool_path == Path(
        "/var/lib/drip/web-spool.db"
    )
    assert Settings(home=Path("/srv/h")).web_spool_path == Path("/srv/h/web-spool.db")
    named = Settings.from_env({"DRIP_HOME": "/x", "DRIP_WEB_SPOOL": "/spool/web.db"})
    assert named.web_spool_path == Path("/spool/web.db")
    assert named.describe()["DRIP_WEB_SPOOL"] == "/spool/web.db"


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, False), ("0", False), ("1", True), ("true", True), ("no", False)]
)
def test_pgbouncer_flag(raw: str | None, expected: bool) -> None:
    """DRIP_DATABASE_PGBOUNCER reads as a flag; unset is off."""
    environ = {} if raw is None else {"DRIP_DATABASE_PGBOUNCER": raw}
    settings = Settings.from_env(environ)
    assert settings.database_pgbouncer is expected
    assert settings.describe()["DRIP_DATABASE_PGBOUNCER"] == ("1" if expected else "0")


def test_pgbouncer_flag_refuses_other_words() -> None:
    """A value that is not a flag is a ConfigError naming the variable."""
    with pytest.raises(ConfigError, match="DRIP_DATABASE_PGBOUNCER='maybe'"):
        Settings.from_env({"DRIP_DATABASE_PGBOUNCER": "maybe"})


def test_empty_values_count_as_unset() -> None:
    """An empty or blank variable (common in compose files) means the default."""
    settings = Settings.from_env({"DRIP_BROKER_URL": "", "DRIP_TICK_SECONDS": "  "})
    assert settings.embedded
    assert settings.tick_seconds == 15


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_plain_postgres_url_uses_psycopg3(scheme: str) -> None:
    """postgresql:// and postgres:// are read as postgresql+psycopg://, the installed driver."""
    settings = Settings.from_env({"DRIP_DATABASE_URL": f"{scheme}://u:p@h/db"})
    assert settings.database_url == "postgresql+psycopg://u:p@h/db"


@pytest.mark.parametrize("scheme", ["redis", "rediss", "amqp", "amqps"])
def test_broker_schemes_accepted(scheme: str) -> None:
    """Each supported broker scheme is accepted and turns embedded mode off."""
    settings = Settings.from_env({"DRIP_BROKER_URL": f"{scheme}://host:1234/0"})
    assert not settings.embedded


def test_warn_is_an_alias_of_warning() -> None:
    """DRIP_LOG_LEVEL=warn is read as WARNING."""
    assert Settings.from_env({"DRIP_LOG_LEVEL": "warn"}).log_level == "WARNING"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DRIP_DATABASE_URL", "not a url", "SQLAlchemy URL"),
        ("DRIP_DATABASE_URL", "nosuchdb://x/y", "known database"),
        ("DRIP_DATABASE_URL", "postgresql://h:port/db", "SQLAlchemy URL"),
        ("DRIP_BROKER_URL", "http://redis:6379", "redis://"),
        ("DRIP_BROKER_URL", "memory://", "redis://"),
        ("DRIP_BROKER_URL", "redis://h:notaport/0", "numeric port"),
        ("DRIP_RESULT_BACKEND", "redis-host", "URL"),
        ("DRIP_TICK_SECONDS", "abc", "whole number"),
        ("DRIP_TICK_SECONDS", "0", "greater than 0"),
        ("DRIP_DISPATCH_BATCH", "-5", "whole number"),
        ("DRIP_SEND_BATCH", "2.5", "whole number"),
        ("DRIP_SENDING_TIMEOUT_SECONDS", "0", "greater than 0"),
        ("DRIP_PUBLIC_URL", "drip.example.com", "http://"),
        ("DRIP_PUBLIC_URL", "ftp://drip.example.com", "http://"),
        ("DRIP_TWILIO_BASE_URL", "localhost:9999", "http://"),
        ("DRIP_SMTP_URL", "mail.example.com:25", "smtp://"),
        ("DRIP_EMAIL_FROM", "nobody", "e-mail address"),
        ("DRIP_LOG_FORMAT", "xml", "auto, json, console"),
        ("DRIP_LOG_LEVEL", "LOUD", "DEBUG, INFO"),
        ("DRIP_DEFAULT_TIMEZONE", "Mars/Olympus_Mons", "IANA time zone"),
        ("DRIP_DEFAULT_TIMEZONE", "../../etc/passwd", "IANA time zone"),
    ],
)
def test_bad_value_is_named(name: str, value: str, expected: str) -> None:
    """A bad value raises ConfigError naming the variable, the value and what is expected."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value})
    message = str(caught.value)
    assert name in message
    assert repr(value) in message
    assert expected in message


def test_password_in_bad_url_is_not_echoed() -> None:
    """The error for an unusable URL hides the password it contains."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"DRIP_BROKER_URL": "redis://user:hunter2@h:notaport/0"})
    assert "hunter2" not in str(caught.value)
    assert "DRIP_BROKER_URL" in str(caught.value)


@pytest.mark.parametrize(
    ("present", "missing"),
    [("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"), ("TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID")],
)
def test_half_of_twilio_is_an_error(present: str, missing: str) -> None:
    """Setting only one Twilio credential is refused rather than silently using the console."""
    with pytest.raises(ConfigError, match=f"{present} is set but {missing} is not"):
        Settings.from_env({present: "x"})


def test_construction_validates_too() -> None:
    """Building Settings directly runs the same checks as from_env."""
    with pytest.raises(ConfigError, match="DRIP_SEND_BATCH"):
        Settings(send_batch=0)


def test_settings_are_frozen() -> None:
    """Settings cannot be changed after they are read."""
    settings = Settings()
    with pytest.raises(FrozenInstanceError):
        settings.tick_seconds = 1  # type: ignore[misc]


def test_secrets_stay_out_of_repr_and_describe() -> None:
    """Neither repr nor describe() shows a token, key or password."""
    settings = Settings.from_env(
        {
            "DRIP_DATABASE_URL": "postgresql+psycopg://drip:dbpass@db/drip",
            "DRIP_API_TOKEN": "apitoken",
            "DRIP_SECRET_KEY": "signingkey",
            "DRIP_SMTP_URL": "smtp://u:smtppass@mail",
            "TWILIO_ACCOUNT_SID": "AC1",
            "TWILIO_AUTH_TOKEN": "twiliotoken",
        }
    )
    shown = repr(settings) + repr(settings.describe())
    for secret in ("dbpass", "apitoken", "signingkey", "smtppass", "twiliotoken"):
        assert secret not in shown
    assert set(settings.describe()) == set(ENV_VARS)


def test_from_env_reads_only_documented_variables() -> None:
    """from_env looks up exactly the variables in ENV_VARS, no others."""
    environ = _Recording({"PATH": "/bin", "HOME": "/root"})
    Settings.from_env(environ)
    assert environ.asked == set(ENV_VARS)


def _rows(table: str) -> list[list[str]]:
    """The cells of each body row of a Markdown table."""
    lines = [line for line in table.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


def test_markdown_table_has_every_setting_once() -> None:
    """The generated table has one well-formed row per variable, and every Settings field is one."""
    table = markdown_table()
    lines = table.splitlines()
    assert lines[0] == "| variable | default | needed by | meaning |"
    assert lines[1] == "|---|---|---|---|"
    rows = _rows(table)
    assert [row[0] for row in rows] == [f"`{name}`" for name in ENV_VARS]
    assert all(len(row) == 4 and all(row) for row in rows), rows
    assert all(row[2] in NEEDED_BY for row in rows)
    named = [v.field for v in VARIABLES]
    assert sorted(named) == sorted(f.name for f in fields(Settings))
    assert len(set(named)) == len(named) == len(set(ENV_VARS)) == len(ENV_VARS)


def test_table_defaults_are_the_real_defaults() -> None:
    """A default the table shows as a literal is the value Settings uses when the variable is unset."""
    settings = Settings.from_env({})
    literal = re.compile(r"^`([^`]+)`")
    checked = 0
    for variable in VARIABLES:
        shown = literal.match(variable.default_doc)
        if shown is None or variable.in_home is not None:
            continue
        assert shown.group(1) == variable.show(getattr(settings, variable.field)), variable.env
        checked += 1
    assert checked >= 8


def test_module_prints_the_markdown_table(capsys: pytest.CaptureFixture[str]) -> None:
    """python -m drip.config --markdown prints the same table markdown_table() returns."""
    assert config_main(["--markdown"]) == 0
    assert capsys.readouterr().out == markdown_table()


def test_docs_operations_table_is_the_generated_one() -> None:
    """The settings table in docs/operations.md is the one markdown_table() renders."""
    page = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
    text = page.read_text(encoding="utf-8")
    start_marker, end_marker = "<!-- settings-table:start -->\n", "<!-- settings-table:end -->"
    assert start_marker in text, "docs/operations.md lost its settings-table markers"
    table = text.split(start_marker, 1)[1].split(end_marker, 1)[0]
    assert table == markdown_table(), "regenerate it: python -m drip.config --markdown"
