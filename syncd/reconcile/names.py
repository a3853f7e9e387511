"""Names a pull gives the teams and users of one directory. Pure functions, no I/O.

Team names. IdPs allow several groups of one name; a directory's teams do not (unique by
`fold(displayName)`). The rule depends only on the directory's state (the stored teams and
what the IdP says), never on which groups one read happened to carry, so a delta read and a
full read of the same IdP state give every team the same name:

- the *base name* of a group is its IdP name; of a stored team the snapshot does not carry, its
  stored name; in both, a trailing `" (<its external id>)"` or `" (<its external id> <n>)"`
  (what this rule appends) is not part of the base name;
- a *live* team keeps its base name when no other live team has the same base name and no
  *held* name equals it; otherwise it is named `"<base> (<external id>)"` (and, if even that is
  taken, `"<base> (<external id> <n>)"` with the smallest free n >= 2);
- *held* names are those of stored teams that left (archived, or leaving in this run): they
  keep their names and are never renamed by this rule.

User names. A userName moves from one user to another only within one run's plan, and a stored
user keeps its name unless the plan gives it a new one; `settle_user_names` drops the renames and
creates that would leave two users with one name, whatever the order apply writes them in
(apply parks the names a permutation needs, see `syncd.service.bulk.parked_names`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from syncd.service.resource import fold


def base_name(name: str, external_id: str) -> str:
    """`name` without the suffixes `team_names` appends for `external_id` (string operations
    only: a delta read computes this for every stored team)."""
    head = f" ({external_id}"
    while name.endswith(")"):
        i = name.rfind(head)
        tail = name[i + len(head) : -1]
        if i <= 0 or not name[:i].strip():
            break
        if tail and not (tail[0] == " " and tail[1:].isascii() and tail[1:].isdigit()):
            break
        name = name[:i]
    return name


def team_names(live: Mapping[str, str], held: Iterable[str]) -> dict[str, str]:
    """The unique team name of each live team (external id → base name), given the names held
    by teams that left; see the module rule. Unique by `fold` among live and held names."""
    taken = {fold(n) for n in held}
    count = Counter(fold(b) for b in live.values())
    out: dict[str, str] = {}
    for ext in sorted(live):
        key = fold(live[ext])
        if count[key] == 1 and key not in taken:
            out[ext] = live[ext]
    taken |= {fold(n) for n in out.values()}
    for ext in sorted(live):
        if ext in out:
            continue
        name, n = f"{live[ext]} ({ext})", 2
        while fold(name) in taken:
            name, n = f"{live[ext]} ({ext} {n})", n + 1
        out[ext] = name
        taken.add(fold(name))
    return out


def settle_user_names(
    stored: Mapping[str, str], wanted: Mapping[str, str], fixed: Iterable[str] = ()
) -> set[str]:
    """The external ids whose wanted userName cannot be written in this run.

    `stored` maps each stored user of the directory to its userName, `wanted` each user the
    snapshot carries to the IdP's; `fixed` are name keys held by users the pull does not manage.
    A user whose name changes (by `fold`) claims its wanted name; every other stored user (and
    every fixed name) keeps claiming its stored one. A name claimed twice is given to
    the user that keeps it, and to none of the users that wanted to move onto it; a user refused
    its move claims its stored name again (which may refuse another move), until no name is
    claimed twice. Swaps, chains and cycles of renames, and creates under names freed in the same
    run, all go through.
    """
    get = stored.get
    moving = {e for e, n in wanted.items() if n != (was := get(e)) and (was is None or fold(n) != fold(was))}
    refused: set[str] = set()
    if not moving:  # no name changes hands: nothing can be claimed twice
        return refused
    while True:
        claims: dict[str, list[str]] = {k: [""] for k in fixed}  # "": no external id, never moves
        for e, n in stored.items():
            if e not in moving or e in refused:
                claims.setdefault(fold(n), []).append(e)
        for e in moving - refused:
            claims.setdefault(fold(wanted[e]), []).append(e)
        more = {e for es in claims.values() if len(es) > 1 for e in es if e in moving and e not in refused}
        if not more:
            return refused
        refused |= more
