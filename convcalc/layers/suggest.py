""""Did you mean": the layer type or argument a spec most likely meant, knowing Keras/TensorFlow's names.

A spec written from a Keras model says ``Conv2DTranspose``, ``BatchNormalization``, ``Dense``, ``filters``,
``strides``, ``activation: relu``; one written from memory says ``BatchNorm`` without the dimensionality. Spelling
distance alone answers ``ConvTranspose3d`` for ``Conv2DTranspose`` and ``BatchNorm3d`` for ``BatchNorm``: here the
known aliases come first, then the same family at the spec's dimensionality, then the closest spelling.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Iterable, Mapping

DIMS_WORD = re.compile(r"([123])d$")

# Keras / TensorFlow layer names (lower case, no underscores) -> the type here ({n}: the spec's dims) and a note.
KERAS_TYPES: dict[str, tuple[str, str]] = {
    **{f"conv{n}dtranspose": (f"ConvTranspose{n}d", "") for n in "123"},
    **{f"convolution{n}dtranspose": (f"ConvTranspose{n}d", "") for n in "123"},
    **{f"deconvolution{n}d": (f"ConvTranspose{n}d", "") for n in "123"},
    **{f"convolution{n}d": (f"Conv{n}d", "") for n in "123"},
    **{f"maxpooling{n}d": (f"MaxPool{n}d", "Keras' pool_size is kernel_size") for n in "123"},
    **{f"averagepooling{n}d": (f"AvgPool{n}d", "Keras' pool_size is kernel_size") for n in "123"},
    **{f"avgpooling{n}d": (f"AvgPool{n}d", "") for n in "123"},
    **{f"globalaveragepooling{n}d": ("GlobalAvgPool", "then Flatten: Keras' also flattens") for n in "123"},
    **{f"globalavgpool{n}d": ("GlobalAvgPool", "") for n in "123"},
    **{f"globalmaxpooling{n}d": ("GlobalMaxPool", "then Flatten: Keras' also flattens") for n in "123"},
    **{f"globalmaxpool{n}d": ("GlobalMaxPool", "") for n in "123"},
    **{f"upsampling{n}d": ("Upsample", "Keras' size: 2 is scale_factor: 2") for n in "123"},
    **{f"zeropadding{n}d": (f"ZeroPad{n}d", "") for n in "123"},
    **{f"cropping{n}d": (f"ZeroPad{n}d", "a negative padding crops") for n in "123"},
    **{f"spatialdropout{n}d": (f"Dropout{n}d", "") for n in "123"},
    **{f"depthwiseconv{n}d": (f"Conv{n}d", "with groups equal to its in_channels; out_channels = in_channels x"
                                           " depth_multiplier") for n in "12"},
    "batchnormalization": ("BatchNorm{n}d", ""),
    "batchnorm": ("BatchNorm{n}d", ""),
    "instancenormalization": ("InstanceNorm{n}d", ""),
    "layernormalization": ("LayerNorm", ""),
    "groupnormalization": ("GroupNorm", ""),
    "dense": ("Linear", "Keras' units is out_features"),
    "fullyconnected": ("Linear", ""),
    "concatenate": ("Concat", ""),
    "activation": ("", "Keras' Activation is the activation's own type here: ReLU, Sigmoid, Tanh, Softmax, GELU,"
                       " SiLU, ..."),
    "inputlayer": ("", "the network's input is the spec's top-level 'input: [C, H, W]', not a layer"),
    "input": ("", "the network's input is the spec's top-level 'input: [C, H, W]', not a layer"),
}

# Keras argument names -> the name here, for the types that take it.
KERAS_ARGS: dict[str, str] = {
    "filters": "out_channels", "strides": "stride", "use_bias": "bias", "units": "out_features",
    "dilation_rate": "dilation", "pool_size": "kernel_size", "rate": "p", "epsilon": "eps", "axis": "dim",
    "size": "scale_factor", "kernel_initializer": "init", "bias_initializer": "init", "center": "affine",
    "scale": "affine",
}

ARG_NOTES: dict[str, str] = {
    "data_format": "shapes here are always channels first ([C, H, W]): drop it",
    "input_shape": "the network's input is the spec's top-level 'input: [C, H, W]'",
    "depth_multiplier": "a depthwise conv here is a Conv2d with groups equal to its in_channels and out_channels ="
                        " in_channels x depth_multiplier",
}

KERAS_ACTIVATIONS = {
    "relu": "ReLU", "relu6": "ReLU6", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax", "elu": "ELU",
    "selu": "SELU", "gelu": "GELU", "swish": "SiLU", "silu": "SiLU", "hard_sigmoid": "Hardsigmoid",
    "hardsigmoid": "Hardsigmoid", "hard_swish": "Hardswish", "hardswish": "Hardswish", "leaky_relu": "LeakyReLU",
    "mish": "Mish", "softplus": "Softplus", "log_softmax": "LogSoftmax",
}


def _canonical(choices: Iterable[str]) -> dict[str, str]:
    return {c.lower(): c for c in choices}


def _dims_preferred(names: list[str], dims: int) -> list[str]:
    """``names`` with those of the spec's dimensionality (or of none) first, keeping their order otherwise."""
    def rank(name: str) -> int:
        found = DIMS_WORD.search(name.lower())
        return 0 if found is None or int(found.group(1)) == dims else 1
    return sorted(names, key=rank)


def closest_type(word: str, choices: Iterable[str], dims: int = 2) -> tuple[str | None, str]:
    """The type ``word`` most likely means (None: no guess) and a note (a Keras argument to rename, ...)."""
    lowered = _canonical(choices)
    key = word.lower().replace("_", "").replace("-", "")
    if key in KERAS_TYPES:
        target, note = KERAS_TYPES[key]
        target = target.replace("{n}", str(dims))
        return (lowered.get(target.lower()) if target else None), note
    if key in lowered:                                  # 'max_pool2d' -> MaxPool2d
        return lowered[key], ""
    for suffix in (f"{dims}d", "2d", "1d", "3d"):       # 'BatchNorm', 'MaxPool' at the spec's dimensionality
        if key + suffix in lowered:
            return lowered[key + suffix], ""
    found = DIMS_WORD.search(key)                       # 'Conv2DTranspose' spelled otherwise: 'convtranspose2d'
    if found:
        stem = key[:found.start()]
        for known in lowered:
            if known.endswith(found.group(0)) and sorted(known[:-2]) == sorted(stem):
                return lowered[known], ""
    close = difflib.get_close_matches(key, list(lowered), n=6, cutoff=0.6)
    if close:
        best = difflib.SequenceMatcher(None, key, close[0]).ratio()
        near_best = [c for c in close if difflib.SequenceMatcher(None, key, c).ratio() >= best - 0.08]
        return lowered[_dims_preferred(near_best, dims)[0]], ""
    return None, ""


def type_hint(word: str, choices: Iterable[str], listing: str, dims: int = 2) -> str:
    """'did you mean 'ConvTranspose2d'? <listing>', with a note when there is one; else the closest spellings."""
    choices = list(choices)
    target, note = closest_type(word, choices, dims)
    if target is not None:
        return f"did you mean '{target}'{f' ({note})' if note else ''}? {listing}"
    if note:
        return f"{note}; {listing}"
    lowered = _canonical(choices)
    near = difflib.get_close_matches(word.lower(), list(lowered), n=5, cutoff=0.5)
    if near:
        return f"closest: {', '.join(lowered[n] for n in _dims_preferred(near, dims))}; {listing}"
    return listing


def argument_hint(name: str, raw: Mapping[str, Any], arguments: Iterable[str]) -> str | None:
    """A hint for an unknown argument that Keras (or a YAML slip) explains, or None: 'filters' is out_channels,
    'activation: relu' is a ReLU layer after it."""
    known = set(arguments)
    text = str(name)
    if text == "activation":
        value = raw.get(name)
        if isinstance(value, str) and value.lower() in ("linear", "none"):
            return "Keras' activation: linear is no activation at all: drop the argument"
        activation = KERAS_ACTIVATIONS.get(str(value).lower()) if isinstance(value, str) else None
        if activation:
            return f"there is no fused activation: add a {activation} layer after it ({{type: {activation}}})"
        return "there is no fused activation: add the activation's layer after it (ReLU, Sigmoid, ...)"
    if text in KERAS_ARGS and KERAS_ARGS[text] in known:
        return f"did you mean '{KERAS_ARGS[text]}' (Keras' {text})?"
    if text in ARG_NOTES:
        return ARG_NOTES[text]
    return None


def tuple_argument(name: Any, raw: Mapping[str, Any]) -> str | None:
    """The argument written as a tuple inside a flow mapping, ``{kernel_size: (3, 3)}``, which YAML reads as the
    keys ``kernel_size: '(3'`` and ``'3)'``: given the stray key ``name``, the argument it broke off from."""
    if not re.fullmatch(r"\s*-?\d+\s*\)\s*", str(name)):
        return None
    return next((k for k, v in raw.items() if isinstance(v, str) and re.fullmatch(r"\s*\(\s*-?\d+\s*", v)), None)


def list_hint(value: Any) -> str | None:
    """'[3, 3]' for a size written as text: '(3, 3)', '3x3', '3,3', '3 3'; else None."""
    if not isinstance(value, str):
        return None
    found = re.fullmatch(r"\s*[(\[]?\s*(\d+(?:\s*(?:,|x|×|\s)\s*\d+)+)\s*,?\s*[)\]]?\s*", value)
    if found is None:
        return None
    numbers = re.findall(r"\d+", found.group(1))
    return f"[{', '.join(numbers)}]"


__all__ = ["KERAS_ARGS", "KERAS_TYPES", "argument_hint", "closest_type", "list_hint", "tuple_argument", "type_hint"]
