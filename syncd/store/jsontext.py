"""The text of the store's JSON columns: what every engine writes and reads them with.

`dumps` writes compact JSON with orjson (no blanks after separators, non-ASCII characters
kept as UTF-8), about five times faster than `json.dumps`. A value orjson cannot encode
exactly (an integer beyond 64 bits, a key that is not a string, a lone surrogate, a float
that is not finite) is written by `json.dumps` instead, as SQLAlchemy's default would write
it; so is a datetime or dataclass, which `json.dumps` refuses as before. One difference is
left: a `uuid.UUID` is written as its string, where `json.dumps` raises.

`loads` reads with orjson, and with `json.loads` what orjson refuses (`NaN`) or would read
differently: orjson reads an integer beyond 64 bits as a float, so text with a run of 19
digits or more goes to `json.loads` (so does a string holding such a run, e.g. a Google id:
read the same, only slower). Either way the value read back equals the value written, so
rows written before this module (by `json.dumps`) and after read the same.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

_FALLBACK_DUMPS = json.dumps
#: datetimes and dataclasses are refused (then `json.dumps` raises TypeError for them, as before)
#: instead of written as orjson would write them
_AS_JSON_DUMPS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
#: bytes → b"0" for an ASCII digit, b"x" for anything else: a run of `_LONG` in the result is
#: a number that may not fit 64 bits (or such a run inside a string), found in C
_DIGITS = bytes(48 if 48 <= b <= 57 else 120 for b in range(256))
_LONG = b"0" * 19


def dumps(value: Any) -> str:
    """`value` as JSON text that `loads` (and `json.loads`) reads back equal."""
    if value is None:
        return "null"
    try:
        out = orjson.dumps(value, option=_AS_JSON_DUMPS)
    except (TypeError, orjson.JSONEncodeError):
        return _FALLBACK_DUMPS(value)
    if b"null" in out and _has_odd_float(value):  # orjson writes NaN and ±inf as null
        return _FALLBACK_DUMPS(value)
    return out.decode()


def loads(raw: str | bytes) -> Any:
    """The value of JSON text `raw` (as `json.loads` reads it)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if _LONG not in data.translate(_DIGITS):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw)


def _has_odd_float(value: Any) -> bool:
    if type(value) is float:
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_odd_float(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_odd_float(v) for v in value)
    return False
