"""Translation rules of ONNX's Pad, Resize, Upsample, DepthToSpace and SpaceToDepth: each mapped to convcalc's
padding, Upsample and PixelShuffle/ChannelShuffle layers only where they compute exactly the same numbers."""

from __future__ import annotations

import math

import numpy as np

from .onnx_ops import torch_pad_list
from .onnx_translate import Translator, per_axis, rule, spatial_rank

_PAD_TYPES = {"reflect": "ReflectionPad", "edge": "ReplicationPad", "wrap": "CircularPad"}


@rule("Pad")
def pad(t: Translator, node, a: dict) -> None:
    x = t.x(node)
    shape = t.shape(node)
    rank = len(shape)
    pads = t.const(node, 1, "pads") if t.model.opset >= 11 else np.array(a.get("pads", []))
    pads = [int(p) for p in np.asarray(pads).ravel()]
    value = t.const(node, 2, "constant_value") if t.model.opset >= 11 else a.get("value", 0.0)
    value = 0.0 if value is None else float(np.asarray(value).ravel()[0]) if np.asarray(value).size else 0.0
    axes = t.const(node, 3, "axes")
    axes = list(range(rank)) if axes is None else [int(v) % rank for v in np.asarray(axes).ravel()]
    if len(pads) != 2 * len(axes):
        raise t.fail(f"pads {pads} do not have 2 values per padded axis ({len(axes)})")
    pairs = {axis: (pads[i], pads[i + len(axes)]) for i, axis in enumerate(axes)}
    for axis in (0, 1):
        if pairs.get(axis, (0, 0)) != (0, 0):
            raise t.fail(f"pads {pads} pad axis {axis} ({'the batch' if axis == 0 else 'the channels'}); convcalc's"
                         " padding layers pad the spatial axes only")
    n = spatial_rank(t, node, shape)
    spatial = [pairs.get(axis, (0, 0)) for axis in range(2, rank)]
    if all(p == (0, 0) for p in spatial):
        t.bind(node.output[0], x)
        return
    mode = a.get("mode", "constant")
    padding = torch_pad_list(spatial)
    if mode == "constant":
        kind, args = (f"ZeroPad{n}d", {"padding": padding}) if value == 0 else (
            f"ConstantPad{n}d", {"padding": padding, "value": value})
    elif mode in _PAD_TYPES:
        if any(p < 0 for p in padding):
            raise t.fail(f"mode '{mode}' with negative pads {pads}: convcalc crops only with constant padding")
        kind, args = f"{_PAD_TYPES[mode]}{n}d", {"padding": padding}
    else:
        raise t.fail(f"mode '{mode}' is not one of ONNX's constant, reflect, edge, wrap")
    t.bind(node.output[0], t.emit(node, kind, args, [x]))


def _scales_and_sizes(t: Translator, node, a: dict, shape):
    """(scales or None, output sizes) per axis of the batched shape."""
    rank = len(shape)
    if node.op_type == "Upsample":
        scales = a.get("scales") if "scales" in a else t.const(node, 1, "scales")
        sizes = None
    elif t.model.opset < 11:
        scales, sizes = t.const(node, 1, "scales"), None
    else:
        scales = t.const(node, 2, "scales")
        sizes = t.const(node, 3, "sizes")
        if scales is not None and scales.size == 0:
            scales = None
    axes = [int(v) % rank for v in a.get("axes", range(rank))]
    if scales is None and sizes is None:
        raise t.fail("neither scales nor sizes is given")
    if a.get("keep_aspect_ratio_policy", "stretch") != "stretch" and sizes is not None:
        raise t.fail(f"keep_aspect_ratio_policy '{a['keep_aspect_ratio_policy']}': convcalc's Upsample stretches"
                     " to the sizes given")
    full_scales = None
    if scales is not None:
        full_scales = [1.0] * rank
        for axis, value in zip(axes, np.asarray(scales, np.float32).ravel()):
            full_scales[axis] = float(value)
        out = [int(math.floor(i * s)) for i, s in zip(shape, np.float32(full_scales))]
    else:
        out = list(shape)
        for axis, value in zip(axes, np.asarray(sizes).ravel()):
            out[axis] = int(value)
    if out[:2] != list(shape[:2]):
        raise t.fail(f"it resizes the batch or the channels ({list(shape)} → {out}); convcalc resamples spatial"
                     " axes only")
    return full_scales, out


def _half_pixel_ties(sizes, out, scales) -> bool:
    """Whether ONNX's half_pixel nearest sampling meets a .5 tie (where round_prefer_floor and torch's
    nearest-exact differ) at these sizes."""
    for axis, (i, o) in enumerate(zip(sizes, out)):
        scale = scales[axis] if scales is not None else o / i
        for x in range(o):
            source = (x + 0.5) / scale - 0.5
            if abs(source - math.floor(source) - 0.5) < 1e-9:
                return True
    return False


@rule("Resize", "Upsample")
def resize(t: Translator, node, a: dict) -> None:
    x = t.x(node)
    shape = t.shape(node)
    n = spatial_rank(t, node, shape)
    scales, out = _scales_and_sizes(t, node, a, shape)
    mode = a.get("mode", "nearest")
    upsample_only = node.op_type == "Upsample" or t.model.opset < 11
    coordinates = "asymmetric" if upsample_only else a.get("coordinate_transformation_mode", "half_pixel")
    nearest = "floor" if upsample_only else a.get("nearest_mode", "round_prefer_floor")
    if int(a.get("antialias", 0)) and any(o < i for o, i in zip(out[2:], shape[2:])):
        raise t.fail("antialias 1 when downsampling: convcalc's Upsample has no antialiasing filter")
    if coordinates == "tf_crop_and_resize":
        raise t.fail("coordinate_transformation_mode 'tf_crop_and_resize': convcalc has no crop-and-resize layer")
    if coordinates == "pytorch_half_pixel" and any(o == 1 < i for o, i in zip(out[2:], shape[2:])):
        raise t.fail("coordinate_transformation_mode 'pytorch_half_pixel' with an output length 1: torch's"
                     " half-pixel rule samples the middle there, ONNX's position 0")
    if coordinates == "align_corners" and scales is not None and mode != "nearest":
        fractional = [(i, s) for i, s in zip(shape[2:], scales[2:]) if float(np.float32(i) * np.float32(s)) % 1]
        if fractional:
            i, s = fractional[0]
            raise t.fail(f"align_corners with scale {s:g} on a length {i}: ONNX stretches to the fractional length"
                         f" {i * s:g}, torch's align_corners (convcalc's) to the whole output length")
    args: dict = {}
    if mode == "nearest":
        if coordinates == "asymmetric" and nearest == "floor":
            args["mode"] = "nearest"
        elif coordinates in ("half_pixel", "pytorch_half_pixel") and (
                nearest == "round_prefer_ceil"
                or (nearest == "round_prefer_floor" and not _half_pixel_ties(shape[2:], out[2:],
                                                                             scales[2:] if scales else None))):
            args["mode"] = "nearest-exact"
        else:
            raise t.fail(f"nearest_mode '{nearest}' with coordinate_transformation_mode '{coordinates}': convcalc's"
                         " Upsample has nearest (asymmetric, floor) and nearest-exact (half_pixel,"
                         " round_prefer_ceil)")
    elif mode in ("linear", "cubic"):
        if coordinates not in ("half_pixel", "pytorch_half_pixel", "align_corners"):
            raise t.fail(f"coordinate_transformation_mode '{coordinates}' with mode '{mode}': convcalc's Upsample"
                         " interpolates with half_pixel or align_corners only")
        if mode == "cubic":
            if n != 2:
                raise t.fail(f"mode 'cubic' on {n} spatial axes: convcalc's bicubic Upsample takes [C, H, W]")
            if not math.isclose(float(a.get("cubic_coeff_a", -0.75)), -0.75, rel_tol=1e-6):
                raise t.fail(f"cubic_coeff_a {a['cubic_coeff_a']}: convcalc's bicubic uses A = -0.75")
            if int(a.get("exclude_outside", 0)):
                raise t.fail("exclude_outside 1: convcalc's bicubic clamps the taps at the borders")
            args["mode"] = "bicubic"
        else:
            args["mode"] = {1: "linear", 2: "bilinear", 3: "trilinear"}[n]
        args["align_corners"] = coordinates == "align_corners"
    else:
        raise t.fail(f"mode '{mode}' is not one of ONNX's nearest, linear, cubic")
    if scales is not None and not (args.get("align_corners")):
        args = {"scale_factor": per_axis_float(scales[2:]), **args}
    else:
        args = {"size": per_axis(out[2:]), **args}
    t.bind(node.output[0], t.emit(node, "Upsample", args, [x]))


def per_axis_float(values):
    values = [float(v) for v in values]
    return values[0] if all(v == values[0] for v in values) else values


@rule("DepthToSpace", "SpaceToDepth")
def depth_space(t: Translator, node, a: dict) -> None:
    x = t.x(node)
    shape = t.shape(node)
    if len(shape) != 4:
        raise t.fail(f"an input of rank {len(shape)}: convcalc's PixelShuffle takes [N, C, H, W]")
    block = int(a["blocksize"])
    if node.op_type == "DepthToSpace":
        if a.get("mode", "DCR") == "DCR":      # channel (i·b + j)·C' + c → c·b² + i·b + j, then PixelShuffle
            x = t.emit(node, "ChannelShuffle", {"groups": block * block}, [x])
        ref = t.emit(node, "PixelShuffle", {"upscale_factor": block}, [x])
    else:               # PixelUnshuffle gives c·b² + i·b + j (CRD); DCR, the default, wants (i·b + j)·C + c
        ref = t.emit(node, "PixelUnshuffle", {"downscale_factor": block}, [x])
        if shape[1] > 1 and a.get("mode", "DCR") == "DCR":
            ref = t.emit(node, "ChannelShuffle", {"groups": shape[1]}, [ref])
    t.bind(node.output[0], ref)
