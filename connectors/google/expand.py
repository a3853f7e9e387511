"""Transitive user membership over nested groups, cycle-safe, each group's set built once.

Google lists *direct* members only; a member of type GROUP contributes all of its own users.
Groups in a nesting cycle have the same transitive set. The graph is condensed into strongly
connected components (Tarjan's algorithm, iterative: no recursion limit) and the sets are built
children-first, so the cost is O(groups + edges + total set sizes).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping


def transitive_users(direct_users: Mapping[str, Collection[str]],
                     direct_groups: Mapping[str, Collection[str]]) -> dict[str, frozenset[str]]:
    """For every group in `direct_users`, the users reachable through nested groups.

    `direct_groups[g]` are the nested groups of `g`; a nested group absent from `direct_users`
    (never read) contributes nothing. Cycles are allowed. A group with no nested group gets its
    `direct_users` set itself when that is a frozenset (no copy), else a frozen copy.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: dict[str, frozenset[str]] = {}
    kids_of: dict[str, list[str]] = {}

    def children(g: str) -> list[str]:
        kids = kids_of.get(g)
        if kids is None:
            kids = kids_of[g] = [c for c in direct_groups.get(g, ()) if c in direct_users]
        return kids

    for root in direct_users:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]  # (node, next child position)
        while work:
            node, pos = work[-1]
            if pos == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            kids = children(node)
            if pos < len(kids):
                work[-1] = (node, pos + 1)
                child = kids[pos]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:  # node roots a component: pop it, build its set
                if stack[-1] == node and not kids:  # alone, no nested groups: its own set
                    stack.pop()
                    on_stack.discard(node)
                    own = direct_users[node]
                    result[node] = own if isinstance(own, frozenset) else frozenset(own)
                    continue
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                users: set[str] = set()
                inside = set(component)
                for g in component:
                    users.update(direct_users[g])
                    for c in children(g):
                        if c not in inside:  # finished earlier: children-first order
                            users.update(result[c])
                frozen = frozenset(users)
                for g in component:
                    result[g] = frozen
    return result
