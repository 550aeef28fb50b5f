"""The graph builder's budgets: how many layer entries a spec expands to, and how deeply blocks and Sequentials nest.

Counted as the builder goes (every entry it expands, a bypassed one and a block or Sequential use included, and
every copy a ``repeat`` makes), and estimated before a repeat is expanded: a block repeated ``n`` times expands to
at least ``n`` times the entries its layers always expand to (nested repeats multiplied, entries with ``when``
counted once), so five lines of nested repeats are refused at the outer repeat, before any work, instead of
after minutes. Limits: `convcalc.spec.limits` (``MAX_LAYERS``, ``MAX_NESTING``).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from ..errors import GraphError, Location, SpecError, brief
from . import limits
from .graph import SEQUENTIAL
from .limits import plural

if TYPE_CHECKING:
    from .load import Spec


class Expansion:
    """The running count of one build, and the lower bounds it checks a repeat against."""

    def __init__(self, spec: "Spec"):
        self.blocks = spec.blocks
        self.layers = 0
        self.depth = 0
        self.walked = 0                                    # values walked to substitute $references
        self._per_use: dict[str, int] = {}
        self._per_copy: dict[int, tuple[Any, int]] = {}    # id -> (a block's layers, kept alive; their entries)
        self._refers: dict[int, tuple[Any, bool]] = {}    # id -> (the value, kept alive; whether it refers)

    def _refuse(self, loc: Location | None, trace: tuple[str, ...], detail: str = "") -> GraphError:
        return GraphError(f"the spec expands to more than {limits.MAX_LAYERS:,} layers (nested repeats multiply)"
                          f"{detail}; no real network comes near", loc, trace[:3])

    def add(self, count: int, loc: Location | None, trace: tuple[str, ...]) -> None:
        """``count`` more layer entries (one entry, or the copies of a repeated layer)."""
        self.layers += count
        if self.layers > limits.MAX_LAYERS:
            raise self._refuse(loc, trace)

    def check_repeat(self, count: int, layers: Any, loc: Location | None, trace: tuple[str, ...]) -> None:
        """Before ``count`` copies of the entries ``layers`` (a block's) are expanded: refuse when they alone would
        pass the budget."""
        known = self._per_copy.get(id(layers))
        if known is None:              # (a block used many times is counted once per build)
            known = self._per_copy[id(layers)] = (layers, self.entries(layers, frozenset()))
        per_copy = known[1]
        if self.layers + count * per_copy > limits.MAX_LAYERS:
            raise self._refuse(loc, trace, f": {plural(count, 'repetition')} of at least"
                                           f" {plural(per_copy, 'layer')} here")

    def entries(self, layers: Any, active: frozenset[str]) -> int:
        """At least how many entries ``layers`` expands to (a literal ``repeat`` multiplies; an entry with ``when``,
        or whose type or repeat is an expression, counts once). Stops counting past the budget."""
        if not isinstance(layers, list):
            return 1
        total = 0
        for item in layers:
            total += self._entry(item, active)
            if total > limits.MAX_LAYERS:
                break
        return max(total, 1)

    def _entry(self, item: Any, active: frozenset[str]) -> int:
        if not isinstance(item, dict) or "when" in item or not isinstance(item.get("type"), str):
            return 1
        repeat = item.get("repeat")
        copies = repeat if isinstance(repeat, int) and not isinstance(repeat, bool) and repeat >= 1 else 1
        kind = item["type"].lower()
        if kind == SEQUENTIAL:
            return 1 + self.entries(item.get("layers"), active)
        block = self.blocks.get(kind)
        if block is None:
            return copies
        if kind in active:
            return 1          # a block that uses itself: the builder names the cycle
        if kind not in self._per_use:
            self._per_use[kind] = self.entries(block.layers, active | {kind})
        return 1 + min(copies * self._per_use[kind], limits.MAX_LAYERS + 1)

    def refers(self, value: Any) -> bool:
        """Whether ``value`` holds a ``$`` reference anywhere (each list and mapping is looked through once)."""
        if isinstance(value, str):
            return "$" in value
        if not isinstance(value, (list, dict)):
            return False
        known = self._refers.get(id(value))
        if known is None:
            parts = value.values() if isinstance(value, dict) else value
            known = self._refers[id(value)] = (value, any(self.refers(part) for part in parts))
        return known[1]

    def walk(self, count: int, loc: Location | None, trace: tuple[str, ...]) -> None:
        """``count`` more values walked to substitute references (a large value with references, repeated)."""
        self.walked += count
        if self.walked > limits.MAX_SUBSTITUTED:
            raise GraphError(f"substituting $references walks more than {limits.MAX_SUBSTITUTED:,} values (a large"
                             " value that holds references, copied by blocks and repeats)", loc, trace[:3])

    @contextlib.contextmanager
    def nested(self, loc: Location | None, trace: tuple[str, ...]) -> Iterator[None]:
        """One more level of blocks and Sequentials inside one another."""
        self.depth += 1
        try:
            if self.depth > limits.MAX_NESTING:
                raise GraphError(f"blocks and Sequentials nest more than {limits.MAX_NESTING} deep here", loc,
                                 trace[:3])
            yield
        finally:
            self.depth -= 1


def check_overrides(overrides: Mapping[str, Any]) -> None:
    """Values given for a spec's args from outside it (``--set``, a library call) must be what a spec could say:
    null, true/false, numbers (integers within int64), strings, lists and mappings, within the YAML budgets."""
    for key, value in overrides.items():
        problem = value_problem(value)
        if problem:
            raise SpecError(f"--set {key}: {problem}")


def value_problem(value: Any) -> str | None:
    """What makes ``value`` something a spec could not hold (None when it could): a type YAML's core schema has
    no word for, an integer past int64, more values or deeper nesting than the YAML budgets allow."""
    count = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        count += 1
        if count > limits.MAX_YAML_NODES:
            return f"the value holds more than {limits.MAX_YAML_NODES:,} values"
        if depth > limits.MAX_YAML_DEPTH:
            return f"the value nests more than {limits.MAX_YAML_DEPTH} deep"
        if item is None or isinstance(item, (bool, str)):
            continue
        if isinstance(item, int):
            if abs(item) > limits.MAX_INTEGER:
                return f"the integer {brief(item, 24)} is too large (the limit is {limits.MAX_INTEGER:,})"
        elif isinstance(item, float):
            continue
        elif isinstance(item, (list, tuple)):
            pending.extend((part, depth + 1) for part in item)
        elif isinstance(item, dict):
            for key, part in item.items():
                if not isinstance(key, (str, int)) or isinstance(key, bool):
                    return f"a mapping key must be a plain value, got {brief(key)}"
                pending.append((part, depth + 1))
        else:
            return f"{brief(str(item), 40)} is not a value a spec can hold (null, true/false, a number, a string," \
                   " a list or a mapping; quote it to pass text)"
    return None


__all__ = ["Expansion", "check_overrides", "value_problem"]
