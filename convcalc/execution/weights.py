"""Parameters for the executor: PyTorch's default initialisation, `.npz` state dicts, and hand-set kernels.

Keys are PyTorch ``state_dict`` keys built from convcalc's layer names: ``<layer>.weight``,
``<layer>.bias``, ``<layer>.running_mean``, ... so a torch model whose modules carry the same names
saves a file that loads as it is.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from typing import Any, Mapping

import numpy as np

from ..analysis.summary import Summary
from ..errors import ConvcalcError
from ..spec.graph import Graph, Node
from ..kernels import is_real
from .headers import ArrayHeader, npz_headers

OPTIONAL_BUFFERS = ("num_batches_tracked",)   # bookkeeping of training; inference does not need it


class WeightsError(ConvcalcError):
    """A weights file does not fit the network."""


State = dict[str, dict[str, np.ndarray]]   # layer name -> parameter/buffer name -> array


def expected_keys(summary: Summary) -> dict[str, tuple[int, ...]]:
    """Every state_dict key the network has, with its shape."""
    keys: dict[str, tuple[int, ...]] = {}
    for row in summary.layers:
        for name, shape in {**row.weights, **row.buffer_shapes}.items():
            keys[f"{row.name}.{name}"] = tuple(shape)
    return keys


def initial_state(graph: Graph, summary: Summary, seed: int = 0) -> State:
    """PyTorch's default initialisation distributions, drawn from one seeded generator in layer order."""
    rng = np.random.default_rng(seed)
    state: State = {}
    for node, row in zip(graph.nodes, summary.layers):
        inferred = _inferred_of(node, summary)
        values = node.layer.init_params(inferred, rng)
        if node.preset:
            values.update(preset_values(node, row))
        state[node.name] = values
    return state


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
    missing = [k for k in expected if k not in shapes and k.rsplit(".", 1)[1] not in OPTIONAL_BUFFERS]
    unexpected = [k for k in shapes if k not in expected]
    misshaped = [f"{k} is {list(shapes[k])}, expected {list(expected[k])}"
                 for k in expected if k in shapes and tuple(shapes[k]) != expected[k]]
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
    owners = {f"{row.name}.{name}": (row.name, name)            # a composite's names hold dots: 'dw.pointwise.weight'
              for row in summary.layers for name in {**row.weights, **row.buffer_shapes}}
    for key, value in flat.items():
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


def preset_values(node: Node, row) -> dict[str, np.ndarray]:
    """Hand-set parameters of a layer (``init:`` in the spec): numbers, nested lists, or named filters.

    For a conv weight (O, C/g, *k), a filter name or a kernel-sized list fills every (out, in) pair; a list
    with one entry per output channel sets each output's kernel (repeated over its input channels); a
    list of the full shape is taken as it is. Other parameters take a number (filled) or a list of their shape.
    """
    values: dict[str, np.ndarray] = {}
    shapes = {**row.weights, **row.buffer_shapes}
    for name, spec in node.preset.items():
        where = node.preset_locations.get(name, node.location)
        if name not in shapes:
            valid = ", ".join(shapes) or "none"
            raise ConvcalcError(f"layer '{node.name}' ({node.type_name}): 'init' names '{name}', which this layer"
                                f" does not have (it has: {valid})", where, node.trace)
        try:
            values[name] = _fill(spec, tuple(shapes[name]))
        except ValueError as exc:
            raise ConvcalcError(f"layer '{node.name}' ({node.type_name}): init of '{name}': {exc}", where,
                                node.trace) from None
    return values


def _fill(spec: Any, shape: tuple[int, ...]) -> np.ndarray:
    kernel = shape[2:]
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
    raise ValueError(f"expected a number, a list or a filter name, got {spec!r}")

