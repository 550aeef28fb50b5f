"""The padding solver (``convcalc calc padding``): which padding gives a convolution the output size asked for, and
which (padding, output_padding) pairs give a transposed convolution one.

Per axis, for a conv ``o = (i + P - k_eff)//s + 1`` holds exactly for the total padding P in
``[A, A + s - 1]``, ``A = (o - 1)s + k_eff - i`` (Dumoulin & Visin 2016, relation 15): PyTorch's symmetric
``padding=p`` needs an even ``P = 2p``; TensorFlow's SAME takes the least ``P = max(A, 0)`` and puts the odd pixel at
the end (``lo = P//2, hi = P - lo``; semantics §3). For a transposed conv
``o = (i - 1)s - 2p + d(k - 1) + op + 1`` with ``0 <= op < max(s, d)`` (PyTorch: op below the stride or the
dilation). Every answer is then confirmed by the layer unit itself (`Conv1d`/`ConvTranspose1d` ``infer``, and the
conv's own ``'tf_same'`` pads), so a solver slip cannot reach the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ..errors import ConvcalcError
from ..layers.args import MAX_SIZE
from ..layers.registry import lookup
from .calculator import numbers


@dataclass(frozen=True)
class ConvPadding:
    """One axis of a conv: the paddings that give ``target`` outputs (``same``: the target is ⌈i/s⌉)."""

    length: int
    kernel: int
    stride: int
    dilation: int
    target: int
    symmetric: tuple[int, ...]              # PyTorch padding=p values giving the target (may be empty)
    asymmetric: Optional[tuple[int, int]]   # TF SAME's split of the least total padding (None: none exists)
    total: Optional[tuple[int, int]]        # the total paddings (lo + hi) that give the target
    torch_same: Optional[tuple[int, int]]   # what PyTorch's padding='same' pads (stride 1 only)
    reason: str = ""                        # why there is no answer (or no symmetric one)

    @property
    def k_eff(self) -> int:
        """d*(k-1) + 1."""
        return self.dilation * (self.kernel - 1) + 1


@dataclass(frozen=True)
class TransposedPadding:
    """One axis of a transposed conv: the (padding, output_padding) pairs that give ``target`` outputs."""

    length: int
    kernel: int
    stride: int
    dilation: int
    target: int
    pairs: tuple[tuple[int, int], ...]
    reason: str = ""


@dataclass(frozen=True)
class PaddingAnswer:
    transposed: bool
    same: bool
    axes: tuple[Any, ...]                   # ConvPadding or TransposedPadding per spatial axis


def _unit_output(type_name: str, length: int, **args: Any) -> int:
    """The output length the layer unit computes (None if the unit refuses the arguments)."""
    layer = lookup(type_name).from_args({"out_channels": 1, **args})
    return layer.infer([(1, length)]).out_shape[1]


def _conv_axis(i: int, k: int, s: int, d: int, target: Optional[int]) -> ConvPadding:
    same = target is None
    o = -(-i // s) if same else target
    k_eff = d * (k - 1) + 1
    lowest = (o - 1) * s + k_eff - i                      # the least total padding P with (i + P - k_eff)//s + 1 = o
    highest = lowest + s - 1
    torch_same = (d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) if s == 1 else None
    if o < 1:
        raise ConvcalcError(f"--out {o} must be positive")
    if highest < 0:
        reason = (f"even without padding the output is {(i - k_eff) // s + 1} long: a {k}-tap kernel"
                  f"{f' with dilation {d}' if d > 1 else ''} at stride {s} cannot give {o} from {i} (it would need"
                  f" {-lowest if lowest == highest else f'{-highest} to {-lowest}'} input positions cropped)")
        return ConvPadding(i, k, s, d, o, (), None, None, torch_same, reason)
    low = max(lowest, 0)
    symmetric = tuple(p for p in range((low + 1) // 2, highest // 2 + 1))
    reason = "" if symmetric else (f"the total padding must be {low}, which is odd: no symmetric padding gives {o}"
                                   f" (PyTorch needs F.pad(x, ({low // 2}, {low - low // 2})) first)")
    answer = ConvPadding(i, k, s, d, o, symmetric, (low // 2, low - low // 2), (low, highest), torch_same, reason)
    _confirm_conv(answer)
    return answer


def _confirm_conv(answer: ConvPadding) -> None:
    """Each answer through the Conv1d unit (and TF SAME through the unit's own 'tf_same' pads)."""
    i, args = answer.length, {"kernel_size": answer.kernel, "stride": answer.stride, "dilation": answer.dilation}
    outputs = [_unit_output("Conv1d", i, padding=p, **args) for p in answer.symmetric]
    outputs.append(_unit_output("Conv1d", i, padding=[list(answer.asymmetric)], **args))
    if any(o != answer.target for o in outputs):
        raise AssertionError(f"padding solver disagrees with Conv1d: {answer} gives {outputs}")
    if answer.target == -(-i // answer.stride):
        layer = lookup("Conv1d").from_args({"out_channels": 1, "padding": "tf_same", **args})
        window = layer.window_geometry([(1, i)], (1, answer.target))[0]
        if (window.pad_lo, window.pad_hi) != answer.asymmetric:
            raise AssertionError(f"padding solver disagrees with Conv1d's tf_same: {answer}, {window}")


def _transposed_axis(i: int, k: int, s: int, d: int, target: int) -> TransposedPadding:
    if target < 1:
        raise ConvcalcError(f"--out {target} must be positive")
    crop = (i - 1) * s + d * (k - 1) + 1 - target        # = 2p - output_padding
    extras = range(max(s, d))
    pairs = tuple(((crop + op) // 2, op) for op in extras if crop + op >= 0 and (crop + op) % 2 == 0)
    reason = ""
    if not pairs:
        largest = (i - 1) * s + d * (k - 1) + extras[-1] + 1
        if crop + extras[-1] < 0:
            reason = (f"the largest output is {largest} (padding 0, output_padding {extras[-1]}): {target} is too"
                      f" large for {i} inputs at stride {s}")
        else:
            reason = (f"(i−1)·s + d·(k−1) + 1 − out = {crop} is odd, and output_padding must be 0 at stride 1 and"
                      " dilation 1 (PyTorch: output_padding < stride or < dilation), so 2·padding cannot make it up")
    for p, op in pairs:
        got = _unit_output("ConvTranspose1d", i, kernel_size=k, stride=s, dilation=d, padding=p, output_padding=op)
        if got != target:
            raise AssertionError(f"padding solver disagrees with ConvTranspose1d: p={p}, op={op} gives {got}")
    return TransposedPadding(i, k, s, d, target, pairs, reason)


def _axis_values(text: Optional[str], option: str, dims: int, default: int) -> list[int]:
    if text is None:
        return [default] * dims
    values = numbers(text, option)
    if len(values) not in (1, dims):
        raise ConvcalcError(f"{option} '{text}' has {len(values)} values; give one, or {dims} (one per axis)")
    return values * dims if len(values) == 1 else values


def solve_padding(in_text: str, kernel_size: str, *, stride: Optional[str] = None, dilation: Optional[str] = None,
                  out: Optional[str] = None, transposed: bool = False) -> PaddingAnswer:
    """The paddings that give each axis ``out`` outputs (conv without ``out``: TF SAME's ⌈i/s⌉, i.e. the input
    size at stride 1); with ``transposed`` the (padding, output_padding) pairs of a transposed conv (without
    ``out``: i·s, an exact upsampling by the stride)."""
    dims = max(len(numbers(t, o)) for t, o in ((in_text, "--in"), (kernel_size, "--kernel-size"),
                                                (stride or "1", "--stride"), (dilation or "1", "--dilation"),
                                                (out or "1", "--out")))
    lengths = _axis_values(in_text, "--in", dims, 1)
    kernels = _axis_values(kernel_size, "--kernel-size", dims, 1)
    strides = _axis_values(stride, "--stride", dims, 1)
    dilations = _axis_values(dilation, "--dilation", dims, 1)
    for option, values in (("--in", lengths), ("--kernel-size", kernels), ("--stride", strides),
                           ("--dilation", dilations)):
        if min(values) < 1:
            raise ConvcalcError(f"{option} must be positive")
    for option, text in (("--in", in_text), ("--kernel-size", kernel_size), ("--stride", stride),
                         ("--dilation", dilation), ("--out", out)):
        if text is not None and max(numbers(text, option)) > MAX_SIZE:
            raise ConvcalcError(f"{option} '{text[:24]}' is too large (at most {MAX_SIZE:,})")
    if transposed:
        targets = _axis_values(out, "--out", dims, 1) if out is not None else [i * s for i, s in zip(lengths, strides)]
        axes: tuple[Any, ...] = tuple(_transposed_axis(*values) for values in
                                      zip(lengths, kernels, strides, dilations, targets))
    else:
        targets = _axis_values(out, "--out", dims, 1) if out is not None else [None] * dims
        axes = tuple(_conv_axis(*values) for values in zip(lengths, kernels, strides, dilations, targets))
    return PaddingAnswer(transposed, out is None, axes)
