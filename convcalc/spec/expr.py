"""Block-argument substitution: ``$name`` and ``${expression}`` in spec values.

A string that is exactly ``$name`` or ``${expr}`` is replaced by the value itself (any type);
``${...}`` inside a longer string is interpolated as text (``conv${index}``). Expressions are
a small safe subset of Python, evaluated from the AST with Python's meaning: numbers, strings, booleans, None,
lists, names of block arguments, arithmetic (+ - * / // % **, and ``%`` formatting of strings), comparisons,
``and``/``or`` (short-circuit, giving one of their operands: ``0 or 5`` is 5), ``not``, ``a if cond else b``,
indexing and slicing (``rates[0]``, ``shape[1:]``) and calls of a fixed set of functions (`FUNCTIONS`: ``min``,
``max``, ``abs``, ``round``, ``int``, ``len``, torchvision's ``make_divisible``; the graph builder adds ``shape``).
Nothing is imported, and nothing else is called or looked up as an attribute.

Every cost is bounded before it is paid (`convcalc.spec.limits`): the text of an expression, how deeply it nests,
how many operations it evaluates, the size of every string and list it builds (checked before building it:
``'x' * n`` is refused from ``len('x') * n``), and the magnitude of every integer (``10**10**10`` is refused from
the size of its operands, not computed). Errors say what is wrong in the spec's words.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
import re
from typing import Any, Callable, Mapping

from . import limits
from .expr_values import ExprError, _check_integer, _check_size, _is_number, _is_whole, kind, value_size
from .expr_calls import FUNCTIONS, call, subscript

_WHOLE_NAME = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
_WHOLE_EXPR = re.compile(r"^\$\{([^{}]*)\}$")
_EMBEDDED = re.compile(r"\$\{([^{}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")

_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
            ast.Pow: "**", ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
            ast.USub: "-", ast.UAdd: "+"}
_ARITHMETIC: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}
# '%' formatting: one conversion with its optional mapping key, flags, width and precision
_CONVERSION = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.?)", re.DOTALL)

MAX_INTEGER = limits.MAX_INTEGER
MAX_SEQUENCE = limits.MAX_VALUE_SIZE


class _Evaluator:
    """One expression's evaluation over ``names``, counting its steps."""

    def __init__(self, names: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]] | None = None):
        self.names = names
        self.functions = {**FUNCTIONS, **(functions or {})}
        self.steps = 0

    def count(self, steps: int) -> None:
        """``steps`` more operations (a call or a slice counts the items it reads or makes)."""
        self.steps += steps
        if self.steps > limits.MAX_EXPRESSION_STEPS:
            raise ExprError(f"the expression takes more than {limits.MAX_EXPRESSION_STEPS:,} steps")

    def evaluate(self, node: ast.AST) -> Any:
        self.count(1)
        if isinstance(node, ast.Expression):
            return self.evaluate(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
            if isinstance(node.value, int) and not isinstance(node.value, bool) and \
                    abs(node.value) > limits.MAX_INTEGER:
                raise ExprError(f"the integer {str(node.value)[:20]}... is too large (the limit is"
                                f" {limits.MAX_INTEGER:,})")
            return node.value
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self.evaluate(element) for element in node.elts]
            sizes = [value_size(item) for item in items]
            _check_size(sum(sizes), "the result", *sizes)
            return items
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            left, right = self.evaluate(node.left), self.evaluate(node.right)
            if isinstance(node.op, ast.Mod) and isinstance(left, str):
                # '%d-%d' % (a, b): a written tuple gives one value per conversion; a list is one value
                return _format(left, tuple(right) if isinstance(node.right, ast.Tuple) else right)
            return self.binary(node.op, left, right)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
            value = self.evaluate(node.operand)
            if isinstance(node.op, ast.Not):
                return not value
            if not _is_number(value):
                raise ExprError(f"'{_SYMBOLS[type(node.op)]}' needs a number, got {kind(value)}")
            return -value if isinstance(node.op, ast.USub) else +value
        if isinstance(node, ast.BoolOp):
            value = self.evaluate(node.values[0])
            for operand in node.values[1:]:       # Python's meaning: stop at the deciding operand, give it back
                if (not value) if isinstance(node.op, ast.And) else bool(value):
                    return value
                value = self.evaluate(operand)
            return value
        if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
            left = self.evaluate(node.left)
            for op, comparator in zip(node.ops, node.comparators):
                right = self.evaluate(comparator)
                if not self.compare(op, left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return self.evaluate(node.body if self.evaluate(node.test) else node.orelse)
        if isinstance(node, ast.Subscript):
            return subscript(self, node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return call(self, node)
        raise ExprError(f"'{ast.unparse(node)}' is not allowed in an expression")

    def name(self, name: str) -> Any:
        if name in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[name]
        if name in ("true", "false"):
            return name == "true"
        if name not in self.names:
            known = ", ".join(sorted(self.names)) or "none"
            raise ExprError(f"unknown name '{name}' (known: {known})")
        return self.names[name]

    @staticmethod
    def compare(op: ast.cmpop, left: Any, right: Any) -> bool:
        if not isinstance(op, (ast.Eq, ast.NotEq)):
            comparable = (_is_number(left) and _is_number(right)) or (isinstance(left, str) and isinstance(right, str))
            if not comparable and not (isinstance(left, list) and isinstance(right, list)):
                raise ExprError(f"'{_SYMBOLS[type(op)]}' cannot compare {kind(left)} with {kind(right)}")
        try:
            return bool(_COMPARE[type(op)](left, right))
        except (TypeError, ValueError, RecursionError):
            raise ExprError(f"'{_SYMBOLS[type(op)]}' cannot compare these lists (their items differ in kind)") \
                from None

    def binary(self, op: ast.operator, left: Any, right: Any) -> Any:
        symbol = _SYMBOLS[type(op)]
        if isinstance(op, ast.Add) and (isinstance(left, str) and isinstance(right, str) or
                                        isinstance(left, list) and isinstance(right, list)):
            sizes = value_size(left), value_size(right)
            _check_size(sum(sizes), "the result", *sizes)
            return left + right
        if isinstance(op, ast.Mult) and (isinstance(left, (str, list)) or isinstance(right, (str, list))):
            sequence, count = (left, right) if isinstance(left, (str, list)) else (right, left)
            if not _is_whole(count):
                raise ExprError(f"'*' repeats {kind(sequence)} a whole number of times, got {kind(count)}"
                                + (f" ({count!r})" if isinstance(count, float) else ""))
            size = value_size(sequence)
            _check_size(size * max(count, 0), "the result", size)
            return sequence * count
        if not (_is_number(left) and _is_number(right)):
            raise ExprError(f"'{symbol}' cannot combine {kind(left)} with {kind(right)}")
        if isinstance(op, ast.Pow):
            return _power(left, right)
        try:
            result = _ARITHMETIC[type(op)](left, right)
        except ZeroDivisionError:
            raise ExprError("division by zero") from None
        except OverflowError:
            raise ExprError("the result is too large") from None
        if isinstance(op, ast.Div) and isinstance(result, float) and result.is_integer() and \
                abs(result) <= limits.MAX_INTEGER:
            result = int(result)  # 'planes / 2' on whole numbers stays an int, as a channel count must
        return _check_integer(result)


def _power(base: int | float, exponent: int | float) -> int | float:
    """``base ** exponent``: refused before it is computed when an integer result would pass the limit."""
    if _is_whole(base) and _is_whole(exponent) and exponent > 0 and abs(base) > 1 and \
            (abs(base).bit_length() - 1) * exponent > limits.MAX_INTEGER.bit_length():
        raise ExprError(f"the result of {base} ** {exponent} is too large (the limit is {limits.MAX_INTEGER:,})")
    if base == 0 and exponent < 0:
        raise ExprError("zero cannot be raised to a negative power")
    try:
        result = base ** exponent
    except OverflowError:
        raise ExprError("the result is too large") from None
    except ZeroDivisionError:
        raise ExprError("zero cannot be raised to a negative power") from None
    if isinstance(result, complex):
        raise ExprError(f"{base} ** {exponent} has no real value")
    return _check_integer(result)


def _format(template: str, values: Any) -> str:
    """``template % values`` (printf-style), its length bounded before formatting."""
    budget = limits.MAX_VALUE_SIZE
    length = len(template)
    for match in _CONVERSION.finditer(template):
        for field in match.group(1), match.group(2):
            if field == "*":
                raise ExprError("a '*' width or precision is not supported in a % format")
            if field and (len(field) > 6 or int(field) > budget):
                raise ExprError(f"the % format asks for {int(field) if len(field) <= 30 else field[:30] + '...'}"
                                f" characters (at most {budget:,})")
            if field:
                length += int(field)
    size = value_size(values)
    _check_size(length + 32 * size, "the result", size)
    try:
        result = template % values
    except (TypeError, ValueError, KeyError, OverflowError, IndexError):
        given = "its values" if isinstance(values, tuple) else kind(values)
        raise ExprError(f"the % format '{template[:60]}' does not fit {given}") from None
    _check_size(len(result))
    return result


def _depth(tree: ast.AST) -> int:
    """How deeply the expression's operations nest (without recursion)."""
    deepest = 0
    pending = [(tree, 1)]
    while pending:
        node, depth = pending.pop()
        deepest = max(deepest, depth)
        if deepest > limits.MAX_EXPRESSION_DEPTH:
            break
        pending.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def evaluate(source: str, names: Mapping[str, Any],
             functions: Mapping[str, Callable[..., Any]] | None = None) -> Any:
    """Evaluate one expression over ``names``; ``functions`` adds callable names to `FUNCTIONS`."""
    text = source.strip()
    if len(text) > limits.MAX_EXPRESSION_CHARS:
        raise ExprError(f"the expression is {len(text):,} characters long (at most {limits.MAX_EXPRESSION_CHARS:,})")
    shown = text if len(text) <= 80 else text[:77] + "..."
    try:
        tree, depth = _parsed(text, limits.MAX_EXPRESSION_DEPTH)
    except (SyntaxError, ValueError, OverflowError):
        raise ExprError(f"'{shown}' is not a valid expression") from None
    except (RecursionError, MemoryError):
        raise ExprError(f"'{shown}' nests too deeply (at most {limits.MAX_EXPRESSION_DEPTH} levels)") from None
    if depth > limits.MAX_EXPRESSION_DEPTH:
        raise ExprError(f"'{shown}' nests too deeply (at most {limits.MAX_EXPRESSION_DEPTH} levels)")
    return _Evaluator(names, functions).evaluate(tree)


@functools.lru_cache(maxsize=4096)
def _parsed(text: str, depth_limit: int) -> tuple[ast.Expression, int]:
    """The syntax tree of ``text`` and how deeply it nests (up to one past ``depth_limit``), parsed once: a block
    repeated N times evaluates the same expressions N times. The tree is only read."""
    tree = ast.parse(text, mode="eval")
    return tree, _depth(tree)


def has_reference(value: Any) -> bool:
    return isinstance(value, str) and "$" in value


def _text_of(value: Any) -> str:
    """A value put into text (``conv${index}``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    size = value_size(value)
    _check_size(size, "the value put into the text", size)
    return str(value)


_LITERAL_NAMES = frozenset(("True", "False", "None", "true", "false"))
NOT_PLAIN = object()          # `plain_name`'s answer for anything but a known ``$name``


def plain_name(value: str, names: Mapping[str, Any]) -> Any:
    """The value of ``value`` when it is exactly ``$name`` for a name in ``names`` (the commonest reference: what
    `substitute` gives, without parsing or an evaluator), else `NOT_PLAIN` (``substitute`` then says what it is)."""
    whole = _WHOLE_NAME.match(value)
    if whole is None:
        return NOT_PLAIN
    name = whole.group(1)
    if name in _LITERAL_NAMES or len(name) > limits.MAX_EXPRESSION_CHARS or name not in names:
        return NOT_PLAIN
    return names[name]


def substitute(value: Any, names: Mapping[str, Any],
               functions: Mapping[str, Callable[..., Any]] | None = None) -> Any:
    """Substitute ``$name`` / ``${expr}`` in a scalar string; other values are returned unchanged."""
    if not has_reference(value):
        return value
    whole = _WHOLE_NAME.match(value) or _WHOLE_EXPR.match(value)
    if whole:
        return evaluate(whole.group(1), names, functions)
    budget = len(value) + limits.MAX_VALUE_SIZE     # interpolation may add this many characters to the text
    pieces: list[str] = []
    total = 0
    position = 0
    for match in _EMBEDDED.finditer(value):
        piece = _text_of(evaluate(match.group(1) or match.group(2), names, functions))
        total += match.start() - position + len(piece)
        if total > budget:
            raise ExprError(f"the text would grow past {budget:,} characters")
        pieces += [value[position:match.start()], piece]
        position = match.end()
    pieces.append(value[position:])
    return "".join(pieces)
