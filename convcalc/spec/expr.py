"""Block-argument substitution: ``$name`` and ``${expression}`` in spec values.

A string that is exactly ``$name`` or ``${expr}`` is replaced by the value itself (any type);
``${...}`` inside a longer string is interpolated as text (``conv${index}``). Expressions are
a small safe subset of Python, evaluated from the AST: numbers, strings, booleans, None, lists,
names of block arguments, arithmetic (+ - * / // % **), comparisons, and/or/not, and
``a if cond else b``. Nothing is imported, called or looked up as an attribute.
"""

from __future__ import annotations

import ast
import operator
import re
from typing import Any, Mapping

_WHOLE_NAME = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
_WHOLE_EXPR = re.compile(r"^\$\{([^{}]*)\}$")
_EMBEDDED = re.compile(r"\$\{([^{}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


MAX_INTEGER = 2 ** 63 - 1
MAX_SEQUENCE = 10_000


class ExprError(ValueError):
    """An expression could not be evaluated; the message says why."""


def _evaluate(node: ast.AST, names: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, names)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        if node.id in ("true", "false"):
            return node.id == "true"
        if node.id not in names:
            known = ", ".join(sorted(names)) or "none"
            raise ExprError(f"unknown name '{node.id}' (known: {known})")
        return names[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_evaluate(element, names) for element in node.elts]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left, names), _evaluate(node.right, names)
        if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > 64:
            raise ExprError("exponent too large")
        if isinstance(node.op, ast.Mult) and (isinstance(left, (str, list)) or isinstance(right, (str, list))):
            count = right if isinstance(left, (str, list)) else left
            length = len(left) if isinstance(left, (str, list)) else len(right)
            if isinstance(count, int) and count * length > MAX_SEQUENCE:
                raise ExprError(f"the result would hold {count * length:,} items (at most {MAX_SEQUENCE:,})")
        try:
            result = _BINARY[type(node.op)](left, right)
        except (TypeError, ZeroDivisionError, OverflowError, ValueError, MemoryError) as exc:
            raise ExprError(str(exc) or type(exc).__name__) from None
        if isinstance(result, int) and not isinstance(result, bool) and abs(result) > MAX_INTEGER:
            raise ExprError(f"the result {str(result)[:20]}... is too large")
        if isinstance(node.op, ast.Div) and isinstance(result, float) and result.is_integer():
            result = int(result)  # 'planes / 2' on whole numbers stays an int, as a channel count must
        return result
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
        value = _evaluate(node.operand, names)
        if isinstance(node.op, ast.Not):
            return not value
        try:
            return -value if isinstance(node.op, ast.USub) else +value
        except TypeError as exc:
            raise ExprError(str(exc)) from None
    if isinstance(node, ast.BoolOp):
        values = [_evaluate(v, names) for v in node.values]
        if isinstance(node.op, ast.And):
            return all(values)
        return any(values)
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        left = _evaluate(node.left, names)
        for op, comparator in zip(node.ops, node.comparators):
            right = _evaluate(comparator, names)
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError as exc:
                raise ExprError(str(exc)) from None
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _evaluate(node.body if _evaluate(node.test, names) else node.orelse, names)
    raise ExprError(f"'{ast.unparse(node)}' is not allowed in an expression")


def evaluate(source: str, names: Mapping[str, Any]) -> Any:
    """Evaluate one expression over ``names``."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError:
        raise ExprError(f"'{source}' is not a valid expression") from None
    return _evaluate(tree, names)


def has_reference(value: Any) -> bool:
    return isinstance(value, str) and "$" in value


def substitute(value: Any, names: Mapping[str, Any]) -> Any:
    """Substitute ``$name`` / ``${expr}`` in a scalar string; other values are returned unchanged."""
    if not has_reference(value):
        return value
    whole = _WHOLE_NAME.match(value) or _WHOLE_EXPR.match(value)
    if whole:
        return evaluate(whole.group(1), names)

    def replace(match: re.Match) -> str:
        return str(evaluate(match.group(1) or match.group(2), names))

    return _EMBEDDED.sub(replace, value)
