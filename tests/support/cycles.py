"""Finding reference cycles: what only the garbage collector could free, and which of it is rudp's."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def cyclic(objects: list[object]) -> set[int]:
    """The ids of ``objects`` that lie on a reference cycle among them (Tarjan's strongly connected
    components, iterative: a component of two or more objects, or one that refers to itself)."""
    ids = {id(o): o for o in objects}
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    found: set[int] = set()
    counter = 0

    def successors(node: int) -> list[int]:
        return [id(r) for r in gc.get_referents(ids[node]) if id(r) in ids]

    for root in ids:
        if root in index:
            continue
        work: list[tuple[int, Iterator[int]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work.append((root, iter(successors(root))))
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors(child))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in successors(node):
                    found.update(component)
    return found


def rudp_objects_in_cycles(garbage: list[object]) -> list[str]:
    """The rudp objects (and bound methods of rudp objects) on a cycle among ``garbage``."""
    on_cycles = cyclic(garbage)
    names = []
    for obj in garbage:
        module = type(obj).__module__
        if id(obj) in on_cycles and module.startswith("rudp."):
            names.append(f"{module}.{type(obj).__qualname__}")
        elif id(obj) in on_cycles and type(obj).__name__ == "method":  # a bound method of a rudp object
            owner = type(getattr(obj, "__self__", None)).__module__
            if owner.startswith("rudp."):
                names.append(f"bound method of {owner}")
    return sorted(names)


@contextmanager
def collector_off() -> Iterator[list[object]]:
    """Collector off inside; at exit, every object only a collection frees goes into the list."""
    found: list[object] = []
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield found
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()


def check_no_rudp_cycles(scenario: Callable[[], None]) -> list[str]:
    """Run ``scenario`` with the collector off; the rudp objects its cycles left (names, sorted)."""
    with collector_off() as garbage:
        scenario()
    return rudp_objects_in_cycles(garbage)
