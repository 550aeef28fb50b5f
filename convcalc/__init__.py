"""convcalc: shapes, parameters, MACs and receptive fields of convolutional networks, as PyTorch has them.

Library use (the CLI only wraps this; README "Library use" has runnable examples)::

    import convcalc
    spec = convcalc.load_spec("resnet50")        # a zoo name or a path
    summary = convcalc.analyze(spec)                 # or analyze(graph, input_shape=(3, 512, 512))
    summary.totals.params, summary.totals.macs, summary.layer("fc").output_shape
    checked = convcalc.run("resnet18", "cat.png", normalize="imagenet")    # execute, check every prediction
    study = convcalc.study_fields("vgg16", unit=(3, 5), verify=True)       # receptive fields, proved
    report = convcalc.lint_paths(["specs/"])   # the CI gate

The package's folders are the pipeline's stages, data flowing one way (a stage imports only the ones before it):
algebra -> kernels -> layers -> spec -> analysis -> execution -> proof -> lint -> importers -> report -> cli.
"""

import os

from ._version import __version__

__all__ = [
    "AxisField", "ConvcalcError", "Field", "Graph", "GraphError", "LayerResult", "Location", "Node", "ShapeError",
    "Spec", "SpecError", "Summary", "Totals", "analyze", "build_graph", "load_spec", "parse_spec", "spec_from_dict",
    "to_json", "__version__",
    "CheckedRun", "FieldStudy", "LintConfig", "LintReport", "Network", "lint_paths", "run", "study_fields",
    "verify_fields", "import_onnx",
]

# Every name is imported on first use (PEP 562): `import convcalc` costs nothing, so `convcalc --version` and a
# program that only wants the errors do not pay for NumPy, the analysis, the executor, the proofs or lint.
_LAZY = {
    "LayerResult": "analysis.summary", "Summary": "analysis.summary", "Totals": "analysis.summary",
    "analyze": "analysis.summary", "ConvcalcError": "errors", "GraphError": "errors", "Location": "errors",
    "ShapeError": "errors", "SpecError": "errors", "build_graph": "spec.build", "Graph": "spec.graph",
    "Node": "spec.graph", "AxisField": "algebra", "Field": "algebra", "to_json": "report.summary",
    "Spec": "spec.load", "load_spec": "spec.load", "parse_spec": "spec.load", "spec_from_dict": "spec.load",
    "CheckedRun": "proof.run", "FieldStudy": "proof.study", "import_onnx": "importers.onnx_import",
    "verify_fields": "proof.verify", "Network": "execution.network", "LintConfig": "lint", "LintReport": "lint",
    "lint_paths": "lint",
}


_STAGES = ("algebra", "kernels", "layers", "spec", "analysis", "execution", "proof", "lint", "importers", "report",
           "cli")


def _onnx_model(source):
    """An ``.onnx`` path as (the imported graph, its initializers as weights); None for anything else."""
    if isinstance(source, (str, os.PathLike)) and os.fspath(source).lower().endswith(".onnx"):
        from .importers.onnx_import import import_onnx
        imported = import_onnx(source)
        return imported.graph(), imported.weights
    return None


def run(spec, input=None, **options):
    """`proof.run.run`: execute ``spec`` and check every prediction. ``spec`` may also be an ONNX model's path
    (imported in memory; its initializers are the weights unless ``weights`` or ``init`` is given), as
    ``convcalc run MODEL.onnx`` does."""
    from .proof.run import run as run_spec

    model = _onnx_model(spec)
    if model is not None:
        spec, weights = model
        if options.get("weights") is None and options.get("init") is None:
            options["weights"] = weights
    return run_spec(spec, input, **options)


def study_fields(spec, **options):
    """`proof.study.study_fields`: the receptive fields of a layer, proved. ``spec`` may also be an ONNX model's
    path (imported in memory), as ``convcalc rf MODEL.onnx`` does."""
    from .proof.study import study_fields as study_spec

    model = _onnx_model(spec)
    return study_spec(model[0] if model is not None else spec, **options)


def __getattr__(name: str):
    """The library's names, each imported when first asked for (PEP 562)."""
    from importlib import import_module

    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _STAGES:                       # convcalc.lint, convcalc.report, ... without importing them first
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module 'convcalc' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
