"""Parameters for the executor: PyTorch's default initialisation, `.npz` state dicts, and hand-set kernels.

Keys are PyTorch ``state_dict`` keys built from convcalc's layer names: ``<layer>.weight``,
``<layer>.bias``, ``<layer>.running_mean``, ... so a torch model whose modules carry the same names
saves a file that loads as it is. A parameter named '' (`LearnableTensor`'s default) has the layer's own name as its
key (torchvision's ``features.1.0.layer_scale``), see `state_key`. A tied layer (``tie:``) has no keys of its own:
its parameters are its owner's (torch's state_dict of a module called twice); a file that lists them under the
tied layer's name too (a module registered under two names) loads when those arrays equal the owner's.
"""

from __future__ import annotations

import difflib
import os
import zipfile
import zlib
from typing import Any, Mapping

import numpy as np

from ..analysis.summary import Summary
from ..errors import ConvcalcError, did_you_mean
from ..spec.graph import Graph, Node
from ..spec.layer_keys import WHOLE_LAYER
from ..kernels import is_real
from .headers import ArrayHeader, npz_headers
from .init_schemes import SCHEME_NAMES, Scheme, applies, is_scheme, parse_scheme

OPTIONAL_BUFFERS = ("num_batches_tracked",)   # bookkeeping of training; inference does not need it


class WeightsError(ConvcalcError):
    """A weights file does not fit the network."""


State = dict[str, dict[str, np.ndarray]]   # layer name -> parameter/buffer name -> array


def state_key(layer: str, name: str) -> str:
    """The state_dict key of parameter/buffer ``name`` of ``layer``: '<layer>.<name>', or the layer's own name for
    a parameter named '' (a tensor that is the layer, as torchvision's ``layer_scale`` attribute)."""
    return f"{layer}.{name}" if name else layer


def expected_keys(summary: Summary) -> dict[str, tuple[int, ...]]:
    """Every state_dict key the network has, with its shape."""
    keys: dict[str, tuple[int, ...]] = {}
    for row in summary.layers:
        for name, shape in {**row.weights, **row.buffer_shapes}.items():
            keys[state_key(row.name, name)] = tuple(shape)
    return keys


def tied_keys(summary: Summary) -> dict[str, str]:
    """The keys a tied layer's parameters would have under its own name -> the owner's key holding them."""
    aliases = {}
    for row in summary.layers:
        if row.tied_to is not None:
            owner = summary.layer(row.tied_to)
            for name in {**owner.weights, **owner.buffer_shapes}:
                aliases[state_key(row.name, name)] = state_key(owner.name, name)
    return aliases


def initial_state(graph: Graph, summary: Summary, seed: int = 0, default: Scheme | None = None) -> State:
    """PyTorch's default initialisation distributions, drawn from one seeded generator in layer order; ``default``:
    a scheme for every layer's parameters of 2 dimensions or more but biases (`init_schemes.applies`, ``convcalc
    run --init``); a layer's own ``init:`` wins. A tied layer draws nothing: it uses its owner's arrays."""
    rng = np.random.default_rng(seed)
    state: State = {}
    for node, row in zip(graph.nodes, summary.layers):
        if row.tied_to is not None:
            state[node.name] = {}
            continue
        inferred = _inferred_of(node, summary)
        values = node.layer.init_params(inferred, rng)
        if default is not None and WHOLE_LAYER not in node.preset:
            values.update({name: default.draw(tuple(shape), rng) for name, shape in row.weights.items()
                           if applies(name, tuple(shape)) and name not in node.preset})
        if node.preset:
            values.update(preset_values(node, row, rng))
        state[node.name] = values
    return state


def with_ties(state: State, graph: Graph) -> State:
    """``state`` with each tied layer's entry the owner's very arrays (what the executor prepares from)."""
    result = dict(state)
    for node in graph.nodes:
        if node.tie is not None:
            result[node.name] = dict(state.get(node.tie, {}))
    return result


def _inferred_of(node: Node, summary: Summary):
    in_shapes = [summary.input_shape if name == "input" else summary.layer(name).output_shape for name in node.inputs]
    return node.layer.infer(in_shapes)


def npz_arrays(path: str | os.PathLike) -> dict[str, ArrayHeader]:
    """What the state dict at ``path`` declares, key by key, from the archive's directory and its members' headers
    alone (`headers.npz_headers`): checked against the network (`check_state_shapes`) and the memory budget before
    `load_npz` inflates anything."""
    if not os.path.exists(path):
        raise WeightsError(f"no such weights file: {path}")
    return npz_headers(path, WeightsError, "weights file")


def load_npz(path: str | os.PathLike, declared: Mapping[str, ArrayHeader] | None = None) -> dict[str, np.ndarray]:
    """A state dict saved with np.savez (no pickles); ``declared``: its `npz_arrays`, when already read."""
    declared = npz_arrays(path) if declared is None else declared
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in declared}
    except FileNotFoundError:
        raise WeightsError(f"no such weights file: {path}") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:   # corrupt archives
        raise WeightsError(f"cannot read weights file {path}: {str(exc)[:200]}") from None


def check_state_shapes(shapes: Mapping[str, tuple[int, ...]], summary: Summary, source: str = "weights") -> None:
    """Every key of a flat state dict (given by its arrays' shapes) and shape against the network's; all problems
    are reported at once."""
    expected = expected_keys(summary)
    aliases = tied_keys(summary)      # optional: a tied layer's parameters under its own name too
    expected_or_alias = {**{alias: expected[owner] for alias, owner in aliases.items()}, **expected}
    missing = [k for k in expected if k not in shapes and k.rsplit(".", 1)[-1] not in OPTIONAL_BUFFERS]
    unexpected = [k for k in shapes if k not in expected_or_alias]
    misshaped = [f"{k} is {list(shapes[k])}, expected {list(expected_or_alias[k])}"
                 for k in expected_or_alias if k in shapes and tuple(shapes[k]) != expected_or_alias[k]]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)}: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)}: {', '.join(unexpected)}")
    if misshaped:
        problems.append(f"wrong shape {len(misshaped)}: {'; '.join(misshaped)}")
    if problems:
        raise WeightsError(f"{source} do not fit the network: " + " | ".join(problems))


def state_from_dict(flat: Mapping[str, np.ndarray], summary: Summary, source: str = "weights") -> State:
    """Split a flat state dict by layer, after checking every key and shape (`check_state_shapes`)."""
    check_state_shapes({key: tuple(np.shape(value)) for key, value in flat.items()}, summary, source)
    state: State = {row.name: {} for row in summary.layers}
    owners = {state_key(row.name, name): (row.name, name)     # a composite's names hold dots: 'dw.pointwise.weight'
              for row in summary.layers for name in {**row.weights, **row.buffer_shapes}}
    for alias, key in tied_keys(summary).items():
        if alias in flat and key in flat and not np.array_equal(np.asarray(flat[alias]), np.asarray(flat[key])):
            raise WeightsError(f"{source}: {alias} differs from {key}, but they are one parameter (the layer is"
                               " tied: its parameters are its owner's)")
    for key, value in flat.items():
        if key not in owners:
            continue                                           # a tied layer's copy of its owner's (checked equal)
        layer, name = owners[key]
        array = np.asarray(value)
        if name.rsplit(".", 1)[-1] not in OPTIONAL_BUFFERS and not is_real(array.dtype):
            raise WeightsError(f"{source}: {key} holds {array.dtype} values, not real numbers")
        state[layer][name] = array
    return state


# --------------------------------------------------------------------------- hand-set kernels

def _named_filter(name: str, size: tuple[int, ...]) -> np.ndarray:
    """The classic 2-D image filters (and box/identity/gaussian in any size and dimension)."""
    fixed = {
        "sobel_x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
        "sobel_y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
        "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
        "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
        "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
    }
    if name in fixed:
        if size != (3, 3):
            raise ValueError(f"filter '{name}' is 3x3, but the kernel is {'x'.join(map(str, size))}")
        return np.array(fixed[name], dtype=np.float64)
    if name == "box":
        return np.full(size, 1.0 / np.prod(size))
    if name == "identity":
        if any(k % 2 == 0 for k in size):
            raise ValueError(f"filter 'identity' needs odd kernel sizes, got {'x'.join(map(str, size))}")
        kernel = np.zeros(size)
        kernel[tuple(k // 2 for k in size)] = 1.0
        return kernel
    if name == "gaussian":
        kernel = np.ones(())
        for k in size:  # OpenCV's default sigma for a k-tap kernel
            sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8
            taps = np.exp(-((np.arange(k) - (k - 1) / 2) ** 2) / (2 * sigma ** 2))
            kernel = np.multiply.outer(kernel, taps / taps.sum())
        return kernel
    raise ValueError(f"unknown filter '{name}'; valid: {', '.join([*fixed, 'box', 'identity', 'gaussian'])}")


FILTER_NAMES = ("identity", "box", "gaussian", "sobel_x", "sobel_y", "laplacian", "sharpen", "emboss")


def preset_values(node: Node, row, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """Hand-set parameters of a layer (``init:`` in the spec): numbers, nested lists, named filters or schemes.

    For a conv weight (O, C/g, *k), a filter name or a kernel-sized list fills every (out, in) pair; a list
    with one entry per output channel sets each output's kernel (repeated over its input channels); a
    list of the full shape is taken as it is. Other parameters take a number (filled) or a list of their shape.
    A scheme (`init_schemes.parse_scheme`) is drawn from ``rng``. One value for the whole layer (``WHOLE_LAYER``):
    a number fills every parameter, a scheme draws those `init_schemes.applies` to.
    """
    values: dict[str, np.ndarray] = {}
    shapes = {**row.weights, **row.buffer_shapes}
    rng = np.random.default_rng(0) if rng is None else rng
    for name, spec in node.preset.items():
        where = node.preset_locations.get(name, node.location)
        if name == WHOLE_LAYER:
            values.update(_whole_layer(node, row, spec, rng, where))
            continue
        if name not in shapes:
            valid = ", ".join(repr(k) if not k else k for k in shapes) or "none"
            raise ConvcalcError(f"layer '{node.name}' ({node.type_name}): 'init' names '{name}', which this layer"
                                f" does not have (it has: {valid})", where, node.trace)
        try:
            values[name] = _fill(spec, tuple(shapes[name]), rng)
        except ValueError as exc:
            raise ConvcalcError(f"layer '{node.name}' ({node.type_name}): init of '{name}': {exc}", where,
                                node.trace) from None
    return values


def _whole_layer(node: Node, row, spec: Any, rng: np.random.Generator, where) -> dict[str, np.ndarray]:
    """``init: VALUE`` for a whole layer: a number fills every parameter; a scheme draws the ones it applies to."""
    try:
        if is_scheme(spec):
            scheme = parse_scheme(spec)
            chosen = {name: tuple(shape) for name, shape in row.weights.items() if applies(name, tuple(shape))}
            if chosen:
                return {name: scheme.draw(shape, rng) for name, shape in chosen.items()}
            problem = (f"{scheme.name} sets the parameters of 2 dimensions or more but biases, and this layer has"
                       f" none (it has: {', '.join(map(repr, row.weights)) or 'no parameters'}); name the"
                       " parameter instead: init: {NAME: ...}")
        elif not row.weights:
            problem = "this layer has no parameters"
        else:
            number = _number(spec)
            return {name: np.full(tuple(shape), number) for name, shape in row.weights.items()}
    except ValueError as exc:
        problem = str(exc)
    raise ConvcalcError(f"layer '{node.name}' ({node.type_name}): init: {problem}", where, node.trace)


def _number(spec: Any) -> float:
    """A number (numeric text too: YAML 1.1 loads 1e-6 as a string), else ValueError."""
    if isinstance(spec, (int, float, str)) and not isinstance(spec, bool):
        try:
            return float(spec)
        except ValueError:
            pass
    raise ValueError(f"one value for the whole layer is a number or a scheme (valid: a scheme's name or"
                     f" {{scheme: NAME, ...}}), got {spec!r}")


def _fill(spec: Any, shape: tuple[int, ...], rng: np.random.Generator | None = None) -> np.ndarray:
    if is_scheme(spec):
        return parse_scheme(spec).draw(shape, np.random.default_rng(0) if rng is None else rng)
    kernel = shape[2:]
    if isinstance(spec, str) and spec not in FILTER_NAMES:
        try:
            return np.full(shape, _number(spec))        # numeric text: YAML 1.1 loads 1e-6 as a string
        except ValueError:
            if difflib.get_close_matches(spec, SCHEME_NAMES, 1):     # else: the filters' message below
                raise ValueError(f"unknown initialisation scheme '{spec}'; "
                                 f"{did_you_mean(spec, SCHEME_NAMES)}") from None
    if isinstance(spec, str):
        if len(shape) < 3:
            raise ValueError(f"a named filter needs a kernel, but the shape is {list(shape)}")
        return np.broadcast_to(_named_filter(spec, kernel), shape).copy()
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return np.full(shape, float(spec))
    if isinstance(spec, list):
        if len(shape) >= 3 and len(spec) == shape[0] and any(isinstance(s, str) for s in spec):
            return np.stack([_fill(s, (1, *shape[1:]))[0] for s in spec])
        try:
            array = np.array(spec, dtype=np.float64)
        except ValueError:
            raise ValueError("the list is ragged or holds something other than numbers and filter names") from None
        if array.shape == shape:
            return array
        if len(shape) >= 3 and array.shape == kernel:
            return np.broadcast_to(array, shape).copy()
        if len(shape) >= 3 and array.shape == (shape[0], *kernel):
            return np.broadcast_to(array[:, None], shape).copy()
        raise ValueError(f"a list of shape {list(array.shape)} does not fit {list(shape)}")
    raise ValueError(f"expected a number, a list, a filter name or a scheme, got {spec!r}")

