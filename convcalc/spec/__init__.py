"""Stage 4, spec: YAML text in, a ``Graph`` of layer units out.

Owns the YAML reader that keeps line and column marks (``marked_yaml``), the ``${...}`` expression language
(``expr``), spec loading with includes and limits (``load``), the graph builder that expands blocks, repeats and
``from`` references into named nodes in topological order (``build``, over the graph's data types in ``graph``),
and the JSON Schema of the format (``schema``). May import ``errors``, ``algebra`` and ``layers`` (the registry the
spec's type names resolve against); never the analysis, the executor, the renderers or the CLI.
"""

from .load import Spec, load_spec, parse_shape_text, parse_spec, spec_from_dict
from .graph import INPUT, Graph, Node
from .build import build_graph

__all__ = ["INPUT", "Graph", "Node", "Spec", "build_graph", "load_spec", "parse_shape_text", "parse_spec",
           "spec_from_dict"]
