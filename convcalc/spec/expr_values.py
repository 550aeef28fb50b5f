"""The values of the expression language: its error, what a value is in the spec's words, and the size budgets
every value it builds is checked against (`convcalc.spec.limits`). Shared by `expr` and `expr_calls`."""

from __future__ import annotations

from typing import Any

from . import limits


class ExprError(ValueError):
    """An expression could not be evaluated; the message says why."""


def kind(value: Any) -> str:
    """What a value is, in the spec's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "a value"


def value_size(value: Any, limit: int | None = None) -> int:
    """The size of a value as the budgets count it: characters of a string, items of a list (nested ones by their
    own items, shared ones each time they appear), 1 for anything else. Counting stops past ``limit``."""
    if isinstance(value, str):           # (a scalar: without the walk below, whose closure is a reference cycle)
        return max(1, len(value))
    if not isinstance(value, (list, tuple, dict)):
        return 1
    limit = limits.MAX_VALUE_SIZE if limit is None else limit
    known: dict[int, int] = {}

    def size(item: Any, depth: int) -> int:
        if isinstance(item, str):
            return max(1, len(item))
        if not isinstance(item, (list, tuple, dict)):
            return 1
        if id(item) in known:
            return known[id(item)]
        if depth > limits.MAX_YAML_DEPTH + limits.MAX_EXPRESSION_DEPTH:
            return limit + 1
        parts = [*item.keys(), *item.values()] if isinstance(item, dict) else item
        total = 0
        for part in parts:
            total += size(part, depth + 1)
            if total > limit:
                break
        known[id(item)] = total = max(1, total)
        return total

    return size(value, 0)


def _check_size(count: int, what: str = "the result", *sizes: int) -> None:
    """Refuse ``count`` items past the budget; ``sizes`` are the `value_size` counts it was made from (one past the
    budget means "more", as `value_size` stops counting there)."""
    limit = limits.MAX_VALUE_SIZE
    if count > limit:
        amount = f"more than {limit:,}" if any(size > limit for size in sizes) else f"{count:,}"
        raise ExprError(f"{what} would hold {amount} items (at most {limit:,})")


def _check_integer(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > limits.MAX_INTEGER:
        raise ExprError(f"the result {str(value)[:20]}... is too large (the limit is {limits.MAX_INTEGER:,})")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float))


def _is_whole(value: Any) -> bool:
    return isinstance(value, int)
