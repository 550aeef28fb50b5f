"""A layer entry's keys about its parameters: ``init:`` (hand-set values or an initialisation scheme) and ``tie:``
(the parameters are another layer's). Read by the graph builder (`convcalc.spec.build`); the values are checked
against the parameters' shapes when weights are made (`convcalc.execution.weights`).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from ..errors import Location, SpecError
from .graph import Node
from .marked_yaml import MarkedDict

WHOLE_LAYER = "*"     # the preset key of one ``init:`` value for the whole layer (a number or a scheme)

Substitute = Callable[[Any, Any, "Location | None", str], Any]


def preset_of(item: dict, scope: Any, loc: Location | None, substitute: Substitute) -> tuple[dict, dict]:
    """The layer's ``init:`` as (parameter name -> value, parameter name -> location), substituted: a mapping of
    parameter names to numbers, lists, filter names or schemes; or one number or scheme for the whole layer
    (stored under ``WHOLE_LAYER``)."""
    if "init" not in item:
        return {}, {}
    raw = item["init"]
    where = item.value_locs.get("init", loc) if isinstance(item, MarkedDict) else loc
    if not isinstance(raw, dict) or "scheme" in raw:
        if isinstance(raw, (list, bool)) or raw is None:
            raise SpecError("'init' must be a number or a scheme for the whole layer, or map parameter names"
                            " (weight, bias, ...) to values", where, scope.trace)
        return {WHOLE_LAYER: substitute(raw, scope, where, "'init'")}, {WHOLE_LAYER: where}
    if not raw:
        raise SpecError("'init' must map parameter names (weight, bias, ...) to values", where, scope.trace)
    preset = {str(k): substitute(v, scope, where, "'init'") for k, v in raw.items()}
    locations = {str(k): raw.where(k) for k in raw} if isinstance(raw, MarkedDict) else {}
    return preset, locations


def tie_of(item: dict, preset: Mapping[str, Any], scope: Any, loc: Location | None, substitute: Substitute,
           nodes: Sequence[Node]) -> str | None:
    """The owner of the parameters ``tie:`` names: an earlier layer (its first owner, when it is tied itself)."""
    if "tie" not in item:
        return None
    where = item.value_locs.get("tie", loc) if isinstance(item, MarkedDict) else loc
    reference = substitute(item["tie"], scope, where, "'tie'")
    target = scope.resolve(reference, where, "'tie'")
    node = next((n for n in reversed(nodes) if n.name == target), None)
    if node is None or target not in (scope.prefix + str(reference), str(reference)):
        what = "the input" if node is None else f"a block or repeat group (whose output is '{target}')"
        raise SpecError(f"'tie' must name a layer whose parameters this one uses, not {what}", where, scope.trace)
    if preset:
        raise SpecError(f"a tied layer uses the parameters of '{node.tie or node.name}'; put 'init' there",
                        item.where("init") if isinstance(item, MarkedDict) else loc, scope.trace)
    return node.tie or node.name


__all__ = ["WHOLE_LAYER", "preset_of", "tie_of"]
