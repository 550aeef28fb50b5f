"""One layer of a dependency walk: the 0/1 masks over a unit's inputs that its marked outputs can depend on.

Owns ``support_step`` (which asks the unit's ``support_uniform``/``support_backward``, on a structural instance
where it needs one), the mask dtype ``MASK_DTYPE`` and the thresholding and one-channel helpers. The walk itself is
`convcalc.proof.dependency`; it lives here, below the proof stage, because composite units step through their parts
with it.
"""

from __future__ import annotations

from typing import Sequence

from .._numpy import np

from ..kernels import MacCounter
from .base import Layer, Shape, storage_shape


MASK_DTYPE = "float32"     # 0/1 marks, thresholded after every layer: no sum in one layer comes near 2**24


def _as_mask(values: np.ndarray) -> np.ndarray:
    """Thresholded to 0/1 (`MASK_DTYPE`), NaN counted as a dependency. An array of `MASK_DTYPE` is taken as one
    (the rules return 0/1 masks in the dtype of the mask they were given)."""
    values = np.asarray(values)
    return values if values.dtype == MASK_DTYPE else (values != 0).astype(MASK_DTYPE)


def thin(mask: np.ndarray) -> np.ndarray:
    """A mask the same on every channel (last axis) kept with one channel."""
    if mask.ndim >= 2 and mask.shape[-1] > 1 and (mask == mask[..., :1]).all():
        return np.ascontiguousarray(mask[..., :1])
    return mask


def support_step(layer: Layer, mask: np.ndarray, in_shapes: Sequence[Shape], out_shape: Shape,
                 cache: dict | None = None) -> list[np.ndarray]:
    """One layer of a dependency walk (`convcalc.proof.dependency`): the 0/1 masks over each input, channels-last and
    batched like ``mask`` (one measured unit set per batch row), of what the marked outputs can depend on.

    A mask whose last axis is 1 where the layer's is longer is the same on every channel: `support_uniform`
    takes it on one channel; without that fast path it is spread over the channels and `support_backward` runs on
    the structural instance (``cache`` keeps its prepared parameters and output per layer and shape). Results the
    same on every channel come back with one."""
    batch = mask.shape[0]
    out_store = storage_shape(out_shape)
    if mask.shape[-1] == 1:
        found = layer.support_uniform(mask, in_shapes, out_shape)
        if found is not None:
            return [thin(_as_mask(m)) for m in found]
    key = (id(layer), tuple(tuple(s) for s in in_shapes))
    entry = cache.get(key) if cache is not None else None
    if entry is None:
        inferred = layer.infer(in_shapes)
        prepared = layer.prepare(layer.structural_params(inferred), in_shapes, out_shape, np.dtype(MASK_DTYPE))
        ones = [np.ones((1, *storage_shape(s)), dtype=MASK_DTYPE) for s in in_shapes]
        with np.errstate(all="ignore"):
            output = layer.forward(ones, prepared, MacCounter())
        entry = (layer, prepared, output)
        if cache is not None:
            cache[key] = entry
    _, prepared, output = entry
    inputs = [np.broadcast_to(np.ones((), dtype=MASK_DTYPE), (batch, *storage_shape(s))) for s in in_shapes]
    full = np.broadcast_to(mask, (batch, *out_store))
    with np.errstate(all="ignore"):
        found = layer.support_backward(inputs, np.broadcast_to(output, (batch, *output.shape[1:])), full, prepared)
    return [thin(_as_mask(m)) for m in found]


__all__ = ["MASK_DTYPE", "support_step", "thin"]
