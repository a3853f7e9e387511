"""Column widths and line breaks for tables at the terminal's width.

Rich, left to itself, squeezes a table that is too wide by cutting every column, words and
timestamps included, and drops columns to nothing. Here the widths are chosen first and every
cell is broken into lines before Rich sees it:
- fixed columns (ids, timestamps, counts, short words) keep their natural width;
- the others share what is left, each getting at most what it needs, narrow ones first;
- a cell breaks between words; a word wider than its column (a long user name, an email, a
  directory) breaks after `.`, `-`, `@`, `_`, `/` or `:` inside it, and only a run of
  letters wider than the whole column is cut, never a shorter one;
- when even the narrowest layout does not fit, columns marked `hide` are left out, highest
  first (the caller says which, so --json or a wider terminal shows them).
Nothing is truncated: a long name is shown whole, over several lines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.cells import cell_len

#: a piece of a word: up to and including a character after which it may break (a no-break
#: space joins what should stay on one line when it fits, as "+30 users" in a list of counts)
_PIECE = re.compile("[^.\\-@_/:\u00a0]*[.\\-@_/:\u00a0]|[^.\\-@_/:\u00a0]+")
#: the narrowest a flexible column is made (unless its widest cell is narrower)
MIN_FLEX = 10


def overhead(columns: int) -> int:
    """Characters a `box.SIMPLE_HEAD`, `pad_edge=False` table adds to its columns' widths: an
    edge on each side and, between two columns, a padding cell, the divider and a padding cell."""
    return 2 + 3 * max(columns - 1, 0)


def wrap(text: str, width: int) -> list[str]:
    """`text` as lines of at most `width` cells, broken as the module docstring says."""
    width = max(width, 1)
    lines: list[str] = []
    line: str | None = None
    for word in text.split(" "):
        for i, piece in enumerate(_pieces(word, width)):
            glue = "" if i else " "  # the pieces of one word join without a space
            if line is None:
                line = piece
            elif cell_len(line) + cell_len(glue) + cell_len(piece) <= width:
                line += glue + piece
            else:
                lines.append(line)
                line = piece
    lines.append(line or "")
    return [ln.replace("\u00a0", " ") for ln in lines]  # a no-break space only ever guides breaks


def _pieces(word: str, width: int) -> list[str]:
    if cell_len(word) <= width:
        return [word]
    out: list[str] = []
    for piece in _PIECE.findall(word):
        while cell_len(piece) > width:  # a run with no break in it, wider than the column
            cut = _fit(piece, width)
            out.append(piece[:cut])
            piece = piece[cut:]
        out.append(piece)
    return out


def _fit(text: str, width: int) -> int:
    """How many leading characters of `text` fit in `width` cells (at least one)."""
    n = 0
    while n < len(text) and cell_len(text[: n + 1]) <= width:
        n += 1
    return max(n, 1)


def natural(cells: Sequence[str], title: str) -> int:
    """The width a column needs to show every cell and its title on one line each."""
    return max([cell_len(title), *(cell_len(c) for c in cells)])


def minimum(cells: Sequence[str], title: str) -> int:
    """The narrowest a flexible column goes: its title's longest word, at least `MIN_FLEX`
    (or its natural width when narrower)."""
    longest_title_word = max(cell_len(w) for w in title.split(" "))
    return min(natural(cells, title), max(MIN_FLEX, longest_title_word))


def longest_word(cells: Sequence[str], title: str) -> int:
    """The widest word (between spaces) of a column's cells and title: the width below which
    a word must break inside."""
    return max(cell_len(w) for c in [title, *cells] for w in c.split(" "))


def widths(
    needs: Sequence[int],
    words: Sequence[int],
    mins: Sequence[int],
    fixed: Sequence[bool],
    caps: Sequence[int | None],
    room: int,
) -> list[int] | None:
    """Each column's width within `room` (the terminal's width less `overhead`), or None when
    the fixed columns and the flexible ones' minimums do not fit.

    `needs` are the natural widths, `words` the longest words, `mins` the minimums, `caps` the
    widest a flexible column grows (None: no cap). Fixed columns get their need. The flexible
    ones get, as far as the room allows, first their minimum, then their longest word (so a
    word breaks inside only when it must), then their need; each step is shared out narrowest
    first, so one wide column cannot starve the others."""
    want = [n if f or c is None else min(n, c) for n, f, c in zip(needs, fixed, caps, strict=True)]
    if sum(want) <= room:
        return want
    flex = [i for i, f in enumerate(fixed) if not f]
    left = room - sum(want[i] for i, f in enumerate(fixed) if f)
    floor = {i: min(mins[i], want[i]) for i in flex}
    if left < sum(floor.values()):
        return None
    word = {i: max(floor[i], min(words[i], want[i])) for i in flex}
    out = list(want)
    base, target = (word, want) if sum(word.values()) <= left else (floor, word)
    extra = left - sum(base[i] for i in flex)
    pending = sorted(flex, key=lambda i: target[i] - base[i])
    while pending:
        i = pending.pop(0)
        out[i] = base[i] + min(target[i] - base[i], extra // (len(pending) + 1))
        extra -= out[i] - base[i]
    return out
