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
