"""Rules of the spec format the graph builder (`convcalc.spec.build`) applies at three points:

* `copy_names`: the names of a ``repeat``'s copies when they are not ``name.0, name.1, ...`` under a group: a
  ``names:`` pattern (``names: "denselayer${index + 1}"``, torchvision's DenseNet), and, inside a ``Sequential``,
  an unnamed repeat whose copies continue the Sequential's numbering (``features.2``, ``features.3``, as
  ``nn.Sequential(*blocks)`` numbers them: MobileNetV2's ``features.N``). Every copy takes a Sequential position.
* `bypass_target`: what a bypassed entry (``when: false``) stands for: its input; for a merge (several inputs, a
  conditional residual ``{type: Add, from: [input, conv], when: $use_res_connect}``) the entry before it, which must
  be one of its inputs.
* `note_arg_shadow`: a block argument left to the block's own default while a top-level arg of the same name has
  another value (the default wins; `convcalc lint` rule CC209 reports it).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Callable

from ..errors import Location, SpecError, brief
from .graph import ArgShadow
from .load import BlockDef
from .marked_yaml import MarkedDict
from .shapes import ScopeNames

Substitute = Callable[[Any, Any, "Location | None", str], Any]

_SPACE_OR_BRACKET = re.compile(r"[\s\[\]]")     # \s: what str.isspace() calls a space


def check_name(local: Any, loc: Location | None, trace: tuple[str, ...], what: str = "'name'") -> str:
    """A layer's local name: a non-empty string (or an integer) without spaces, control characters or brackets."""
    if not isinstance(local, (str, int)) or isinstance(local, bool) or str(local) in ("", "input"):
        raise SpecError(f"{what} must be a non-empty string other than 'input', got {brief(local)}", loc, trace)
    local = str(local)
    if not local.isprintable() or _SPACE_OR_BRACKET.search(local):
        raise SpecError(f"{what} {brief(local)} may not contain spaces, control characters or brackets", loc, trace)
    return local


def copy_names(item: dict, local: str | None, repeat: int | None, inline: bool, scope: Any, substitute: Substitute,
               where: Callable[[str], Location | None]) -> list[str] | None:
    """The local names of a repeat's copies named one by one (None: the usual ``name.0, name.1, ...``)."""
    pattern = item.get("names")
    if pattern is None and not (repeat is not None and local is None and scope.sequential and not inline):
        return None
    if pattern is not None:
        if repeat is None:
            raise SpecError("'names' names the copies of a 'repeat'; this entry has none", where("names"), scope.trace)
        if local is not None:
            raise SpecError("'names' names each copy; drop 'name'", where("name"), scope.trace)
        if inline:
            raise SpecError("'names' and 'inline' cannot be combined (inline copies continue the enclosing"
                            " numbering)", where("inline"), scope.trace)
        if not isinstance(pattern, (str, int)) or isinstance(pattern, bool):
            raise SpecError(f"'names' must be a name pattern such as \"layer${{index + 1}}\", got {brief(pattern)}",
                            where("names"), scope.trace)
    names: list[str] = []
    copy_scope, variables = _with_variables(scope, {"index": 0, "repeat": repeat})
    for index in range(repeat or 0):
        position = scope.take_position()
        if pattern is None:
            names.append(str(position))
            continue
        variables["index"] = index
        name = check_name(substitute(pattern, copy_scope, where("names"), "'names'"), where("names"), scope.trace,
                          "a name made by 'names'")
        names.append(name)
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SpecError(f"'names' gives two copies the name '{name}' (use ${{index}} in the pattern)",
                            where("names"), scope.trace)
        seen.add(name)
    return names


def _with_variables(scope: Any, extra: dict) -> tuple[Any, dict]:
    """``scope`` with ``extra`` variables added (reading shapes as it does: `convcalc.spec.shapes.ScopeNames`), and
    the dict of its variables (to change ``index`` in)."""
    current = scope.variables
    if isinstance(current, ScopeNames):
        variables = {**current.variables, **extra}
        return replace(scope, variables=ScopeNames(variables, current.shapes, current.input_ref, current.outer)), \
            variables
    variables = {**current, **extra}
    return replace(scope, variables=variables), variables


def bypass_target(inputs: tuple[str, ...], previous: str, loc: Location | None, trace: tuple[str, ...]) -> str:
    """What a bypassed entry stands for: its one input, or (a merge) the entry before it among its inputs."""
    if len(inputs) == 1:
        return inputs[0]
    if previous in inputs:
        return previous
    raise SpecError("a bypassed layer with several inputs stands for the layer before it, which must be one of its"
                    " inputs (a conditional residual: {type: Add, from: [input, conv], when: ...} right after"
                    " 'conv')", loc, trace)


def note_arg_shadow(found: list[ArgShadow], block: BlockDef, argument: str, value: Any, top_level: Any,
                    loc: Location | None) -> None:
    """Record that ``block`` used its default ``value`` for ``argument`` where the top-level arg is ``top_level``."""
    if _same(value, top_level):
        return
    arguments = block.source.get("args")
    defined = arguments.where(argument) if isinstance(arguments, MarkedDict) else block.location
    found.append(ArgShadow(block.name, argument, value, top_level, loc, defined))


def _same(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b) or (isinstance(a, (int, float)) and isinstance(b, (int, float))
                                                     and not isinstance(a, bool) and a == b)
    except Exception:      # values a spec holds compare cleanly; anything else counts as different
        return False


__all__ = ["bypass_target", "check_name", "copy_names", "note_arg_shadow"]
