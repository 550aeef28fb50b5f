"""CC206, misaligned merges: which merges are misaligned (the analyzer's flag, `Field.misaligned`: the merge whose
own inputs differ in effective stride or centre), and what would line them up.

The advice rests on the centre of a resampling layer's units (Araujo et al.'s alignment condition). In the units of
the finer stride S, a sliding window (kernel k, dilation d, stride s, left padding p) centres output unit u at
``s*u + (k_eff - 1)/2 - p`` steps of its input, and a transposed convolution (kernel k, stride s, padding p) whose
kernel spans at least its stride centres output unit o, on average over the s phases, at ``o + p - (k - 1)/2`` steps
of S from the input unit it scatters from: output o reads input i for s*i = o + p - m (m < k), so
``mean(floor((o+p)/s) + ceil((o+p-k+1)/s)) * s/2 = o + p - (k-1)/2``. A decoder joined with a skip therefore lines up
when ``p - (k - 1)/2`` equals the skip's centre minus the coarse map's, in units of S: after a 2x2 stride-2 max pool
(which centres at +1/2) that is -1/2, i.e. kernel 2 padding 0 or kernel 4 padding 1 (Ronneberger et al.'s U-Net),
and after a centred stride-2 conv (kernel 3 padding 1, +0) it is 0, which only an odd kernel gives (kernel 3
padding 1 output_padding 1), and an odd kernel overlaps unevenly at stride 2 (CC202).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Iterator, Optional

from ..algebra import Field
from ..algebra.numbers import fraction_text
from ..spec.graph import INPUT, Node
from .context import Context, grouped, layer_label
from .model import Finding

# the decoder settings shown: at most this many (kernel, padding) pairs per finding
SHOWN = 3


def _strides(field: Field) -> tuple[Fraction, ...]:
    return tuple(axis.stride for axis in field.axes)


def resampling_layer(ctx: Context, name: str, memo: Optional[dict[str, Optional[Node]]] = None) -> Optional[Node]:
    """The last layer on the way to ``name`` that changed the effective stride (a strided window, an upsampling),
    walking back through inputs of the same stride; None when the path reaches the network input unchanged.
    ``memo`` remembers the answer for every layer walked, so many merges cost one walk over the graph."""
    memo = {} if memo is None else memo
    walked, found = [], None
    while name != INPUT:
        if name in memo:
            found = memo[name]
            break
        walked.append(name)
        node = ctx.nodes[name]
        here = ctx.fields[name]
        if here.whole or not node.inputs:
            break
        same = [source for source in node.inputs if not ctx.fields[source].whole
                and len(ctx.fields[source].axes) == len(here.axes) and _strides(ctx.fields[source]) == _strides(here)]
        if not same:
            found = node
            break
        name = same[0]
    for step in walked:
        memo[step] = found
    return found


def _upsampling(ctx: Context, node: Node, axis: int) -> Optional[int]:
    """The integer factor by which ``node`` refines the stride on ``axis`` (None: it does not upsample)."""
    before, after = ctx.fields[node.inputs[0]], ctx.fields[node.name]
    if before.whole or len(before.axes) != len(after.axes) or not after.axes[axis].stride:
        return None
    ratio = before.axes[axis].stride / after.axes[axis].stride
    return int(ratio) if ratio > 1 and ratio.denominator == 1 else None


def decoder_settings(need: Fraction, stride: int, length_in: int, length_out: int) -> list[tuple[int, int, int]]:
    """(kernel, padding, output_padding) of the transposed convs of ``stride`` that map ``length_in`` units to
    ``length_out`` and centre their units at ``need`` = p - (k - 1)/2 (units of the output's stride): k = 2(p - need)
    + 1, at least the stride (so every output position gets a tap), output_padding in [0, stride)."""
    found = []
    for padding in range(0, 2 * stride + 3):
        kernel = 2 * (padding - need) + 1
        if kernel.denominator != 1 or kernel < max(stride, 1):
            continue
        kernel = int(kernel)
        extra = length_out - ((length_in - 1) * stride - 2 * padding + kernel)
        if 0 <= extra < stride:
            found.append((kernel, padding, extra))
    return found


def _setting_text(kernel: int, padding: int, extra: int, stride: int) -> str:
    text = f"kernel {kernel} padding {padding}" + (f" output_padding {extra}" if extra else "")
    return text + (" (uneven overlap, CC202)" if kernel % stride else "")


def _decoder_advice(ctx: Context, node: Node, axis: int, up: str, reference: str, memo: dict) -> Optional[str]:
    """How the upsampling on the way to input ``up`` of merge ``node`` lines up with input ``reference``."""
    resampler = resampling_layer(ctx, up, memo)
    factor = None if resampler is None else _upsampling(ctx, resampler, axis)
    if resampler is None or factor is None:
        return None
    step = ctx.fields[up].axes[axis].stride
    coarse = ctx.fields[resampler.inputs[0]].axes[axis]
    shift = (ctx.fields[resampler.name].axes[axis].centre - coarse.centre) / step
    need = shift + (ctx.fields[reference].axes[axis].centre - ctx.fields[up].axes[axis].centre) / step
    length_in = ctx.shapes[resampler.inputs[0]][axis + 1]
    length_out = ctx.shapes[resampler.name][axis + 1]
    settings = decoder_settings(need, factor, length_in, length_out)
    text = (f"'{resampler.name}' (x{factor}) centres its units at p - (k-1)/2 = {fraction_text(shift)} of a unit"
            f" from what they read; lining up with '{reference}' needs {fraction_text(need)}")
    if not settings:
        return text + f": no transposed conv of stride {factor} keeps the size; resample '{reference}' instead"
    even = [s for s in settings if s[0] % factor == 0]
    if even:
        return (text + f": a transposed conv of stride {factor} with "
                + " or ".join(_setting_text(*s, factor) for s in even[:SHOWN]))
    text += f": only a kernel that overlaps unevenly does ({_setting_text(*settings[0], factor)})"
    below = resampling_layer(ctx, resampler.inputs[0], memo)
    window = None if below is None else ctx.window(below)
    if factor == 2 and need.denominator == 1 and window is not None and window[axis].stride == 2:
        text += (f"; rather centre the downsampling '{below.name}' between input positions (a kernel-2 stride-2"
                 f" max pool, or a stride-2 conv with an even kernel k and padding k/2 - 1), after which kernel 2"
                 f" padding 0 or kernel 4 padding 1 lines up")
    return text


def _window_advice(ctx: Context, node: Node, axis: int, memo: dict) -> Optional[str]:
    """For merges of downsampled paths: each path's strided window and the shift it gives, (k_eff-1)/2 - pad_lo."""
    parts = []
    for name in node.inputs:
        resampler = resampling_layer(ctx, name, memo)
        window = None if resampler is None else ctx.window(resampler)
        if window is None or len(window) <= axis:
            return None
        w = window[axis]
        shift = Fraction(w.k_eff - 1, 2) - w.pad_lo
        parts.append(f"'{resampler.name}' (kernel {w.k_eff}, stride {w.stride}, padding {w.pad_lo}) {fraction_text(shift)}")
    if len(set(p.rsplit(" ", 1)[1] for p in parts)) < 2:
        return None
    return ("the strided windows shift their units by (k-1)/2 - padding steps of their input: " + ", ".join(parts)
            + "; give them the same shift (odd kernels with padding (k-1)/2: 0; even kernels with padding k/2 - 1:"
              " 1/2)")


def _after_misaligned(ctx: Context) -> dict[str, str]:
    """Per layer, the nearest misaligned merge its field comes through (one pass in graph order): the merges a
    later misaligned merge inherits its shift from."""
    after: dict[str, str] = {}
    for node in ctx.summary.graph.nodes:
        for source in node.inputs:
            if source == INPUT:
                continue
            if ctx.fields[source].misaligned:
                after[node.name] = source
                break
            if source in after:
                after[node.name] = after[source]
                break
    return after


def check_misaligned(ctx: Context) -> Iterator[Finding]:
    """One finding per merge the analyzer flags (the table's ⚠, the JSON's ``misaligned``): its inputs' strides and
    centres per axis, and the decoder settings (or window shifts) that would line them up."""
    after = _after_misaligned(ctx)
    memo: dict[str, Optional[Node]] = {}
    for node in ctx.summary.graph.nodes:
        if len(node.inputs) < 2 or not ctx.fields[node.name].misaligned:
            continue
        inputs = [ctx.fields[name] for name in node.inputs]
        if any(f.whole for f in inputs) or len({len(f.axes) for f in inputs}) != 1:
            continue
        dims = len(inputs[0].axes)
        texts, advice = [], []
        for axis in range(dims):
            strides = [f.axes[axis].stride for f in inputs]
            centres = [f.center(axis) for f in inputs]
            if len(set(strides)) == 1 and len(set(centres)) == 1:
                continue
            texts.append((axis, ", ".join(f"'{name}' stride {fraction_text(s)} centre {fraction_text(c)}"
                                          for name, s, c in zip(node.inputs, strides, centres))))
            found = None
            if len(set(strides)) == 1:
                resamplers = {name: resampling_layer(ctx, name, memo) for name in node.inputs}
                ups = [name for name, r in resamplers.items() if r is not None and _upsampling(ctx, r, axis)]
                others = [name for name in node.inputs if ups and resamplers[name] is not resamplers[ups[0]]]
                if ups and others:
                    found = _decoder_advice(ctx, node, axis, ups[0], others[0], memo)
                elif len({id(r) for r in resamplers.values()}) == 1 and resamplers[node.inputs[0]] is not None:
                    found = (f"every path comes from '{resamplers[node.inputs[0]].name}' at this stride, so the"
                             " layers after it shift their units differently: pad them alike (odd kernels with"
                             " padding (k-1)/2 shift by 0)")
                else:
                    found = _window_advice(ctx, node, axis, memo)
            else:
                found = "resample one path explicitly so that the strides agree"
            if found:
                advice.append((axis, found))
        label = layer_label(node)
        earlier = sorted({after[name] for name in node.inputs if name in after})
        if texts:
            message = (f"{label} merges inputs that do not line up (effective stride and centre of unit 0, in input"
                       f" pixels): {grouped(dims, texts)}")
            if earlier:         # the shift comes (at least partly) from a merge before: that one is to fix first
                message += (f". It comes after the misaligned merge{'s' if len(earlier) > 1 else ''}"
                            f" {', '.join(repr(name) for name in earlier)}: line that up first")
            elif advice:
                message += f". To line them up: {grouped(dims, advice)}"
            yield ctx.finding("CC206", message, node)
        else:                 # a concatenation along a spatial axis: flagged although its inputs agree
            yield ctx.finding("CC206", f"{label} joins its inputs along a spatial axis: neighbouring units come from"
                              " different inputs, shifted by the lengths before them, so no single window describes"
                              " its units", node)


__all__ = ["check_misaligned", "decoder_settings", "resampling_layer"]
