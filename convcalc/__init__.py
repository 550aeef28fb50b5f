"""convcalc: shapes, parameters, MACs and receptive fields of convolutional networks, as PyTorch has them.

Library use (the CLI only wraps this)::

    import convcalc
    spec = convcalc.load_spec("specs/resnet50.yaml")
    summary = convcalc.analyze(spec)                 # or analyze(graph, input_shape=(3, 512, 512))
    summary.totals.params, summary.totals.macs, summary.layer("fc").output_shape
"""

from ._version import __version__  # noqa: E402

from .analysis.summary import LayerResult, Summary, Totals, analyze  # noqa: E402
from .errors import ConvcalcError, GraphError, Location, ShapeError, SpecError  # noqa: E402
from .spec.graph import Graph, Node, build_graph  # noqa: E402
from .algebra.receptive import AxisField, Field  # noqa: E402
from .report.summary import to_json  # noqa: E402
from .spec.load import Spec, load_spec, parse_spec, spec_from_dict  # noqa: E402

__all__ = [
    "AxisField", "ConvcalcError", "Field", "Graph", "GraphError", "LayerResult", "Location", "Node", "ShapeError",
    "Spec", "SpecError", "Summary", "Totals", "analyze", "build_graph", "load_spec", "parse_spec", "spec_from_dict",
    "to_json", "__version__",
]
