"""Topological order with cycle detection, iterative (a 100,000-node chain is fine).

Used by pipelines and YAML specs alike: one definition of "a cycle" and one order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class CycleError(ValueError):
    """``cycle`` is ``[a, b, ..., a]``: each node depends on the next."""

    def __init__(self, cycle: list[str]) -> None:
        super().__init__(" -> ".join(cycle))
        self.cycle = cycle


def toposort(deps: Mapping[str, Iterable[str]]) -> list[str]:
    """Nodes ordered so that every node comes after its dependencies.

    Order is deterministic: roots in mapping order, dependencies in their listed order
    (depth first). Dependencies that are not keys of ``deps`` are ignored (reported elsewhere).
    """
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in deps:
        if state.get(root) == 2:
            continue
        state[root] = 1
        path = [root]
        stack = [iter(deps[root])]
        while stack:
            for dep in stack[-1]:
                if dep not in deps:
                    continue
                mark = state.get(dep)
                if mark == 1:
                    raise CycleError([*path[path.index(dep) :], dep])
                if mark is None:
                    state[dep] = 1
                    path.append(dep)
                    stack.append(iter(deps[dep]))
                    break
            else:
                stack.pop()
                done = path.pop()
                state[done] = 2
                order.append(done)
    return order
