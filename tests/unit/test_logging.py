"""Logging: both renderers, one handler, and no phone number or e-mail address in any line."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drip.errors import ConfigError
from drip.logging import configure_logging, get_logger, mask_text, mask_value, reset_logging

_STAMP = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z")


class _Terminal(io.StringIO):
    """A string buffer that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _clean_logging() -> Iterator[None]:
    """Every test starts and ends without drip's logging set up."""
    reset_logging()
    yield
    reset_logging()


def _json_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def _drip_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if type(h).__name__ == "_DripHandler"]


# --- renderers and setup ---------------------------------------------------------------------


def test_json_renderer_writes_one_object_per_event() -> None:
    """JSON output has the event name, level, logger, an ISO UTC timestamp and the keys given."""
    buffer = io.StringIO()
    configure_logging("json", stream=buffer)
    get_logger("drip.test").info("send_decided", send_id=7, decision="skip", reason="no_consent")
    [line] = _json_lines(buffer)
    assert line["event"] == "send_decided"
    assert line["level"] == "info"
    assert line["logger"] == "drip.test"
    assert line["send_id"] == 7
    assert line["decision"] == "skip"
    assert line["reason"] == "no_consent"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", line["timestamp"])


def test_console_renderer_writes_key_value_text() -> None:
    """Console output is one human-readable line with key=value pairs, not JSON."""
    buffer = io.StringIO()
    configure_logging("console", stream=buffer)
    get_logger("drip.test").info("send_decided", send_id=7)
    out = buffer.getvalue()
    assert "send_decided" in out
    assert "send_id=7" in out
    assert "\x1b[" not in out  # not a terminal: no colour codes
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_auto_is_json_off_a_terminal() -> None:
    """auto picks JSON when the stream is not a terminal."""
    buffer = io.StringIO()
    configure_logging("auto", stream=buffer)
    get_logger("t").info("tick_done", claimed=3)
    assert _json_lines(buffer)[0]["claimed"] == 3


def test_auto_is_console_on_a_terminal() -> None:
    """auto picks the console renderer when the stream is a terminal."""
    terminal = _Terminal()
    configure_logging("auto", stream=terminal)
    get_logger("t").info("tick_done", claimed=3)
    out = terminal.getvalue()
    assert "tick_done" in out
    assert not out.lstrip().startswith("{")


def test_default_stream_is_the_current_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a stream, lines go to whatever standard error is now, never to standard output."""
    configure_logging("json")
    get_logger("t").warning("late_binding")
    captured = capsys.readouterr()
    assert "late_binding" in captured.err
    assert captured.out == ""


def test_configuring_twice_keeps_one_handler() -> None:
    """A second identical call changes nothing: one handler, each line written once."""
    buffer = io.StringIO()
    configure_logging("json", stream=buffer)
    configure_logging("json", stream=buffer)
    get_logger("t").info("once")
    assert len(_drip_handlers()) == 1
    assert len(_json_lines(buffer)) == 1


def test_reconfiguring_replaces_the_output() -> None:
    """Configuring again with another format replaces the handler instead of adding one."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", stream=first)
    configure_logging("console", stream=second)
    get_logger("t").info("switched")
    assert len(_drip_handlers()) == 1
    assert first.getvalue() == ""
    assert "switched" in second.getvalue()


def test_level_filters_structlog_and_stdlib() -> None:
    """Below the configured level nothing is written, from structlog or the standard library."""
    buffer = io.StringIO()
    configure_logging("json", level="warning", stream=buffer)
    get_logger("t").info("quiet")
    logging.getLogger("celery").info("quiet too")
    get_logger("t").warning("loud")
    assert [line["event"] for line in _json_lines(buffer)] == ["loud"]


@pytest.mark.parametrize(
    ("fmt", "level", "variable"),
    [("xml", "INFO", "DRIP_LOG_FORMAT"), ("json", "NOISY", "DRIP_LOG_LEVEL")],
)
def test_bad_format_or_level_is_a_config_error(fmt: str, level: str, variable: str) -> None:
    """An unknown format or level raises ConfigError naming the setting and the value."""
    with pytest.raises(ConfigError, match=variable) as caught:
        configure_logging(fmt, level=level, stream=io.StringIO())
    assert repr(fmt if variable == "DRIP_LOG_FORMAT" else level) in str(caught.value)


def test_get_logger_sets_up_masked_logging_when_nobody_did(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A log call before configure_logging is still masked and still off standard output."""
    get_logger("early").warning("early_event", phone="+16175550123")
    captured = capsys.readouterr()
    assert "+16175550123" not in captured.err + captured.out
    assert "+1******0123" in captured.err
    assert captured.out == ""


# --- masking -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("+16175550123", "+1******0123"),
        ("(617) 555-0123", "(***) ***-0123"),
        ("617-555-0123", "***-***-0123"),
        ("617.555.0123", "***.***.0123"),
        ("617 555 0123", "*** *** 0123"),
        ("6175550123", "******0123"),
        ("16175550123", "1******0123"),
        ("1-617-555-0123", "1-***-***-0123"),
        ("+1 (617) 555-0123", "+1 (***) ***-0123"),
        ("From=%2B16175550123&To=x", "From=%2B1******0123&To=x"),
        ("+447911123456", "+4*******3456"),
        ("dana@example.com", "d***@example.com"),
        ("Dana.Ruiz+homes@mail.example.co.uk", "D***@mail.example.co.uk"),
        ("dana%40example.com", "d***%40example.com"),
    ],
)
def test_mask_text_examples(raw: str, masked: str) -> None:
    """Known phone and e-mail shapes are masked to their documented form."""
    assert mask_text(f"to {raw}.") == f"to {masked}."


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-02T10:00:00.123456+00:00",
        "SM0123456789abcdef0123456789abcdef",
        "123e4567-e89b-12d3-a456-426614174000",
        "send 12345 of 67890",
        "127.0.0.1:6379",
    ],
)
def test_mask_text_leaves_timestamps_and_ids_alone(text: str) -> None:
    """Timestamps, provider ids, UUIDs and small numbers are not mistaken for phone numbers."""
    assert mask_text(text) == text


def test_mask_value_walks_nested_structures() -> None:
    """Strings inside dicts, lists, tuples and sets, and dict keys, are all masked."""
    value = {
        "contact": {"phones": ["+16175550123", ("617-555-0124",)], "tags": {"dana@example.com"}},
        "+16175550125": 1,
        "count": 3,
        "flag": True,
        "none": None,
    }
    masked = mask_value(value)
    assert masked == {
        "contact": {"phones": ["+1******0123", ("***-***-0124",)], "tags": ("d***@example.com",)},
        "+1******0125": 1,
        "count": 3,
        "flag": True,
        "none": None,
    }


def test_mask_value_masks_arbitrary_objects_by_their_str() -> None:
    """An object is logged as its masked str(), so its __str__ cannot leak a number."""

    class Contact:
        def __str__(self) -> str:
            return "Contact(+16175550123, dana@example.com)"

    assert mask_value(Contact()) == "Contact(+1******0123, d***@example.com)"


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_no_raw_contact_data_in_any_path(fmt: str) -> None:
    """Nested event values, stdlib args and extras, tracebacks and warnings all come out masked."""
    buffer = io.StringIO()
    configure_logging(fmt, stream=buffer)
    log = get_logger("drip.services")
    log.info("send_decided", contact={"phone": "+16175550123", "emails": ["dana@example.com"]})
    log.info("manual_text %s", "617-555-0124")
    logging.getLogger("sqlalchemy.engine").warning(
        "params %s", ("(617) 555-0125", "dana@example.com"), extra={"to": "+16175550126"}
    )
    try:
        raise ValueError("refused +16175550127 for dana@example.com")
    except ValueError:
        log.exception("send_failed")
        logging.getLogger("celery").exception("task failed for %s", "+16175550128")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("odd number 617.555.0129", UserWarning, stacklevel=1)
    out = buffer.getvalue()
    for digits in range(123, 130):
        assert f"617555{digits:04d}" not in re.sub(r"[^0-9]", "", out.replace("*", "x"))
        assert f"{digits:04d}" in out
    assert "dana@" not in out
    assert "d***@example.com" in out


def test_events_reaching_a_foreign_handler_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    """A structlog event seen by a handler that is not drip's (pytest's, Celery's) is masked."""
    configure_logging("json", stream=io.StringIO())
    with caplog.at_level(logging.INFO):
        get_logger("t").info("inbound_received", from_="+16175550123")
    [record] = [r for r in caplog.records if r.name == "t"]
    assert "+16175550123" not in repr(record.msg)
    assert "+1******0123" in repr(record.msg)


# --- property tests ----------------------------------------------------------------------------

_US_FORMATS = (
    "+1{a}{e}{n}",
    "({a}) {e}-{n}",
    "{a}-{e}-{n}",
    "{a}.{e}.{n}",
    "{a} {e} {n}",
    "{a}{e}{n}",
    "1{a}{e}{n}",
    "1-{a}-{e}-{n}",
    "1 ({a}) {e}-{n}",
    "+1 ({a}) {e}-{n}",
    "+1-{a}-{e}-{n}",
    "+1.{a}.{e}.{n}",
    "%2B1{a}{e}{n}",
)


@st.composite
def us_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """A US number written in one of the common formats, and its 10 national digits."""
    area = draw(st.integers(200, 999))
    exchange = draw(st.integers(200, 999))
    line = draw(st.integers(0, 9999))
    fmt = draw(st.sampled_from(_US_FORMATS))
    written = fmt.format(a=area, e=exchange, n=f"{line:04d}")
    return written, f"{area}{exchange}{line:04d}"


_words = st.text(alphabet="abcdefghij XYZ,:;()<>[]!?'\"", max_size=12)


@settings(max_examples=200, deadline=None)
@given(number=us_numbers(), before=_words, after=_words, fmt=st.sampled_from(["json", "console"]))
def test_us_numbers_never_reach_a_log_line(
    number: tuple[str, str], before: str, after: str, fmt: str
) -> None:
    """Whatever the format and surrounding words, a US number is masked in both renderers."""
    written, national = number
    text = f"{before} {written} {after}"
    buffer = io.StringIO()
    configure_logging(fmt, stream=buffer)
    get_logger("t").info("inbound_received", body=text, nested={"list": [text, {"deep": text}]})
    logging.getLogger("twilio.http_client").warning("POST Body=%s", text)
    out = buffer.getvalue()
    assert written not in out
    assert national not in out
    if fmt == "json":
        structured, stdlib = _json_lines(buffer)
        assert structured["body"] == mask_text(text)
        assert structured["nested"] == {"list": [mask_text(text), {"deep": mask_text(text)}]}
        assert stdlib["event"] == f"POST Body={mask_text(text)}"
    else:
        assert out.count(mask_text(written)) >= 2  # the event value and the stdlib message
        assert f"POST Body={mask_text(text).rstrip()}" in out


@settings(max_examples=200, deadline=None)
@given(address=st.emails())
def test_email_addresses_never_reach_a_log_line(address: str) -> None:
    """Any valid e-mail address is logged as its first character, ***, and the domain."""
    local, domain = address.rsplit("@", 1)
    buffer = io.StringIO()
    configure_logging("json", stream=buffer)
    get_logger("t").info("email_sent", to=address, note=f"sent to {address} ok")
    logging.getLogger("smtplib").warning("RCPT TO:<%s>", address)
    lines = _json_lines(buffer)
    assert lines[0]["to"] == f"{local[0]}***@{domain}"
    assert lines[0]["note"] == f"sent to {local[0]}***@{domain} ok"
    assert lines[1]["event"] == f"RCPT TO:<{local[0]}***@{domain}>"
    if len(local) > 1 and local[1:] != "***":  # else the masked form is the address itself
        for line in lines:
            assert address not in json.dumps(line, ensure_ascii=False)


def test_recurring_events_are_masked_every_time_and_keep_their_timestamp() -> None:
    """The masking caches never let a number through on a later event, and the ISO time stays."""
    buffer = io.StringIO()
    configure_logging("json", stream=buffer)
    log = get_logger("drip.fire")
    for number in ("+16175550123", "+16175550124", "+16175550123"):
        log.info("send_decided", decision="sent", to=number, reason=f"sent to {number}")
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert [line["to"] for line in lines] == ["+1******0123", "+1******0124", "+1******0123"]
    assert [line["reason"] for line in lines] == [f"sent to {line['to']}" for line in lines]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", line["timestamp"]) for line in lines)


# --- the standard library's path: every handler sees every event -----------------------------


@contextlib.contextmanager
def _sole_handler() -> Iterator[None]:
    """Root without pytest's capture handlers, as in a worker: drip's handler is the only one.

    Inside the test's body: pytest adds its handlers to the root logger for the call itself.
    """
    root = logging.getLogger()
    others = [h for h in root.handlers if type(h).__name__ != "_DripHandler"]
    for handler in others:
        root.removeHandler(handler)
    try:
        yield
    finally:
        for handler in others:
            root.addHandler(handler)


def _events(log: Any) -> None:
    log.info("send_decided", send_id=42, decision="sent", footer=True, to="+16175550123",
             reason="sent to dana@example.com", nested={"phones": ["617-555-0124"]})  # fmt: skip
    log.warning("send_record_retry", send_id=42, attempt=1, error="OperationalError")
    log.info("manual_text %s", "617-555-0125")
    log.debug("below_the_level", to="+16175550126")


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_line_is_the_same_and_masked_whatever_other_handlers_there_are(fmt: str) -> None:
    """With drip's handler alone or beside another, each event writes the same masked line."""
    with _sole_handler():
        alone, beside = io.StringIO(), io.StringIO()
        configure_logging(fmt, stream=alone)
        _events(get_logger("drip.services.fire.batch"))
        configure_logging(fmt, stream=beside)
        extra = logging.NullHandler()
        logging.getLogger().addHandler(extra)
        try:
            _events(get_logger("drip.services.fire.batch"))
        finally:
            logging.getLogger().removeHandler(extra)
        lines = _STAMP.sub("T", alone.getvalue())
        assert lines == _STAMP.sub("T", beside.getvalue())
        assert len(lines.splitlines()) == 3  # the debug event is below the level
        assert "+1******0123" in lines
        assert "d***@example.com" in lines
        assert "***-***-0124" in lines
        assert "***-***-0125" in lines
        assert "617555" not in lines


def test_a_handler_patched_as_sentry_patches_call_handlers_sees_warnings_and_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Logger.callHandlers wrapped as Sentry's logging integration does sees drip's events, masked."""
    seen: list[logging.LogRecord] = []
    original = logging.Logger.callHandlers

    def sentry_patched(self: logging.Logger, record: logging.LogRecord) -> None:
        # sentry_sdk.integrations.logging: record, then hand over to the original.
        if record.levelno >= logging.WARNING:
            seen.append(record)
        original(self, record)

    monkeypatch.setattr(logging.Logger, "callHandlers", sentry_patched)
    with _sole_handler():
        buffer = io.StringIO()
        configure_logging("json", stream=buffer)
        log = get_logger("drip.services.fire.batch")
        log.info("send_decided", send_id=1)
        log.warning("send_record_retry", send_id=2, to="+16175550123")
        try:
            raise RuntimeError("provider down")
        except RuntimeError:
            log.exception("send_crashed", send_id=3)
        log.error("database_error", error="OperationalError")
    assert [r.levelname for r in seen] == ["WARNING", "ERROR", "ERROR"]
    assert [r.name for r in seen] == ["drip.services.fire.batch"] * 3
    events = [r.msg for r in seen]
    assert all(isinstance(e, dict) for e in events)
    assert [e["event"] for e in events] == ["send_record_retry", "send_crashed", "database_error"]
    assert events[0]["to"] == "+1******0123"
    assert seen[1].exc_info is not None and seen[1].exc_info[0] is RuntimeError
    assert [line["send_id"] for line in _json_lines(buffer)[:3]] == [1, 2, 3]


def test_the_level_filters_and_other_handlers_are_the_standard_librarys() -> None:
    """logging.disable, a logger's filter or own handler, and propagate=False are obeyed."""
    with _sole_handler():
        buffer, own = io.StringIO(), io.StringIO()
        configure_logging("json", stream=buffer)
        log = get_logger("drip.quiet")
        logging.disable(logging.INFO)
        try:
            log.info("disabled_event")
        finally:
            logging.disable(logging.NOTSET)
        stdlib = logging.getLogger("drip.quiet")
        stdlib.addFilter(lambda record: False)
        log.info("filtered_event")
        stdlib.filters.clear()
        handler = logging.StreamHandler(own)
        stdlib.addHandler(handler)
        stdlib.propagate = False
        try:
            log.info("own_handler_event", to="+16175550123")
        finally:
            stdlib.removeHandler(handler)
            stdlib.propagate = True
        log.info("after_event")
        assert [line["event"] for line in _json_lines(buffer)] == ["after_event"]
        assert "own_handler_event" in own.getvalue()
        assert "+1******0123" in own.getvalue()


def test_an_exception_event_keeps_its_masked_traceback() -> None:
    """An exception event's traceback is rendered and masked."""
    with _sole_handler():
        buffer = io.StringIO()
        configure_logging("json", stream=buffer)
        try:
            raise ValueError("refused +16175550127")
        except ValueError:
            get_logger("drip.fire").exception("send_crashed", send_id=3)
        [line] = _json_lines(buffer)
        assert line["send_id"] == 3
        assert "ValueError: refused +1******0127" in line["exception"]


def test_a_library_record_is_masked_whole() -> None:
    """A standard-library record (Celery, SQLAlchemy) is masked: message, extras and traceback."""
    with _sole_handler():
        buffer = io.StringIO()
        configure_logging("json", stream=buffer)
        try:
            raise ValueError("refused dana@example.com")
        except ValueError:
            logging.getLogger("celery.worker").error(
                "task for %s failed", "+16175550128", exc_info=True, extra={"who": "617-555-0129"}
            )
        [line] = _json_lines(buffer)
        assert line["event"] == "task for +1******0128 failed"
        assert line["who"] == "***-***-0129"
        assert "d***@example.com" in line["exception"]
        assert "_record" not in line and "_from_structlog" not in line


class _BrokenStream(io.StringIO):
    """A stream whose writes fail, as a full disk or a closed pipe."""

    def write(self, text: str) -> int:
        raise OSError("no space left on device")


def test_a_failing_write_does_not_fail_the_caller(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As StreamHandler.emit: a write that fails is reported on stderr, the caller carries on."""
    configure_logging("json", stream=_BrokenStream())
    with _sole_handler():
        get_logger("drip.fire").info("send_decided", send_id=7)
    assert "Logging error" in capsys.readouterr().err


class _Shown:
    """An object with its own structlog form, as a JSON value the encoder cannot take."""

    def __structlog__(self) -> str:
        return "shown"


def test_the_json_line_is_json_dumps_of_the_event() -> None:
    """The JSON renderer's line is json.dumps of the event, with structlog's fallback."""
    from structlog.processors import JSONRenderer

    from drip.logging import _json_dumps

    event = {"event": "send_decided", "n": 1, "ok": True, "x": None, "f": 0.5, "é": "ü"}
    assert JSONRenderer(serializer=_json_dumps)(None, "info", event) == json.dumps(
        event, default=repr
    )
    assert JSONRenderer(serializer=_json_dumps)(None, "info", {"o": _Shown()}) == '{"o": "shown"}'
    assert _json_dumps({"b": 1, "a": 2}, sort_keys=True) == '{"a": 2, "b": 1}'
