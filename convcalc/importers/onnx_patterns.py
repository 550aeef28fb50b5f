"""Activations that exporters write as several ONNX nodes, recognised where their first node stands: GELU as
``x · (1 + erf(x / √2)) · 0.5`` (torch before opset 20), Mish as ``x · tanh(softplus(x))``, SiLU as
``x · sigmoid(x)``. Each inner node must feed only the next one, and the constants must be the formula's."""

from __future__ import annotations

import math

import numpy as np

from .onnx_translate import Translator


def _next(t: Translator, name: str, op: str):
    """The only node reading ``name``, when it is an ``op``."""
    node = t.sole_consumer(name)
    return node if node is not None and node.op_type == op else None


def _other(node, name: str) -> str | None:
    """The other input of a two-input node that reads ``name``."""
    if len(node.input) != 2 or name not in node.input:
        return None
    return node.input[1] if node.input[0] == name else node.input[0]


def _constant_is(t: Translator, name: str | None, value: float) -> bool:
    array = t.model.consts.get(name) if name else None
    return array is not None and array.size == 1 and math.isclose(float(np.asarray(array).ravel()[0]), value,
                                                                  rel_tol=1e-6)


def gelu_erf(t: Translator, div) -> bool:
    """At a Div: x / √2 → Erf → + 1 → · x → · 0.5 (in either operand order) becomes one GELU."""
    x = div.input[0]
    if not _constant_is(t, div.input[1], math.sqrt(2)):
        return False
    erf = _next(t, div.output[0], "Erf")
    add = erf and _next(t, erf.output[0], "Add")
    if not add or not _constant_is(t, _other(add, erf.output[0]), 1.0):
        return False
    times_x = _next(t, add.output[0], "Mul")
    if not times_x or _other(times_x, add.output[0]) != x:
        return False
    half = _next(t, times_x.output[0], "Mul")
    if not half or not _constant_is(t, _other(half, times_x.output[0]), 0.5):
        return False
    t.done.update({id(erf), id(add), id(times_x), id(half)})
    t.bind(half.output[0], t.emit(div, "GELU", {}, [t.x(div)]))
    return True


def mish(t: Translator, softplus) -> bool:
    """At a Softplus: softplus(x) → Tanh → · x becomes one Mish."""
    tanh = _next(t, softplus.output[0], "Tanh")
    times_x = tanh and _next(t, tanh.output[0], "Mul")
    if not times_x or _other(times_x, tanh.output[0]) != softplus.input[0]:
        return False
    t.done.update({id(tanh), id(times_x)})
    t.bind(times_x.output[0], t.emit(softplus, "Mish", {}, [t.x(softplus)]))
    return True


def silu(t: Translator, sigmoid) -> bool:
    """At a Sigmoid: x · sigmoid(x) becomes one SiLU."""
    times_x = _next(t, sigmoid.output[0], "Mul")
    if not times_x or _other(times_x, sigmoid.output[0]) != sigmoid.input[0]:
        return False
    t.done.add(id(times_x))
    t.bind(times_x.output[0], t.emit(sigmoid, "SiLU", {}, [t.x(sigmoid)]))
    return True


def gelu_tanh(t: Translator, square) -> bool:
    """At a Mul x·x: x·x → ·x → ·0.044715 → + x → ·√(2/π) → Tanh → + 1 → ·x → ·0.5 (torch's GELU(approximate='tanh')
    before opset 20) becomes one GELU with approximate 'tanh'."""
    x = square.input[0]
    if len(square.input) != 2 or square.input[1] != x:
        return False
    chain = [square]
    steps = [("Mul", x), ("Mul", 0.044715), ("Add", x), ("Mul", math.sqrt(2 / math.pi)), ("Tanh", None),
             ("Add", 1.0), ("Mul", x), ("Mul", 0.5)]
    for op, operand in steps:
        node = _next(t, chain[-1].output[0], op)
        if node is None:
            return False
        if op != "Tanh":
            other = _other(node, chain[-1].output[0])
            if isinstance(operand, str) and other != operand:
                return False
            if isinstance(operand, float) and not _constant_is(t, other, operand):
                return False
        chain.append(node)
    t.done.update(id(node) for node in chain[1:])
    t.bind(chain[-1].output[0], t.emit(square, "GELU", {"approximate": "tanh"}, [t.x(square)]))
    return True


LAYOUT_OPS = ("Reshape", "Transpose", "Unsqueeze", "Squeeze")


def _layout_step(t: Translator, node, values: np.ndarray) -> np.ndarray | None:
    """``values`` moved as the layout node moves its input (None: a shape or axes not known)."""
    from .onnx_graph import attributes

    a = attributes(node)
    if node.op_type == "Transpose":
        return values.transpose(a.get("perm", list(reversed(range(values.ndim)))))
    if node.op_type == "Reshape":
        wanted = t.model.consts.get(node.input[1])
        if wanted is None:
            return None
        out = [values.shape[i] if v == 0 and not a.get("allowzero", 0) else int(v) for i, v in enumerate(wanted)]
        return values.reshape(out)
    axes = a.get("axes") if "axes" in a else (t.model.consts.get(node.input[1]) if len(node.input) > 1 else None)
    if axes is None:
        return np.squeeze(values) if node.op_type == "Squeeze" else None
    axes = [int(v) for v in np.asarray(axes).ravel()]
    if node.op_type == "Squeeze":
        return np.squeeze(values, axis=tuple(v % values.ndim for v in axes))
    return np.expand_dims(values, tuple(v % (values.ndim + len(axes)) for v in axes))


def _layout_layer(source: np.ndarray, moved: np.ndarray) -> tuple[str, dict] | None:
    """The one convcalc layer that moves [N, C, H, W] ``source`` indices as ``moved`` has them, if any."""
    n, c, h, w = source.shape
    if moved.ndim != 4 or moved.shape[0] != n:
        return None
    for r in range(2, min(h, w) + 1):
        if h % r == 0 and w % r == 0 and moved.shape[1:] == (c * r * r, h // r, w // r):
            unshuffled = source.reshape(n, c, h // r, r, w // r, r).transpose(0, 1, 3, 5, 2, 4).reshape(moved.shape)
            if np.array_equal(unshuffled, moved):
                return "PixelUnshuffle", {"downscale_factor": r}
    for r in range(2, int(math.isqrt(c)) + 1):
        if c % (r * r) == 0 and moved.shape[1:] == (c // (r * r), h * r, w * r):
            shuffled = source.reshape(n, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(moved.shape)
            if np.array_equal(shuffled, moved):
                return "PixelShuffle", {"upscale_factor": r}
    if moved.shape == source.shape:
        if np.array_equal(moved, source):
            return "", {}                                   # the identity: no layer
        if c > 1 and moved[0, 1, 0, 0] % (h * w) == 0 and 0 < moved[0, 1, 0, 0] // (h * w) < c:
            g = c // int(moved[0, 1, 0, 0] // (h * w))      # output channel 1 is input channel C/g
            if c % g == 0 and np.array_equal(
                    source.reshape(n, g, c // g, h, w).transpose(0, 2, 1, 3, 4).reshape(source.shape), moved):
                return "ChannelShuffle", {"groups": g}
    return None


def layout_chain(t: Translator, first) -> bool:
    """At a Reshape/Transpose/Unsqueeze/Squeeze of an [N, C, H, W] tensor: the longest chain of such nodes (each
    the only reader of the one before) that moves the values as one PixelUnshuffle, PixelShuffle or
    ChannelShuffle does (found by moving an index tensor through the chain) becomes that layer; a chain that
    leaves every value in place (unsqueeze then squeeze) becomes none."""
    shape = t.model.shape(first.input[0])
    if shape is None or len(shape) != 4 or int(np.prod(shape)) > 1 << 20:
        return False
    source = np.arange(int(np.prod(shape))).reshape(shape)
    values, chain, found = source, [first], None
    node = first
    while True:
        try:
            values = _layout_step(t, node, values)
        except ValueError:         # a shape that does not fit (ONNX's own inference would have said)
            values = None
        if values is None:
            break
        match = _layout_layer(source, values) if len(chain) > 1 else None
        if match is not None:
            found = (match, len(chain))
        nxt = t.sole_consumer(node.output[0])
        if nxt is None or nxt.op_type not in LAYOUT_OPS or nxt.input[0] != node.output[0]:
            break
        chain.append(nxt)
        node = nxt
    if found is None:
        return False
    (kind, args), length = found
    t.done.update(id(n) for n in chain[1:length])
    t.bind(chain[length - 1].output[0], t.emit(first, kind, args, [t.x(first)]) if kind else t.x(first))
    return True


def group_norm(t: Translator, reshape) -> bool:
    """At a Reshape: [N, C, *S] → [N, G, -1] → InstanceNormalization (scale 1, bias 0) → Reshape back → · weight →
    + bias (torch's GroupNorm before opset 18's GroupNormalization) becomes one GroupNorm."""
    from .onnx_graph import attributes

    shape = t.model.shape(reshape.input[0])
    wanted = t.model.consts.get(reshape.input[1])
    if shape is None or wanted is None or len(shape) < 3 or len(wanted) != 3:
        return False
    norm = _next(t, reshape.output[0], "InstanceNormalization")
    back = norm and _next(t, norm.output[0], "Reshape")
    if not back or t.model.shape(back.output[0]) != shape:
        return False
    groups = int(wanted[1])
    scale, shift = t.model.consts.get(norm.input[1]), t.model.consts.get(norm.input[2])
    if scale is None or shift is None or scale.size != groups or not (np.all(scale == 1) and np.all(shift == 0)):
        return False
    channels, chain = shape[1], [norm, back]
    weight, bias = np.ones(channels, np.float32), np.zeros(channels, np.float32)
    for op, target in (("Mul", weight), ("Add", bias)):
        node = _next(t, chain[-1].output[0], op)
        value = node and t.model.consts.get(_other(node, chain[-1].output[0]) or "")
        if value is None or value.size != channels or value.shape != (channels,) + (1,) * (len(shape) - 2):
            break
        target[:] = value.ravel()
        chain.append(node)
    eps = float(attributes(norm).get("epsilon", 1e-5))
    args = {"num_groups": groups} | ({} if np.float32(eps) == np.float32(1e-5) else {"eps": float(str(np.float32(eps)))})
    t.done.update(id(n) for n in chain)
    t.bind(chain[-1].output[0], t.emit(reshape, "GroupNorm", args, [t.x(reshape)], {"weight": weight, "bias": bias}))
    return True
