"""Stage: importers: other formats in and out (ONNX).

``onnx_import.import_onnx`` reads an ONNX model (path, bytes or ModelProto) and translates it into a convcalc spec
(YAML text) plus its weights keyed like a PyTorch state_dict; ``onnx_export`` writes a spec as an ONNX model. The
``onnx`` package is an optional extra (``pip install 'convcalc[onnx]'``), imported lazily inside these modules.

May import every stage up to lint (it builds graphs with the spec stage and may analyse them); the report and cli
stages come after it and may import it.
"""
