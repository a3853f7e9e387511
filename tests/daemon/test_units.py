"""Slots, systemd notify, log lines: the daemon's small parts, without a daemon."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
from datetime import UTC, datetime, timedelta

import pytest

from syncd.config import Schedule
from syncd.daemon import logging as dlog
from syncd.daemon.notify import notify, watchdog_interval
from syncd.daemon.scheduler import grace_for, period_at, slot_of, trigger_for


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "now", "slot"),
    [
        ("2s", "2026-01-01T10:00:03.5", "2026-01-01T10:00:02"),
        ("2s", "2026-01-01T10:00:04", "2026-01-01T10:00:04"),
        ("30m", "2026-01-01T10:59:59", "2026-01-01T10:30:00"),
        ("1h", "2026-01-01T00:00:00.000001", "2026-01-01T00:00:00"),
        ("7m", "2026-01-01T01:00:00", "2026-01-01T00:56:00"),  # epoch-aligned, not hour-aligned
        ("0 3 * * *", "2026-01-02T02:59:00", "2026-01-01T03:00:00"),
        ("0 3 * * *", "2026-01-02T03:00:00", "2026-01-02T03:00:00"),
        ("*/15 * * * *", "2026-01-01T10:44:59", "2026-01-01T10:30:00"),
        ("0 0 1 1 *", "2026-06-01T00:00:00", "2026-01-01T00:00:00"),
    ],
)
def test_slot_is_the_latest_fire_time_at_or_before_now(schedule: str, now: str, slot: str) -> None:
    assert slot_of(trigger_for(Schedule.parse(schedule)), at(now)) == at(slot)


def test_every_moment_of_a_slot_maps_to_that_slot() -> None:
    trig = trigger_for(Schedule.parse("90s"))
    start = at("2026-01-01T10:00:00")
    slots = {slot_of(trig, start + timedelta(seconds=s / 4)) for s in range(0, 360)}
    assert slots == {start}
    assert slot_of(trig, start + timedelta(seconds=90)) == start + timedelta(seconds=90)


def test_interval_slots_are_epoch_aligned() -> None:
    trig = trigger_for(Schedule.parse("90s"))
    slot = slot_of(trig, at("2026-01-01T10:00:10"))
    assert slot is not None and slot.timestamp() % 90 == 0
    assert period_at(trig, slot) == 90


def test_misfire_grace_is_half_the_period_capped() -> None:
    assert grace_for(Schedule.parse("2s")) == 1
    assert grace_for(Schedule.parse("60s")) == 30
    assert grace_for(Schedule.parse("1h")) == 300
    assert grace_for(Schedule.parse("*/2 * * * *")) == 60


@pytest.mark.parametrize("abstract", [False, True])
def test_notify_sends_the_state_to_the_notify_socket(tmp_path, abstract: bool) -> None:
    addr = f"@syncd-test-{os.getpid()}" if abstract else str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind("\0" + addr[1:] if abstract else addr)
        srv.settimeout(5)
        assert notify("READY=1\nSTATUS=ok", {"NOTIFY_SOCKET": addr})
        assert srv.recv(1024) == b"READY=1\nSTATUS=ok"


def test_notify_never_blocks_on_a_reader_that_stopped_reading(tmp_path) -> None:
    addr = str(tmp_path / "full.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind(addr)
        sent = [notify("WATCHDOG=1", {"NOTIFY_SOCKET": addr}) for _ in range(2000)]
    assert sent[0] and not sent[-1]  # the queue filled up: later pings are dropped, not waited on


def test_notify_without_a_socket_is_a_no_op(tmp_path) -> None:
    assert not notify("READY=1", {})
    assert not notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "absent.sock")})


def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "4000000"}) == 2.0
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}) == 2.0
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid() + 1)}) is None
    assert watchdog_interval({}) is None


def _capture(fmt: str, tty: bool) -> tuple[io.StringIO, logging.Logger]:
    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return tty

    stream = Stream()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(dlog.JsonFormatter() if dlog.use_json(stream, fmt) else dlog.HumanFormatter())
    handler.addFilter(dlog.ContextFilter())
    lg = logging.getLogger(f"test.daemon.{fmt}.{tty}")
    lg.handlers[:] = [handler]
    lg.propagate = False
    lg.setLevel(logging.INFO)
    return stream, lg


def test_json_lines_carry_run_and_request_ids() -> None:
    stream, lg = _capture("text", tty=False)
    lg.info("outside")
    with dlog.bind(request_id="req-1") as ctx:
        ctx.run_id = 42  # learnt mid-way, as a run learns its id
        lg.info("inside %s", "x", extra={"outcome": "applied"})
    a, b = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (a["run_id"], a["request_id"]) == (None, None)
    assert (b["run_id"], b["request_id"], b["msg"], b["outcome"]) == (42, "req-1", "inside x", "applied")


def test_a_tty_gets_human_lines_unless_json_is_configured() -> None:
    stream, lg = _capture("text", tty=True)
    with dlog.bind(run_id=7):
        lg.info("hello")
    assert "run=7 req=-" in stream.getvalue() and "hello" in stream.getvalue()
    stream, lg = _capture("json", tty=True)
    lg.info("hello")
    assert json.loads(stream.getvalue())["msg"] == "hello"


def test_tokens_and_bearer_credentials_are_masked() -> None:
    stream, lg = _capture("json", tty=False)
    secret = "syncd_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4"
    lg.info("got %s and header Bearer abcdefghijklmnop123 and SSWS00abcdefghijklmnop", secret)
    line = stream.getvalue()
    assert secret not in line and "abcdefghijklmnop123" not in line and "00abcdefghijklmnop" not in line
    assert "syncd_A1b2C3" in line  # the printable prefix stays, for finding the token


def test_human_log_lines_show_control_characters_from_names_as_escapes() -> None:
    """A TTY's log line carries IdP text (a login's error, a name in a message or an extra
    field) with its control characters visible, never as escape sequences a terminal runs."""
    record = logging.LogRecord("syncd.x", logging.WARNING, "", 0, "team %s", ("Eng\x1b[2J\u202e",), None)
    record.error = "bad \x9b31m answer"
    dlog.ContextFilter().filter(record)
    line = dlog.HumanFormatter().format(record)
    assert "\x1b" not in line and "\x9b" not in line and "\u202e" not in line
    assert "team Eng\\x1b[2J\\u202e" in line and "error=bad \\x9b31m answer" in line


def test_json_log_lines_escape_the_controls_json_leaves_raw() -> None:
    """json.dumps escapes C0 only; DEL, C1 and bidi overrides from a name reached a terminal
    tailing the log raw. Escaped as \\uXXXX the line is still the same JSON."""
    record = logging.LogRecord("syncd.x", logging.INFO, "", 0, "team %s", ("a\x7fb\x9bc\u202ed\x1b",), None)
    dlog.ContextFilter().filter(record)
    line = dlog.JsonFormatter().format(record)
    assert not re.search("[\x00-\x1f\x7f-\x9f\u202a-\u202e]", line), line
    assert json.loads(line)["msg"] == "team a\x7fb\x9bc\u202ed\x1b"
