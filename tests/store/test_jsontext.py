"""The store's JSON text (`syncd.store.jsontext`): compact orjson where it is exact, json.dumps
where it is not, and every engine reading both back equal."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text

from syncd.store import jsontext


@dataclass
class Point:
    x: int
    y: int


CASES: list[tuple[str, Any, str | None]] = [
    # (what, value, the exact text written, or None: json.dumps's text)
    ("null", None, "null"),
    ("compact, UTF-8 kept", {"a": [1, 2.5, "é"], "b": True}, '{"a":[1,2.5,"é"],"b":true}'),
    ("integer beyond 64 bits", {"n": 2**70}, None),
    ("key that is not a string", {1: "x"}, None),
    ("lone surrogate", {"s": "\ud800"}, None),
    ("NaN", {"f": math.nan}, None),
    ("infinity in a list", [1, -math.inf], None),
]


@pytest.mark.parametrize(("what", "value", "written"), CASES, ids=[c[0] for c in CASES])
def test_dumps_is_orjson_where_exact_else_json_dumps(what: str, value: Any, written: str | None) -> None:
    out = jsontext.dumps(value)
    assert out == (json.dumps(value) if written is None else written)
    back = jsontext.loads(out)
    if what == "NaN":
        assert math.isnan(back["f"])
    else:
        assert back == json.loads(json.dumps(value))


@pytest.mark.parametrize(
    "raw",
    [
        '{"n": 1180591620717411303424}',
        "[1,-1180591620717411303424]",
        "[18446744073709551616,-9223372036854775809]",  # just past orjson's 64 bits, 20 and 19 digits
        "1180591620717411303424",
        '{"f": NaN}',
        '{"a": [1, "\\u00e9"], "id": "103456789012345678901"}',
    ],
)
def test_loads_reads_what_json_dumps_wrote(raw: str) -> None:
    for text_ in (raw, raw.encode()):
        assert repr(jsontext.loads(text_)) == repr(json.loads(raw))


@pytest.mark.parametrize(
    "value", [{"at": datetime(2026, 1, 1)}, [Point(1, 2)]], ids=["datetime", "dataclass"]
)
def test_what_json_dumps_refuses_is_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        jsontext.dumps(value)


def test_engines_write_compact_text_and_read_old_rows(engine: Engine) -> None:
    """A JSON column written through the engine holds jsontext's text; a row written as
    json.dumps wrote it (before this codec) reads back equal."""
    from sqlmodel import Session, select

    from syncd.store.models import SyncRun

    with Session(engine) as s:
        s.add(SyncRun(directory="d", trigger="cli", counts={"é": [1, 2]}))
        s.commit()
    with engine.begin() as c:
        raw = c.execute(text("SELECT CAST(counts AS TEXT) FROM sync_runs")).scalar_one()
        assert raw == '{"é":[1,2]}'
        c.execute(text("UPDATE sync_runs SET counts = :v"), {"v": json.dumps({"é": 2**70, "x": [1.5]})})
    with Session(engine) as s:
        run = s.exec(select(SyncRun)).one()
        assert run.counts == {"é": 2**70, "x": [1.5]}
