"""Convolution as a matrix (`convcalc explain`): the sparse, doubly block-Toeplitz matrix C of a small convolution,
computed from the layer units themselves, and the checks that tie C to them.

A convolution is linear in its input, so it is one matrix: ``conv(x) = C·x`` with ``x`` and ``y`` unrolled
channels first (``x.flatten()`` of a [C, *S] tensor, as PyTorch stores it). Column j of C is the conv applied to the
one-hot input e_j: `unit_matrix` runs the unit's own NumPy forward on a batch of one-hot inputs; row i is its
backward (vector-Jacobian product) applied to the one-hot output e_i, `unit_matrix_rows`. Nothing here computes a
convolution itself. Dumoulin & Visin (arXiv:1603.07285, §4.1): the transposed convolution multiplies by Cᵀ, which is
also how the conv's input gradient is computed; `explain_conv` measures each of these statements on the units
(the conv, its backward, the ConvTranspose unit with the same stride, padding, dilation and groups) and the
relation of true convolution (kernel flipped, scipy.signal.convolve2d) to the cross-correlation convs compute.
Where several taps of one kernel land on the same input (reflect/circular padding could do it) an entry is their sum;
`tap_sources` says which weights each entry of C is made of.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import ConvcalcError, LayerArgError
from ..kernels import MacCounter, to_logical, to_storage
from ..algebra.shapes import prod, transposed_length
from ..layers import Layer, lookup

MAX_SIDE = 4096                 # rows and columns of C: beyond this the matrix is refused
MAX_WORK = 1_000_000_000        # multiply-accumulates of building the matrices (a conv per input or output unit)
MAX_TAP_ENTRIES = 4_000_000     # weights x rows x columns for which `tap_sources` is worked out (the printable sizes)
MAX_TAP_WORK = 200_000_000      # and its multiply-accumulates (a matrix per weight)
CHUNK = 512                     # one-hot inputs (or outputs) run through a unit at a time
TOLERANCE = 1e-9                # a check holds when max |difference| <= TOLERANCE x (1 + max |value|)
KINDS = {f"{name}{d}d": (f"{title}{d}d", d, name == "convtranspose")
         for name, title in (("conv", "Conv"), ("convtranspose", "ConvTranspose")) for d in (1, 2, 3)}


@dataclass(frozen=True)
class Check:
    """One statement measured on the units: ``max_diff`` is max |left - right| (None: not applicable, ``note`` why)."""

    name: str
    statement: str
    max_diff: float | None
    ok: bool | None
    note: str = ""


@dataclass(frozen=True)
class TrueConvolution:
    """True convolution against the cross-correlation convs compute: the flipped kernel, the true convolution of
    ``x`` (the unit with ``flip_kernel: true``) and the cross-correlation of ``x`` with the flipped kernel."""

    flipped: np.ndarray
    true_conv: np.ndarray
    correlated_flipped: np.ndarray
    check: Check


@dataclass(frozen=True)
class ConvMatrix:
    """C of one small conv (or transposed conv: then ``matrix`` is its own matrix, the transpose of the conv's) and
    the checks. Shapes are [C, *S] without the batch; vectors are unrolled channels first."""

    kind: str                       # 'conv2d', 'convtranspose1d', ...
    layer_type: str                 # 'Conv2d', 'ConvTranspose1d', ...
    arguments: dict[str, Any]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weight: np.ndarray              # PyTorch's layout: (O, C/g, *k) for a conv, (C, O/g, *k) for a transposed one
    weight_given: bool
    seed: int
    matrix: np.ndarray              # (prod(out_shape), prod(in_shape))
    sources: dict[tuple[int, int], tuple[int, ...]] | None   # (row, col) -> flat weight indices; None: not worked out
    x: np.ndarray                   # a seeded input (in_shape)
    y: np.ndarray                   # the unit's forward of x (out_shape)
    cotangent: np.ndarray           # a seeded output-side vector (out_shape) that Cᵀ and the backward are applied to
    checks: tuple[Check, ...]
    true_convolution: TrueConvolution | None = None
    transposed_output: np.ndarray | None = None   # a conv's: the ConvTranspose unit's forward of ``cotangent``

    @property
    def ok(self) -> bool:
        checks = list(self.checks) + ([self.true_convolution.check] if self.true_convolution else [])
        return all(check.ok is not False for check in checks)


# --------------------------------------------------------------------------- matrices from the units

def _prepared(layer: Layer, in_shape: Sequence[int], out_shape: Sequence[int], weight: np.ndarray) -> Any:
    return layer.prepare({"weight": weight}, [tuple(in_shape)], tuple(out_shape), np.dtype(np.float64))


def unit_forward(layer: Layer, x: np.ndarray, weight: np.ndarray, out_shape: Sequence[int]) -> np.ndarray:
    """The unit's forward of a batch ``x`` (N, C, *S), PyTorch's layout in and out."""
    plan = _prepared(layer, x.shape[1:], out_shape, weight)
    return to_logical(layer.forward([to_storage(x)], plan, MacCounter()))


def unit_backward(layer: Layer, x: np.ndarray, grad: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The unit's vector-Jacobian product at ``x`` (N, C, *S) for ``grad`` (N, *out): dL/dx, PyTorch's layout."""
    plan = _prepared(layer, x.shape[1:], grad.shape[1:], weight)
    stored = to_storage(x)
    output = layer.forward([stored], plan, MacCounter())
    return to_logical(layer.backward([stored], output, to_storage(grad), plan)[0])


def _one_hots(start: int, stop: int, size: int) -> np.ndarray:
    eye = np.zeros((stop - start, size))
    eye[np.arange(stop - start), np.arange(start, stop)] = 1.0
    return eye


def unit_matrix(layer: Layer, in_shape: Sequence[int], out_shape: Sequence[int], weight: np.ndarray) -> np.ndarray:
    """C column by column: column j is the unit's forward of the one-hot input e_j."""
    n_in, n_out = prod(in_shape), prod(out_shape)
    matrix = np.empty((n_out, n_in))
    for start in range(0, n_in, CHUNK):
        stop = min(n_in, start + CHUNK)
        x = _one_hots(start, stop, n_in).reshape(stop - start, *in_shape)
        matrix[:, start:stop] = unit_forward(layer, x, weight, out_shape).reshape(stop - start, n_out).T
    return matrix


def unit_matrix_rows(layer: Layer, in_shape: Sequence[int], out_shape: Sequence[int], weight: np.ndarray) -> np.ndarray:
    """C row by row: row i is the unit's backward (at x = 0; the map is linear) of the one-hot output e_i."""
    n_in, n_out = prod(in_shape), prod(out_shape)
    matrix = np.empty((n_out, n_in))
    for start in range(0, n_out, CHUNK):
        stop = min(n_out, start + CHUNK)
        grad = _one_hots(start, stop, n_out).reshape(stop - start, *out_shape)
        x = np.zeros((stop - start, *in_shape))
        matrix[start:stop] = unit_backward(layer, x, grad, weight).reshape(stop - start, n_in)
    return matrix


def tap_sources(layer: Layer, in_shape: Sequence[int], out_shape: Sequence[int],
                weight_shape: Sequence[int]) -> dict[tuple[int, int], tuple[int, ...]]:
    """Which weights make each nonzero entry of C: C is linear in the weight, so the matrix of the unit with the
    one-hot weight e_t marks the entries weight t lands on (with its multiplicity)."""
    sources: dict[tuple[int, int], list[int]] = {}
    for tap in range(prod(weight_shape)):
        one_hot = np.zeros(prod(weight_shape))
        one_hot[tap] = 1.0
        marks = unit_matrix(layer, in_shape, out_shape, one_hot.reshape(weight_shape))
        for row, col in zip(*np.nonzero(marks)):
            sources.setdefault((int(row), int(col)), []).extend([tap] * int(round(marks[row, col])))
    return {key: tuple(value) for key, value in sources.items()}


# --------------------------------------------------------------------------- the study

def _unit(type_name: str, arguments: dict[str, Any], in_shape: Sequence[int]) -> tuple[Layer, tuple[int, ...], tuple]:
    """The unit, its output shape and its weight's shape, with PyTorch's checks (a `ConvcalcError` naming the type)."""
    try:
        layer = lookup(type_name).from_args(arguments)
        inferred = layer.infer([tuple(in_shape)])
    except LayerArgError as exc:
        raise ConvcalcError(f"{type_name}: {exc.message}") from None
    return layer, tuple(inferred.out_shape), tuple(inferred.params["weight"])


def _check(name: str, statement: str, left: np.ndarray, right: np.ndarray) -> Check:
    diff = float(np.max(np.abs(left - right))) if left.size else 0.0
    scale = 1.0 + max(float(np.max(np.abs(left))) if left.size else 0.0, float(np.max(np.abs(right))) if right.size else 0.0)
    return Check(name, statement, diff, diff <= TOLERANCE * scale)


def _weight(given: Any, shape: tuple[int, ...], layer_type: str, rng: np.random.Generator,
            transposed: bool) -> np.ndarray:
    """The given kernel values (the full weight, or its kernels one after another) or seeded integers 1..9."""
    if given is None:
        return rng.integers(1, 10, size=shape).astype(np.float64)
    values = np.asarray(given, dtype=np.float64)
    kernels, spatial = prod(shape[:2]), shape[2:]
    if values.shape == shape:
        return values
    if (values.shape[1:] == spatial and values.shape[0] == kernels) or (values.shape == spatial and kernels == 1):
        return values.reshape(shape)
    order = "in × out/groups" if transposed else "out × in/groups"
    given_kernels = values.shape[0] if values.ndim == len(spatial) + 1 else 1
    given_size = "×".join(map(str, values.shape[1:] if values.ndim == len(spatial) + 1 else values.shape))
    raise ConvcalcError(f"the kernel values give {given_kernels} kernel{'s' if given_kernels != 1 else ''} of"
                        f" {given_size or 'one value'}, but {layer_type} needs {kernels} of {'×'.join(map(str, spatial))}"
                        f" (weight [{', '.join(map(str, shape))}]: {order} kernels, one after another)")


def _budget(n_in: int, n_out: int, macs: int) -> None:
    """Refuse a matrix over MAX_SIDE, or one whose matrices (C from the forward, again from the backward, the
    transposed conv's; a conv per input or output unit, ``macs`` each) take over MAX_WORK multiply-accumulates."""
    if n_in > MAX_SIDE or n_out > MAX_SIDE:
        raise ConvcalcError(f"the matrix would be {n_out:,}×{n_in:,} (output units × input units); at most"
                            f" {MAX_SIDE}×{MAX_SIDE} is built: take a smaller input")
    work = macs * (2 * n_in + n_out)
    if work > MAX_WORK:
        raise ConvcalcError(f"building the {n_out:,}×{n_in:,} matrix from the unit takes {work:,} multiply-accumulates"
                            f" (a conv of {macs:,} per input and output unit); at most {MAX_WORK:,}: take fewer"
                            " channels or a smaller input")


def conv_unit(kind: str, in_shape: Sequence[int], *, kernel_size: Any, stride: Any = 1, padding: Any = 0,
              dilation: Any = 1, groups: int = 1, out_channels: int = 1,
              output_padding: Any = None) -> tuple[Layer, tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """The unit of ``kind`` ('conv1d'/'conv2d'/'conv3d', 'convtranspose1d', ...) with PyTorch's arguments (no bias),
    its input shape ([C, *S]; [*S] means one channel, and one size alone a square or cube of one channel), output
    shape and weight shape; PyTorch's checks apply."""
    if kind not in KINDS:
        raise ConvcalcError(f"cannot explain '{kind}' as a matrix; valid: {', '.join(KINDS)}")
    type_name, dims, transposed = KINDS[kind]
    in_shape = tuple(int(v) for v in in_shape)
    if len(in_shape) == 1 and dims > 1:              # 4: a 4x4 (4x4x4) input of one channel
        in_shape = (1, *in_shape * dims)
    elif len(in_shape) == dims:                      # 4x4: one channel
        in_shape = (1, *in_shape)
    arguments: dict[str, Any] = {"out_channels": out_channels, "kernel_size": kernel_size, "stride": stride,
                                 "padding": padding, "dilation": dilation, "groups": groups, "bias": False}
    if transposed:
        arguments["output_padding"] = 0 if output_padding is None else output_padding
    elif output_padding is not None:
        raise ConvcalcError(f"output_padding belongs to transposed convs ({type_name} has none)")
    else:
        arguments["algorithm"] = "direct"      # exact products (no FFT or Winograd rounding)
    layer, out_shape, weight_shape = _unit(type_name, arguments, in_shape)
    return layer, in_shape, out_shape, weight_shape


def matrix_shape(kind: str, in_shape: Sequence[int], **arguments: Any) -> tuple[int, int]:
    """(rows, columns) of the matrix `explain_conv` would build (the output and input sizes), without building it;
    a `ConvcalcError` if it is over MAX_SIDE."""
    layer, in_shape, out_shape, _ = conv_unit(kind, in_shape, **arguments)
    _budget(prod(in_shape), prod(out_shape), layer.infer([in_shape]).macs)
    return prod(out_shape), prod(in_shape)


def explain_conv(kind: str, in_shape: Sequence[int], *, weight: Any = None, seed: int = 0, sources: bool = True,
                 **arguments: Any) -> ConvMatrix:
    """C of a conv (``kind`` 'conv1d'/'conv2d'/'conv3d') or of a transposed conv ('convtranspose1d', ...), from its unit,
    with the checks: conv(x) = C·x, backward = Cᵀ (row by row and at a vector), the transposed conv = Cᵀ, and true
    convolution = cross-correlation with the flipped kernel. ``arguments``: `conv_unit`'s (PyTorch's names);
    ``in_shape``: [C, *S] (or [*S]: one channel); ``weight``: PyTorch's weight, or its kernels one after another
    (default: seeded integers 1..9); ``sources``: work out which weights make each entry (small matrices only)."""
    layer, in_shape, out_shape, weight_shape = conv_unit(kind, in_shape, **arguments)
    type_name, _, transposed = KINDS[kind]
    macs = layer.infer([in_shape]).macs
    _budget(prod(in_shape), prod(out_shape), macs)
    rng = np.random.default_rng(seed)
    kernel = _weight(weight, weight_shape, type_name, rng, transposed)
    matrix = unit_matrix(layer, in_shape, out_shape, kernel)
    small = prod(weight_shape) * matrix.size <= MAX_TAP_ENTRIES and \
        prod(weight_shape) * prod(in_shape) * macs <= MAX_TAP_WORK
    found = tap_sources(layer, in_shape, out_shape, weight_shape) if sources and small else None
    x = rng.integers(-3, 4, size=in_shape).astype(np.float64)
    cotangent = rng.integers(-3, 4, size=out_shape).astype(np.float64)
    y = unit_forward(layer, x[None], kernel, out_shape)[0]
    m, mt = ("Cᵀ", "C") if transposed else ("C", "Cᵀ")
    checks = [_check("forward", f"{type_name}(x) = {m}·x", y.ravel(), matrix @ x.ravel()),
              _check("backward rows", f"{type_name}'s backward at the one-hot output e_i = row i of {m}, for every i"
                     f" (∂y/∂x = {m})", unit_matrix_rows(layer, in_shape, out_shape, kernel), matrix),
              _check("backward", f"{type_name}'s backward at y = {mt}·y (the input gradient is {mt})",
                     unit_backward(layer, x[None], cotangent[None], kernel)[0].ravel(), matrix.T @ cotangent.ravel())]
    used = {name: layer.args[name] for name in ("kernel_size", "stride", "padding", "dilation", "groups",
                                                  "out_channels", "output_padding") if name in layer.args}
    partner = _transposed_partner if not transposed else _direct_partner
    more, transposed_output = partner(layer, in_shape, out_shape, kernel, matrix, cotangent, x)
    checks += more
    true = None if transposed else _true_convolution(type_name, layer.args, in_shape, out_shape, kernel, x)
    return ConvMatrix(kind, type_name, used, in_shape, out_shape, kernel, weight is not None, seed, matrix, found,
                      x, y, cotangent, tuple(checks), true, transposed_output)


def _transposed_partner(conv: Layer, in_shape, out_shape, kernel, matrix, cotangent,
                        x) -> tuple[list[Check], np.ndarray | None]:
    """The ConvTranspose unit with the conv's stride, padding, dilation and groups (and the output_padding that gives
    back the conv's input size) against Cᵀ: at a vector and as a matrix."""
    dims = len(in_shape) - 1
    pads = conv.pads(in_shape[1:])
    name = f"ConvTranspose{dims}d"
    if conv.padding_mode != "zeros" or any(lo != hi for lo, hi in pads):
        return [Check("transposed", f"{name}(y) = Cᵀ·y", None, None,
                      f"not applicable: padding {[list(p) for p in pads]} is not the same on both sides, which"
                      f" {name} cannot express")], None
    output_padding = [i - transposed_length(o, k, s, d, lo, 0) for i, o, k, s, d, (lo, _) in
                      zip(in_shape[1:], out_shape[1:], conv.kernel_size, conv.stride, conv.dilation, pads)]
    arguments = {"out_channels": in_shape[0], "kernel_size": list(conv.kernel_size), "stride": list(conv.stride),
                 "padding": [lo for lo, _ in pads], "dilation": list(conv.dilation), "groups": conv.groups,
                 "output_padding": output_padding, "bias": False}
    transposed, shape, _ = _unit(name, arguments, out_shape)
    said = (f"stride {_axes(conv.stride)}, padding {_axes([lo for lo, _ in pads])}, dilation {_axes(conv.dilation)}"
            f"{f', groups {conv.groups}' if conv.groups > 1 else ''}, output_padding {_axes(output_padding)}")
    forward = unit_forward(transposed, cotangent[None], kernel, shape)[0]
    return [_check("transposed", f"{name}(y; {said}) = Cᵀ·y", forward.ravel(),
                   matrix.T @ cotangent.ravel()),
            _check("transposed matrix", f"the {name} unit's own matrix = Cᵀ",
                   unit_matrix(transposed, out_shape, in_shape, kernel), matrix.T)], forward


def _direct_partner(transposed: Layer, in_shape, out_shape, kernel, matrix, cotangent,
                    x) -> tuple[list[Check], None]:
    """For a transposed conv (matrix M): the conv with the same stride, padding, dilation and groups, from its output
    back to its input, has the matrix C = Mᵀ, and its backward is M."""
    dims = len(in_shape) - 1
    name = f"Conv{dims}d"
    arguments = {"out_channels": in_shape[0], "kernel_size": list(transposed.kernel_size),
                 "stride": list(transposed.stride), "padding": list(transposed.padding),
                 "dilation": list(transposed.dilation), "groups": transposed.groups, "bias": False, "algorithm": "direct"}
    conv, shape, _ = _unit(name, arguments, out_shape)
    if shape != in_shape:
        return [Check("conv matrix", f"the {name} unit with the same arguments has the matrix C", None, None,
                      f"not applicable: that {name} maps {list(out_shape)} to {list(shape)}, not back to"
                      f" {list(in_shape)} (output_padding at least the stride)")], None
    conv_matrix = unit_matrix(conv, out_shape, in_shape, kernel)
    return [_check("conv matrix", f"the {name} unit with the same arguments and weight, from {list(out_shape)} back to"
                   f" {list(in_shape)}, has the matrix C: this one transposed",
                   conv_matrix.T, matrix),
            _check("conv backward", f"{name}'s backward at x = Cᵀ·x (the transposed conv is the conv's input"
                   " gradient)", unit_backward(conv, np.zeros((1, *out_shape)), x[None], kernel)[0].ravel(),
                   matrix @ x.ravel())], None


def _true_convolution(type_name: str, arguments: dict[str, Any], in_shape, out_shape, kernel, x) -> TrueConvolution:
    """The unit with ``flip_kernel: true`` (true convolution) against the plain unit with the flipped kernel."""
    dims = len(in_shape) - 1
    flipped = np.ascontiguousarray(kernel[(slice(None), slice(None), *(slice(None, None, -1),) * dims)])
    raw = {name: _listed(value) for name, value in arguments.items()}
    true_layer, _, _ = _unit(type_name, {**raw, "flip_kernel": True}, in_shape)
    plain, _, _ = _unit(type_name, {**raw, "flip_kernel": False}, in_shape)
    true = unit_forward(true_layer, x[None], kernel, out_shape)[0]
    correlated = unit_forward(plain, x[None], flipped, out_shape)[0]
    check = _check("true convolution", "true convolution (flip_kernel: true) = cross-correlation with flip(w)",
                   true.ravel(), correlated.ravel())
    return TrueConvolution(flipped, true, correlated, check)


def _listed(value: Any) -> Any:
    """A parsed argument as a spec would write it (tuples as lists)."""
    return [_listed(item) for item in value] if isinstance(value, tuple) else value


def _axes(values: Sequence[int]) -> str:
    values = list(values)
    return str(values[0]) if len(set(values)) == 1 else "(" + ", ".join(map(str, values)) + ")"


__all__ = ["Check", "ConvMatrix", "KINDS", "MAX_SIDE", "TrueConvolution", "conv_unit", "explain_conv", "matrix_shape",
           "tap_sources",
           "unit_backward", "unit_forward", "unit_matrix", "unit_matrix_rows"]
