"""Lists of strings as PostgreSQL array parameters, sent as one text value.

psycopg dumps a list parameter element by element in Python; the bulk paths send lists of
100k ids (a member batch's users), where that is most of the statement's client time. A
statement takes the text instead as `CAST(:p AS varchar[])`: the same strings, in order.
"""

from __future__ import annotations

from collections.abc import Iterable


def text_array(values: Iterable[str]) -> str:
    """`values` as the text of a PostgreSQL array (`CAST(:p AS varchar[])` reads it back as the
    same strings, in order). Built with one join, instead of the driver's list dumper, which
    costs a Python call per element (~50x more for the 100k ids of a member batch)."""
    values = list(values)
    joined = '","'.join(values)
    if "\\" in joined or joined.count('"') != 2 * (len(values) - 1):  # an element holds \\ or "
        joined = '","'.join(v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return '{"' + joined + '"}' if values else "{}"
