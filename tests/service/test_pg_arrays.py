"""`syncd.service.pg_arrays.text_array`: PostgreSQL reads the text back as the same strings, in
order, whatever they hold (quotes, backslashes, separators, braces, the word NULL, blanks)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from syncd.service.pg_arrays import text_array
from tests.conftest import migrated_store

pytestmark = pytest.mark.postgres

CASES = [
    [],
    [""],
    ["a"],
    ["3f0c-uuid", "b"],
    ['a"', "b"],
    ['x","y', "z"],
    ["back\\slash", '"', "\\", ""],
    [" sp ", "NULL", "null", "{}", "{a,b}", "a,b", "é日本", "tab\tnl\n"],
]


@pytest.mark.parametrize("values", CASES)
def test_text_array_round_trips(tmp_path: Path, values: list[str]) -> None:
    with migrated_store("postgres", tmp_path) as eng, eng.connect() as c:
        got = c.execute(text("SELECT CAST(:p AS varchar[])"), {"p": text_array(values)}).scalar_one()
    assert got == values
