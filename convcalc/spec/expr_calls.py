"""Indexing, slicing and the functions of the expression language (`FUNCTIONS`), with Python's meaning.

``min``, ``max``, ``abs``, ``round``, ``int``, ``len`` behave as Python's builtins on numbers, strings and lists;
``make_divisible(v, divisor, min_value=None)`` (also spelled ``_make_divisible``) is torchvision's helper, digit for
digit. The graph builder adds ``shape`` (`convcalc.spec.shapes`). A function is called with its evaluated
positional and keyword arguments, ``function(args, keywords)``.

Budgets (`convcalc.spec.limits`): a call or a slice counts the items it reads or makes as evaluation steps, every
integer result is checked against ``MAX_INTEGER`` (``round(1e308)`` is refused, not returned), and the arguments
that would make Python itself slow are refused or answered without the work (``round(5, -10**18)`` is 0, as Python
says, without computing ``10**10**18``).
"""

from __future__ import annotations

import ast
import math
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from .expr_values import ExprError, _check_integer, _is_number, kind, value_size

if TYPE_CHECKING:
    from .expr import _Evaluator

Function = Callable[[list, dict], Any]


def _bind(name: str, params: Sequence[str], required: int, args: list, keywords: dict) -> list:
    """Python's binding of ``args`` and ``keywords`` to ``params`` (the first ``required`` must be given)."""
    if len(args) > len(params):
        raise ExprError(f"{name}() takes at most {len(params)} argument{'s' if len(params) != 1 else ''},"
                        f" got {len(args)}")
    values: list[Any] = [*args, *[_MISSING] * (len(params) - len(args))]
    for key, value in keywords.items():
        if key not in params:
            raise ExprError(f"{name}() has no argument '{key}' (its arguments: {', '.join(params)})")
        position = params.index(key)
        if values[position] is not _MISSING:
            raise ExprError(f"{name}() got '{key}' twice")
        values[position] = value
    for position in range(required):
        if values[position] is _MISSING:
            raise ExprError(f"{name}() needs '{params[position]}'")
    return [None if value is _MISSING else value for value in values]


_MISSING = object()


def _number(name: str, value: Any, what: str = "a number") -> int | float:
    if not _is_number(value):
        raise ExprError(f"{name}() needs {what}, got {kind(value)}")
    return value


def _finite_int(name: str, value: float) -> int:
    """``int(value)`` of a float, refused when it is infinite or not a number."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ExprError(f"{name}() cannot make a whole number of {value}")
    return _check_integer(int(value))


def _extreme(name: str, pick: Callable[..., Any]) -> Function:
    def extreme(args: list, keywords: dict) -> Any:
        if keywords:
            raise ExprError(f"{name}() takes no keyword arguments here")
        if not args:
            raise ExprError(f"{name}() needs at least one value")
        items = args
        if len(args) == 1:
            if not isinstance(args[0], (list, str)):
                raise ExprError(f"{name}() of one value needs a list, got {kind(args[0])}")
            items = list(args[0])
            if not items:
                raise ExprError(f"{name}() of an empty list")
        kinds = {"number" if _is_number(item) else kind(item) for item in items}
        if len(kinds) > 1:
            shown = sorted(kind(item) for item in items)
            raise ExprError(f"{name}() cannot compare {shown[0]} with {shown[-1]}")
        try:
            return pick(items)
        except (TypeError, ValueError, RecursionError):
            raise ExprError(f"{name}() cannot compare these lists (their items differ in kind)") from None
    return extreme


def _abs(args: list, keywords: dict) -> Any:
    (value,) = _bind("abs", ("x",), 1, args, keywords)
    return _check_integer(abs(_number("abs", value)))


def _round(args: list, keywords: dict) -> Any:
    value, digits = _bind("round", ("number", "ndigits"), 1, args, keywords)
    _number("round", value)
    if digits is None:
        if isinstance(value, float) and not math.isfinite(value):
            raise ExprError(f"round() cannot make a whole number of {value}")
        return _check_integer(round(value))
    if not isinstance(digits, int):
        raise ExprError(f"round() needs a whole number of digits, got {kind(digits)}")
    if isinstance(value, float):
        return round(value, max(min(digits, 400), -400))       # past +-400 digits a float is kept or 0.0, as Python
    if digits < -20:
        return 0                   # |value| < 10**19: Python rounds it to 0 (without computing 10**-digits)
    return _check_integer(round(int(value), digits))


def _int(args: list, keywords: dict) -> int:
    (value,) = _bind("int", ("x",), 1, args, keywords)
    return _finite_int("int", _number("int", value))


def _len(args: list, keywords: dict) -> int:
    (value,) = _bind("len", ("x",), 1, args, keywords)
    if not isinstance(value, (list, str, dict)):
        raise ExprError(f"len() needs a list, a string or a mapping, got {kind(value)}")
    return len(value)


def make_divisible(v: int | float, divisor: int | float, min_value: int | float | None = None) -> int | float:
    """torchvision.models._utils._make_divisible: ``v`` rounded to the nearest multiple of ``divisor``, at least
    ``min_value`` (default ``divisor``), and not more than 10 % below ``v``."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:       # make sure that rounding down does not go down by more than 10%
        new_v += divisor
    return new_v


def _make_divisible(args: list, keywords: dict) -> int | float:
    v, divisor, min_value = _bind("make_divisible", ("v", "divisor", "min_value"), 2, args, keywords)
    for value in (v, divisor, *(() if min_value is None else (min_value,))):
        _number("make_divisible", value, "numbers")
    if divisor == 0:
        raise ExprError("make_divisible() needs a divisor other than 0")
    if isinstance(v + divisor / 2, float) and not math.isfinite(v + divisor / 2):
        raise ExprError(f"make_divisible() cannot round {v}")
    try:
        return _check_integer(make_divisible(v, divisor, min_value))
    except OverflowError:
        raise ExprError("the result is too large") from None


FUNCTIONS: Mapping[str, Function] = {
    "min": _extreme("min", min), "max": _extreme("max", max), "abs": _abs, "round": _round, "int": _int,
    "len": _len, "make_divisible": _make_divisible, "_make_divisible": _make_divisible,
}


def call(evaluator: "_Evaluator", node: ast.Call) -> Any:
    """``name(args...)``: one of the evaluator's functions, its arguments evaluated (and counted) first."""
    name = node.func.id          # type: ignore[attr-defined]
    function = evaluator.functions.get(name)
    if function is None:
        known = ", ".join(sorted(n for n in evaluator.functions if not n.startswith("_")))
        raise ExprError(f"'{name}' is not a function of the expression language (functions: {known})")
    if any(isinstance(arg, ast.Starred) for arg in node.args) or any(k.arg is None for k in node.keywords):
        raise ExprError(f"'*' and '**' are not allowed in a call of {name}()")
    args = [evaluator.evaluate(arg) for arg in node.args]
    keywords = {k.arg: evaluator.evaluate(k.value) for k in node.keywords}
    evaluator.count(sum(value_size(value) for value in (*args, *keywords.values())))
    return function(args, keywords)


def _whole(value: Any, what: str) -> int | None:
    if value is not None and not isinstance(value, int):
        shown = f" ({value!r})" if isinstance(value, float) else ""
        raise ExprError(f"{what} must be a whole number, got {kind(value)}{shown}")
    return value


def subscript(evaluator: "_Evaluator", node: ast.Subscript) -> Any:
    """``value[index]`` (a list, a string or a mapping) and ``value[lower:upper:step]`` (a list or a string)."""
    value = evaluator.evaluate(node.value)
    if isinstance(node.slice, ast.Slice):
        bounds = [None if part is None else _whole(evaluator.evaluate(part), "a slice bound")
                  for part in (node.slice.lower, node.slice.upper, node.slice.step)]
        if not isinstance(value, (list, str)):
            raise ExprError(f"'[:]' slices a list or a string, got {kind(value)}")
        if bounds[2] == 0:
            raise ExprError("a slice step cannot be zero")
        result = value[slice(*bounds)]
        evaluator.count(len(result))
        return result
    index = evaluator.evaluate(node.slice)
    if isinstance(value, dict):
        if not isinstance(index, (str, int)) or index not in value:
            keys = ", ".join(map(str, list(value)[:10])) or "none"
            raise ExprError(f"the mapping has no key {str(index)[:40]!r} (keys: {keys})")
        return value[index]
    if not isinstance(value, (list, str)):
        raise ExprError(f"'[]' indexes a list, a string or a mapping, got {kind(value)}")
    _whole(index, "an index")
    if not -len(value) <= index < len(value):
        shown = str(index) if abs(index) < 10 ** 20 else str(index)[:20] + "..."
        raise ExprError(f"index {shown} is out of range for {kind(value)} of {len(value)}"
                        f" {'item' if isinstance(value, list) else 'character'}{'' if len(value) == 1 else 's'}")
    return value[index]


__all__ = ["FUNCTIONS", "Function", "call", "make_divisible", "subscript"]
