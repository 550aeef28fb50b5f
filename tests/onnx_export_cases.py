"""Small specs, one or more per registered layer type, for the ONNX exporter's per-type tests
(tests/test_onnx_export.py): each is a dict for `convcalc.spec_from_dict`, input first. Arguments are chosen to reach
the exporter's less common paths (ceil_mode averages, uneven adaptive bins, reflect/circular padding, an even LRN
window, negative pads, tf_same, grouped unshared convs)."""

from __future__ import annotations

from typing import Any

SHAPES = {1: [4, 10], 2: [4, 9, 10], 3: [4, 5, 6, 7], None: [4, 9, 10]}


def _pairs(dims: int, values: list[int]) -> list[int]:
    return values[:2 * dims]


def _per_dims(prefix: str, dims_list, variants) -> list[tuple[str, dict]]:
    """``variants(dims)`` -> list of argument dicts, for type f"{prefix}{dims}d"."""
    cases = []
    for dims in dims_list:
        for args in variants(dims):
            cases.append((f"{prefix}{dims}d", {"input": SHAPES[dims], "layers": [{"type": f"{prefix}{dims}d", **args}]}))
    return cases


def _single(type_name: str, args: dict | None = None, shape: list[int] | None = None,
            before: list[dict] | None = None) -> tuple[str, dict]:
    return type_name, {"input": shape or SHAPES[None],
                       "layers": [*(before or []), {"type": type_name, **(args or {})}]}


def cases() -> list[tuple[str, dict]]:
    found: list[tuple[str, dict]] = []
    found += _per_dims("Conv", (1, 2, 3), lambda d: [
        {"out_channels": 6, "kernel_size": 3, "padding": 1, "stride": 2, "groups": 2},
        {"out_channels": 3, "kernel_size": 3, "padding": 2, "padding_mode": "reflect", "dilation": 2},
        {"out_channels": 3, "kernel_size": 3, "padding": "tf_same", "stride": 2, "flip_kernel": True},
    ])
    found += [("Conv2d", {"input": SHAPES[2], "layers": [
        {"type": "Conv2d", "out_channels": 3, "kernel_size": [3, 2], "padding": [[2, -1], [1, 0]],
         "padding_mode": "circular", "bias": False}]}),
        ("Conv2d", {"input": SHAPES[2], "layers": [
            {"type": "Conv2d", "out_channels": 3, "kernel_size": 3, "padding": "same", "padding_mode": "replicate"}]}),
        ("Conv2d", {"input": SHAPES[2], "layers": [
            {"type": "Conv2d", "out_channels": 3, "kernel_size": 3, "padding": "full"}]})]
    found += _per_dims("ConvTranspose", (1, 2, 3), lambda d: [
        {"out_channels": 6, "kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1, "groups": 2},
        {"out_channels": 3, "kernel_size": 2, "stride": 3, "dilation": 2, "output_size": {1: [31], 2: [28, 31], 3: [16, 19, 22]}[d]},
    ])
    found += _per_dims("DepthwiseSeparableConv", (1, 2), lambda d: [
        {"out_channels": 6, "kernel_size": 3, "padding": 1, "depth_multiplier": 2, "norm": f"BatchNorm{d}d",
         "activation": "ReLU"}])
    found += [_single("SpatiallySeparableConv2d", {"out_channels": 6, "kernel_size": 3, "padding": 1,
                                                    "mid_channels": 5, "activation": "ReLU"}),
              _single("FlattenedConv2d", {"out_channels": 6, "kernel_size": 3, "padding": 1, "stride": 2})]
    found += _per_dims("GatedConv", (1, 2), lambda d: [{"out_channels": 6, "kernel_size": 3, "padding": 1}])
    found += _per_dims("LocallyConnected", (1, 2), lambda d: [
        {"out_channels": 6, "kernel_size": 3, "stride": 2, "groups": 2, "padding": 1}])
    found += [_single("TiledConv2d", {"out_channels": 6, "kernel_size": 3, "tile_size": [2, 3], "groups": 2}),
              _single("PartialConv2d", {"out_channels": 5, "kernel_size": 3, "padding": 1}),
              _single("PartialConv2d", {"out_channels": 5, "kernel_size": 3, "padding": 2, "stride": 2,
                                        "derive_mask": "nonzero", "multi_channel": True},
                      before=[{"type": "ReLU"}]),
              ("PartialConv2d", {"input": [5, 9, 10], "layers": [
                  {"name": "image", "type": "Narrow", "dim": 1, "start": 0, "length": 4},
                  {"name": "mask", "type": "Narrow", "from": "input", "dim": 1, "start": 4, "length": 1},
                  {"name": "holes", "type": "ReLU", "from": "mask"},
                  {"name": "conv", "type": "PartialConv2d", "from": ["image", "holes"], "out_channels": 3,
                   "kernel_size": 3, "padding": 1}]}),
              _single("PartialConvMask2d", {"kernel_size": 3, "padding": 1, "derive_mask": "nonzero"},
                      before=[{"type": "ReLU"}]),
              _single("PartialConvMask2d", {"kernel_size": 3, "stride": 2, "multi_channel": True,
                                            "out_channels": 3, "derive_mask": "nonzero"},
                      before=[{"type": "ReLU"}])]
    found += _per_dims("MaxPool", (1, 2, 3), lambda d: [
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"kernel_size": 2, "dilation": 2, "stride": 1},
        {"kernel_size": 3, "stride": 2, "padding": "tf_same"}])
    found += _per_dims("MinPool", (1, 2, 3), lambda d: [{"kernel_size": 2, "ceil_mode": True}])
    found += _per_dims("AvgPool", (1, 2, 3), lambda d: [
        {"kernel_size": 3, "stride": 2, "padding": 1},
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False},
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"kernel_size": 2, "stride": 1, "dilation": 2, "padding": [[1, 0]] * d},
        {"kernel_size": 3, "stride": 2, "padding": "tf_same"},
        *([{"kernel_size": 2, "divisor_override": 3}] if d > 1 else [])])
    found += _per_dims("LPPool", (1, 2, 3), lambda d: [
        {"norm_type": 2, "kernel_size": 2, "ceil_mode": True},
        {"norm_type": 3, "kernel_size": 3, "stride": 2, "abs": True, "padding": 1},
        {"norm_type": "inf", "kernel_size": 2}])
    found += _per_dims("AdaptiveAvgPool", (1, 2, 3), lambda d: [{"output_size": 3}, {"output_size": 1},
                                                                {"output_size": 2 if d != 2 else [3, 5]}])
    found += _per_dims("AdaptiveMaxPool", (1, 2, 3), lambda d: [{"output_size": 3}, {"output_size": 1}])
    found += [_single("GlobalAvgPool"), _single("GlobalAvgPool", {"keepdim": False}), _single("GlobalMaxPool"),
              _single("GlobalMaxPool", {"keepdim": False}, shape=SHAPES[3])]
    for dims in (1, 2, 3):
        found.append((f"MaxUnpool{dims}d", {"input": [4, 8, 10, 6][:dims + 1], "layers": [
            {"name": "pool", "type": f"MaxPool{dims}d", "kernel_size": 2, "return_indices": True},
            {"type": f"MaxUnpool{dims}d", "pool": "pool"}]}))
    found += [_single("Upsample", args) for args in (
        {"scale_factor": 2}, {"size": [7, 13]}, {"scale_factor": 1.7, "mode": "nearest-exact"},
        {"scale_factor": 2, "mode": "bilinear", "align_corners": True}, {"size": [5, 17], "mode": "bilinear"},
        {"scale_factor": 1.5, "mode": "bicubic"}, {"size": [4, 6], "mode": "area"},
        {"scale_factor": 0.6, "mode": "bilinear"}, {"size": [4, 1], "mode": "bilinear"},
        {"scale_factor": [0.5, 1.3], "mode": "bilinear", "align_corners": True},
        {"scale_factor": 1.3, "mode": "bilinear", "recompute_scale_factor": True})]
    found += [_single("Upsample", {"scale_factor": 2.5, "mode": "linear"}, SHAPES[1]),
              _single("Upsample", {"size": [3, 8, 9], "mode": "trilinear"}, SHAPES[3]),
              _single("UpsamplingNearest2d", {"scale_factor": 2}),
              _single("UpsamplingBilinear2d", {"size": [5, 7]}),
              _single("PixelShuffle", {"upscale_factor": 2}, [8, 3, 4]),
              _single("PixelUnshuffle", {"downscale_factor": 2}, [4, 6, 8])]
    for family, extra in (("ZeroPad", {}), ("ConstantPad", {"value": 0.5}), ("ReflectionPad", {}),
                          ("ReplicationPad", {}), ("CircularPad", {})):
        found += _per_dims(family, (1, 2, 3), lambda d, extra=extra, family=family: [
            {"padding": _pairs(d, [1, 2, 2, 1, 0, 1]), **extra},
            *([{"padding": _pairs(d, [-1, 2, 1, -2, 1, 0]), **extra}] if family in ("ZeroPad", "ConstantPad",
                                                                                  "ReplicationPad") else [])])
    found += [_single("Linear", {"out_features": 5}), _single("Linear", {"out_features": 5, "bias": False}, [12])]
    found += [("BatchNorm1d", {"input": shape, "layers": [{"type": "BatchNorm1d", **args}]})
              for shape, args in (([4, 10], {}), ([4, 10], {"track_running_stats": False}), ([12], {}),
                                  ([12], {"affine": False}))]
    found += [("BatchNorm2d", {"input": SHAPES[2], "layers": [{"type": "BatchNorm2d", **args}]})
              for args in ({}, {"track_running_stats": False, "eps": 0.1}, {"bias": False})]
    found += [("BatchNorm3d", {"input": SHAPES[3], "layers": [{"type": "BatchNorm3d"}]})]
    found += _per_dims("InstanceNorm", (1, 2, 3), lambda d: [{"affine": True}, {"track_running_stats": True}, {}])
    found += [_single("LayerNorm", {"normalized_shape": [9, 10]}),
              _single("LayerNorm", {"normalized_shape": 10, "elementwise_affine": False}),
              _single("LayerNorm2d", {"eps": 1e-6}), _single("LayerNorm2d", {"normalized_shape": [10, 4]}),
              _single("GroupNorm", {"num_groups": 2}), _single("GroupNorm", {"num_groups": 4, "affine": False}),
              _single("LocalResponseNorm", {"size": 4}), _single("LocalResponseNorm", {"size": 3, "k": 2})]
    for name in ("ReLU", "ReLU6", "Sigmoid", "Tanh", "Abs", "Identity", "SiLU", "Hardswish", "Hardsigmoid", "Mish",
                 "SELU", "Dropout", "Dropout2d"):
        found.append(_single(name))
    found += [_single("Dropout1d", shape=SHAPES[1]), _single("Dropout3d", shape=SHAPES[3]),
              _single("Sqrt", before=[{"type": "Abs"}]),
              _single("LeakyReLU", {"negative_slope": 0.2}), _single("ELU", {"alpha": 0.5}),
              _single("CELU", {"alpha": 2.0}), _single("GELU"), _single("GELU", {"approximate": "tanh"}),
              _single("Softplus", {"beta": 2, "threshold": 1}), _single("Hardtanh", {"min_val": -0.5, "max_val": 0.7}),
              _single("Threshold", {"threshold": 0.1, "value": -2}), _single("Softmax"),
              _single("LogSoftmax", {"dim": 2}), _single("Softmin", {"dim": -1}), _single("GLU"),
              _single("GLU", {"dim": 1}), _single("PReLU", {"num_parameters": 4}), _single("PReLU"),
              _single("StochasticDepth", {"p": 0.2, "mode": "row"}),
              _single("Maxout", {"pool_size": 2}), _single("Maxout", {"pool_size": 3}, [12]),
              _single("ChannelMaxPool", {"kernel_size": 3, "stride": 1}), _single("ChannelAvgPool", {"kernel_size": 2}),
              _single("ChannelShuffle", {"groups": 2}), _single("Flatten"), _single("Flatten", {"start_dim": 2}),
              _single("Permute", {"dims": [0, 2, 3, 1]}),
              _single("Unflatten", {"dim": 2, "unflattened_size": [3, -1]}), _single("Reshape", {"shape": [4, 90]}),
              _single("Narrow", {"dim": 2, "start": -5, "length": 3}),
              ("Chunk", {"input": SHAPES[None], "layers": [{"name": "parts", "type": "Chunk", "chunks": 3, "dim": 3},
                                                           {"type": "ReLU", "from": "parts.2"}]}),
              ("Split", {"input": SHAPES[None], "layers": [
                  {"name": "parts", "type": "Split", "split_size_or_sections": [2, 7], "dim": 2},
                  {"type": "ReLU", "from": "parts.1"}]}),
              _single("LearnableTensor", {"shape": [4, 1, 1]}),
              _single("LearnableTensor", {"shape": [9, 10], "op": "add", "param": "gamma"})]
    for merge in ("Add", "Multiply", "Concat"):
        found.append((merge, {"input": SHAPES[None], "layers": [
            {"name": "conv", "type": "Conv2d", "out_channels": 4, "kernel_size": 1},
            {"type": merge, "from": ["input", "conv", "input"]}]}))
    return found


CASES: list[tuple[str, dict[str, Any]]] = cases()
