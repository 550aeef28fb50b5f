"""Input gradients through the NumPy executor: a generic backward walk over the graph (reverse-mode, one
vector-Jacobian product per layer, each from its own unit's ``backward``).

``input_gradient(network, x, layer, cotangent)`` is ``d(sum(cotangent * layer's output)) / d(x)``: with a one-hot
cotangent at the centre of a feature map it is the (signed) effective receptive field of that unit (Luo et al.
2016, "Understanding the Effective Receptive Field in Deep Convolutional Neural Networks"), and with a unit
impulse it shows which inputs can reach the unit at all.

It never tests a layer's type. BatchNorm folding (`execution.network.Network`) is respected: a folded layer shares its
producer's array and its producer's prepared weights already include it, so the folded layer's backward is the
identity. If the chosen layer is itself a producer something was folded into, its own (unfolded) parameters are
prepared for this walk, so that the gradient is that of its output, not of the folded one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConvcalcError, did_you_mean
from ..execution.network import Network
from ..spec.graph import INPUT
from ..kernels import to_logical, to_storage


def ancestors(network: Network, layer: str) -> set[str]:
    """``layer`` and every layer whose output it reads, directly or not (``input`` excluded)."""
    return set(network.graph.ancestors(layer))


def input_gradient(network: Network, x: np.ndarray, layer: str, cotangent: np.ndarray) -> np.ndarray:
    """``d(sum(cotangent * y)) / dx`` for ``y`` the output of ``layer`` (a layer name, or ``input``).

    ``x``: (N, C, *S) in PyTorch's layout, or (C, *S) as a batch of one; ``cotangent``: ``y``'s shape with the same
    batch, (N, *layer's output shape), or without the batch when ``x`` has none. Returns an array of ``x``'s shape,
    in the network's dtype. Inputs that ``layer`` does not depend on get a zero gradient.
    """
    names = [node.name for node in network.graph.nodes]
    if layer != INPUT and layer not in names:
        raise ConvcalcError(f"no layer '{layer}' in the network; {did_you_mean(layer, [INPUT, *names])}")
    x = np.asarray(x)
    input_shape = tuple(network.summary.input_shape)
    batchless = x.shape == input_shape
    batched = x[None] if batchless else x
    out_shape = input_shape if layer == INPUT else tuple(network.summary.layer(layer).output_shape)
    cotangent = np.asarray(cotangent)
    if batchless and cotangent.shape == out_shape:
        cotangent = cotangent[None]
    if tuple(cotangent.shape) != (batched.shape[0], *out_shape):
        raise ConvcalcError(f"the cotangent of '{layer}' is {list(cotangent.shape)}, but its output is"
                            f" [{', '.join(map(str, (batched.shape[0], *out_shape)))}]")
    if batched.shape[0] == 0:                              # an empty batch: an empty gradient
        return np.zeros(x.shape, dtype=network.dtype)

    nodes = {node.name: node for node in network.graph.nodes}
    overrides: dict[str, Any] = {}
    absorbed = {nodes[name].inputs[0] for name in network.folded}
    if layer in absorbed:          # its output array holds the folded layer's output: prepare it unfolded
        node = nodes[layer]
        in_shapes = [input_shape if i == INPUT else tuple(network.summary.layer(i).output_shape) for i in node.inputs]
        overrides[layer] = node.layer.prepare(network.state.get(layer, {}), in_shapes, out_shape, network.dtype)

    needed = ancestors(network, layer)
    values = network.values(batched, only=needed, prepared=overrides)
    readers = {name: 1 for name in needed}                 # backward passes still reading each value (its own)
    for name in needed:
        for source in nodes[name].inputs:
            readers[source] = readers.get(source, 0) + 1
    grads: dict[str, np.ndarray] = {layer: to_storage(cotangent.astype(network.dtype))}
    with np.errstate(all="ignore"):
        for node in reversed(network.graph.nodes):
            grad = grads.pop(node.name, None)
            if grad is None:                               # not upstream of the layer
                continue
            inputs, output = [values[name] for name in node.inputs], values[node.name]
            for name in (node.name, *node.inputs):          # free the values no later backward reads
                readers[name] -= 1
                if readers[name] == 0:
                    del values[name]
            if node.name in overrides:
                in_grads = node.layer.backward(inputs, output, grad, overrides[node.name])
            elif node.name in network.folded:              # its producer's folded weights cover it
                in_grads = [grad]
            else:
                in_grads = node.layer.backward(inputs, output, grad, network.prepared[node.name])
            for name, in_grad in zip(node.inputs, in_grads):
                grads[name] = in_grad if name not in grads else grads[name] + in_grad
    result = grads.get(INPUT)
    if result is None:
        return np.zeros(x.shape, dtype=network.dtype)
    result = np.ascontiguousarray(to_logical(result), dtype=network.dtype)
    return result[0] if batchless else result


__all__ = ["ancestors", "input_gradient"]
