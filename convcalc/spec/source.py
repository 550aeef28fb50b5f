"""What a library call may be given as its network: a spec file's path, a loaded Spec, or a built Graph."""

from __future__ import annotations

import os
from typing import Any, Mapping

from ..errors import ConvcalcError
from .build import build_graph
from .graph import Graph
from .load import Spec, load_spec


def graph_of(source: str | os.PathLike | Spec | Graph, overrides: Mapping[str, Any] | None = None,
             allow_include_outside: bool = False) -> Graph:
    """``source`` as a Graph: a path is loaded (includes inside its directory unless ``allow_include_outside``) and
    built with ``overrides`` of its top-level args; a Spec is built; a Graph is taken as it is (no overrides)."""
    if isinstance(source, Graph):
        if overrides:
            raise ConvcalcError("overrides of a spec's args need the spec, not a graph already built")
        return source
    if not isinstance(source, Spec):
        source = load_spec(source, allow_include_outside=allow_include_outside)
    return build_graph(source, overrides)
