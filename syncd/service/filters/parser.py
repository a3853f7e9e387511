"""A hand-written parser for SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2).

Grammar (ABNF of the RFC, with `and` binding tighter than `or`):

    FILTER    = attrExp / logExp / valuePath / *1"not" "(" FILTER ")"
    valuePath = attrPath "[" valFilter "]"          ; valFilter: FILTER without valuePath
    attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
    attrPath  = [URI ":"] ATTRNAME *1subAttr
    compValue = false / null / true / number / string   ; JSON literals
    PATH      = attrPath / valuePath [subAttr]

Keywords, operators and literals are case-insensitive; whitespace between tokens is free-form.
A URN prefix is everything up to the last ':' of the path (attribute names hold no ':').
Inside `[...]` paths are bare sub-attribute names. Every malformed input raises InvalidFilter
(InvalidPath for `parse_path`) naming the column (1-based) and the offending token.

Limits: at most MAX_LENGTH characters and MAX_DEPTH nested groups (parentheses, `not`, `[...]`);
chains of `and`/`or` are folded into balanced trees, so no input drives recursion deeper than
about 3 * MAX_DEPTH + log2(terms) Python frames.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from syncd.service.errors import InvalidFilter, InvalidPath
from syncd.service.filters.ast import (
    COMPARE_OPS,
    And,
    AttrPath,
    Compare,
    Filter,
    Not,
    Or,
    PatchPath,
    Present,
    Value,
    ValuePath,
)
from syncd.service.limits import bad_char

MAX_LENGTH = 10_000  # characters
MAX_DEPTH = 32  # nested (), not(), [] groups; SQLite's parser overflows near 40

_ATTRNAME = r"[A-Za-z$][A-Za-z0-9_$-]*"
_NAME_RE = re.compile(rf"({_ATTRNAME})(?:\.({_ATTRNAME}))?")
_URN_RE = re.compile(r"urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:\S+", re.IGNORECASE)
_SUB_RE = re.compile(rf"\.({_ATTRNAME})")
_NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_PUNCT = "()[]"
_WORD_END = set(_PUNCT) | {'"'}


@dataclass(frozen=True)
class _Tok:
    kind: str  # "(" ")" "[" "]" "str" "word" "end"
    text: str  # the source text of the token
    pos: int  # 0-based offset into the input
    value: str | None = None  # decoded value of a "str" token


def _tokenize(text: str, start: int = 0) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = start, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in _PUNCT:
            toks.append(_Tok(ch, ch, i))
            i += 1
        elif ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise InvalidFilter(f"unterminated string starting at column {i + 1}")
            raw = text[i : j + 1]
            toks.append(_Tok("str", raw, i, _decode_string(raw, i)))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in _WORD_END:
                j += 1
            toks.append(_Tok("word", text[i:j], i))
            i = j
    toks.append(_Tok("end", "", n))
    return toks


def _decode_string(raw: str, pos: int) -> str:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidFilter(f"invalid string at column {pos + 1}: {exc.msg}") from None
    if "\x00" in value:
        raise InvalidFilter(f"invalid string at column {pos + 1}: NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidFilter(f"invalid string at column {pos + 1}: unpaired surrogate") from None
    return value


def _literal(tok: _Tok) -> Value:
    if tok.kind == "str":
        bad = bad_char(tok.value, multiline=True) if isinstance(tok.value, str) else None
        if bad is not None:
            raise InvalidFilter(f"the string at column {tok.pos + 1} contains the control character {bad}")
        return tok.value
    if tok.kind == "word":
        low = tok.text.lower()
        if low in ("true", "false"):
            return low == "true"
        if low == "null":
            return None
        m = _NUMBER_RE.fullmatch(tok.text)
        if m:
            try:
                num: int | float = float(tok.text) if m.group(1) or m.group(2) else int(tok.text)
            except ValueError:  # an integer past Python's digit limit
                num = math.inf
            if isinstance(num, float) and not math.isfinite(num):
                raise InvalidFilter(f"number out of range at column {tok.pos + 1}: {tok.text!r}")
            return num
    raise InvalidFilter(f"expected a value (string, number, true, false or null) {_where(tok)}")


def _where(tok: _Tok) -> str:
    if tok.kind == "end":
        return "at end of input"
    shown = tok.text if len(tok.text) <= 40 else tok.text[:37] + "..."
    return f"at column {tok.pos + 1}, found {shown!r}"


def _attr_path(text: str, pos: int) -> AttrPath:
    """Split `[urn:]attr[.sub]`; raises InvalidFilter with the column of `text` (at `pos`)."""
    urn, sep, rest = text.rpartition(":")
    if sep and not _URN_RE.fullmatch(urn + ":" + "x"):
        raise InvalidFilter(f"invalid schema URN at column {pos + 1}: {urn!r}")
    m = _NAME_RE.fullmatch(rest)
    if not m:
        raise InvalidFilter(f"invalid attribute path at column {pos + 1}: {text!r}")
    return AttrPath(urn or None, m.group(1), m.group(2))


def _balanced(cls: type[And] | type[Or], items: list[Filter]) -> Filter:
    if len(items) == 1:
        return items[0]
    mid = len(items) // 2
    return cls(_balanced(cls, items[:mid]), _balanced(cls, items[mid:]))


class _Parser:
    def __init__(self, toks: list[_Tok]) -> None:
        self.toks = toks
        self.i = 0
        self.depth = 0
        self.in_brackets = False

    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def next(self) -> _Tok:
        tok = self.peek()
        self.i += 1
        return tok

    def expect(self, kind: str, what: str) -> _Tok:
        tok = self.next()
        if tok.kind != kind:
            raise InvalidFilter(f"expected {what} {_where(tok)}")
        return tok

    def _is_word(self, word: str, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok.kind == "word" and tok.text.lower() == word

    def enter(self, tok: _Tok) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise InvalidFilter(f"filter nested deeper than {MAX_DEPTH} levels at column {tok.pos + 1}")

    def filter(self) -> Filter:
        terms = [self.conjunction()]
        while self._is_word("or"):
            self.next()
            terms.append(self.conjunction())
        return _balanced(Or, terms)

    def conjunction(self) -> Filter:
        terms = [self.unary()]
        while self._is_word("and"):
            self.next()
            terms.append(self.unary())
        return _balanced(And, terms)

    def unary(self) -> Filter:
        tok = self.peek()
        if self._is_word("not") and self.peek(1).kind == "(":
            self.next()
            return Not(self.group())
        if tok.kind == "(":
            return self.group()
        if tok.kind == "word" and tok.text.lower() not in ("and", "or"):
            return self.attr_exp()
        raise InvalidFilter(f"expected an attribute path, '(' or 'not' {_where(tok)}")

    def group(self) -> Filter:
        opening = self.expect("(", "'('")
        self.enter(opening)
        inner = self.filter()
        self.expect(")", f"')' closing the '(' at column {opening.pos + 1}")
        self.depth -= 1
        return inner

    def attr_exp(self) -> Filter:
        tok = self.next()
        path = _attr_path(tok.text, tok.pos)
        if self.in_brackets and (path.urn or path.sub):
            raise InvalidFilter(f"inside [...] use a bare sub-attribute name {_where(tok)}")
        if self.peek().kind == "[":
            return ValuePath(path, self.bracket(tok, path))
        op_tok = self.next()
        op = op_tok.text.lower() if op_tok.kind == "word" else ""
        if op == "pr":
            return Present(path)
        if op not in COMPARE_OPS:
            raise InvalidFilter(f"expected an operator (eq ne co sw ew gt ge lt le pr) {_where(op_tok)}")
        return Compare(path, op, _literal(self.next()))

    def bracket(self, tok: _Tok, path: AttrPath) -> Filter:
        opening = self.next()
        if self.in_brackets:
            raise InvalidFilter(f"nested value filter at column {opening.pos + 1}")
        if path.sub:
            raise InvalidFilter(f"a value filter follows an attribute, not a sub-attribute {_where(tok)}")
        self.enter(opening)
        self.in_brackets = True
        inner = self.filter()
        self.expect("]", f"']' closing the '[' at column {opening.pos + 1}")
        self.in_brackets = False
        self.depth -= 1
        return inner

    def end(self) -> None:
        tok = self.peek()
        if tok.kind != "end":
            raise InvalidFilter(f"expected 'and', 'or' or the end of the filter {_where(tok)}")


def _check_text(text: object, error: type[InvalidFilter] | type[InvalidPath], what: str) -> str:
    if not isinstance(text, str):
        raise error(f"{what} must be a string")
    if len(text) > MAX_LENGTH:
        raise error(f"{what} longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise error(f"empty {what}")
    bad = bad_char(text, multiline=True)  # tab and newline: whitespace between tokens
    if bad is not None:
        raise error(f"{what} contains the control character {bad}; only printable text is accepted")
    return text


def parse_filter(text: str) -> Filter:
    """Parse a SCIM filter expression; raises InvalidFilter (message names column and token)."""
    _check_text(text, InvalidFilter, "filter")
    parser = _Parser(_tokenize(text))
    result = parser.filter()
    parser.end()
    return result


def parse_path(text: str) -> PatchPath:
    """Parse a PATCH operation path (RFC 7644 §3.5.2); raises InvalidPath when malformed.

    `emails[type eq "work"].value` → PatchPath(None, "emails", Compare(...), "value");
    `urn:...:enterprise:2.0:User:manager.value` → PatchPath(urn, "manager", None, "value").
    """
    _check_text(text, InvalidPath, "path")
    try:
        return _parse_path(text.strip())
    except InvalidFilter as exc:
        raise InvalidPath(f"invalid path {text!r}: {exc.detail}") from None


def _parse_path(text: str) -> PatchPath:
    head, bracket, _ = text.partition("[")
    if any(c.isspace() or c in '"()]' for c in head):
        raise InvalidFilter(f"invalid attribute path {head!r}")
    path = _attr_path(head, 0)
    if not bracket:
        return PatchPath(path.urn, path.attr, None, path.sub)
    parser = _Parser(_tokenize(text, start=len(head)))
    flt = parser.bracket(parser.peek(), path)
    closing = parser.toks[parser.i - 1]
    tail = parser.next()
    if tail.kind == "end":
        return PatchPath(path.urn, path.attr, flt, None)
    m = _SUB_RE.fullmatch(tail.text) if tail.kind == "word" else None
    if not m or tail.pos != closing.pos + 1 or parser.peek().kind != "end":
        raise InvalidFilter(f"expected '.subAttribute' or the end after ']' {_where(tail)}")
    return PatchPath(path.urn, path.attr, flt, m.group(1))
