"""Cross-check strategies for the layout layers (Permute, Unflatten, Reshape/View, Narrow, Chunk, Split), their torch
reference modules and convcalc's documented conventions for them. Imported by `test_torch_crosscheck` (which adds the
strategies to its STRATEGIES, the references to its REFERENCE_MODULES and the default conventions to its
DEFAULT_CONVENTIONS) and so by `test_executor_torch` and `test_backward_torch` too; not a test module itself.

The references are written from torch's documentation, each a thin module over the torch function with convcalc's
argument names: ``torch.permute`` (what torchvision.ops.misc.Permute calls; torchvision is not installed here),
``x.reshape(x.size(0), *shape)`` (convcalc's ``shape`` is written without the batch), ``torch.narrow``, and
``torch.chunk(...)[part]`` / ``torch.split(...)[part]`` (a ``NAME.K`` reference is the layer with ``part: K``).
Unflatten is torch.nn.Unflatten itself.

Conventions (convcalc refuses where a batch-1 torch run succeeds):

* Permute's ``dims`` must leave the batch axis first (dims[0] = 0 after wrapping negatives): convcalc analyses one
  sample. The generic rules of test_torch_crosscheck cover the rest: a ``dim`` naming the batch, and empty outputs
  (a 0-long narrow, an empty split section).
* Chunk's and Split's ``dim`` defaults to 1 (the channels), not torch's 0 (the batch): the strategies always spell
  ``dim`` out, and the default is listed in DEFAULT_CONVENTIONS.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from hypothesis import strategies as st
from torch import nn

from test_torch_crosscheck import Case, Strategy, any_shape, dim_for, rarely  # noqa: E402  (see the docstring)


# ============================================================================ reference modules

class PermuteReference(nn.Module):
    """torchvision.ops.misc.Permute: ``torch.permute(x, dims)``."""

    def __init__(self, dims):
        super().__init__()
        self.dims = list(dims)

    def forward(self, x):
        return torch.permute(x, self.dims)


class ReshapeReference(nn.Module):
    """``x.reshape(x.size(0), *shape)``: the shape without the batch."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


class NarrowReference(nn.Module):
    def __init__(self, dim, start, length):
        super().__init__()
        self.dim, self.start, self.length = dim, start, length

    def forward(self, x):
        return torch.narrow(x, self.dim, self.start, self.length)


class ChunkReference(nn.Module):
    """Part ``part`` of ``torch.chunk(x, chunks, dim)`` (torch's default dim, 0, kept in the signature)."""

    def __init__(self, chunks, dim=0, part=None):
        super().__init__()
        self.chunks, self.dim, self.part = chunks, dim, part

    def forward(self, x):
        parts = torch.chunk(x, self.chunks, self.dim)
        return parts if self.part is None else parts[self.part]


class SplitReference(nn.Module):
    """Part ``part`` of ``torch.split(x, split_size_or_sections, dim)``."""

    def __init__(self, split_size_or_sections, dim=0, part=None):
        super().__init__()
        sections = split_size_or_sections
        self.sections = list(sections) if isinstance(sections, (list, tuple)) else sections
        self.dim, self.part = dim, part

    def forward(self, x):
        parts = torch.split(x, self.sections, self.dim)
        return parts if self.part is None else parts[self.part]


LAYOUT_MODULES: dict[str, type[nn.Module]] = {
    "Permute": PermuteReference, "Reshape": ReshapeReference, "Narrow": NarrowReference,
    "Chunk": ChunkReference, "Split": SplitReference,
}
LAYOUT_DEFAULT_CONVENTIONS = {("Chunk", "dim"), ("Split", "dim")}


def layout_convention(type_name: str, case: Case) -> str | None:
    """Why convcalc must refuse a layout case that torch ran (beyond the generic rules), else None."""
    if type_name == "Permute":
        dims, full = case.args.get("dims"), len(case.in_shapes[0]) + 1
        if isinstance(dims, list) and dims and isinstance(dims[0], int) and -full <= dims[0] < full \
                and dims[0] % full != 0:
            return f"dims {dims} moves the batch axis"
    return None


# ============================================================================ strategies

def _factors(draw, total: int, count: int) -> list[int]:
    """``count`` positive sizes multiplying to ``total`` (the last takes what is left)."""
    sizes = []
    for _ in range(count - 1):
        divisors = [d for d in range(1, total + 1) if total % d == 0]
        size = draw(st.sampled_from(divisors))
        sizes.append(size)
        total //= size
    return [*sizes, total]


def _sizes(draw, total: int, most: int) -> list[int]:
    """A new grouping of ``total`` elements: usually right (maybe one -1), now and then wrong (a bad product, two
    -1s, a 0 or a -2)."""
    sizes = _factors(draw, total, draw(st.integers(1, most)))
    kind = draw(rarely(st.sampled_from(["exact", "inferred"]), st.sampled_from(["product", "two", "zero", "minus"]),
                       0.2))
    if kind == "inferred":
        sizes[draw(st.integers(0, len(sizes) - 1))] = -1
    elif kind == "product":
        sizes[draw(st.integers(0, len(sizes) - 1))] += draw(st.integers(1, 2))
    elif kind == "two" and len(sizes) > 1:
        sizes[0] = sizes[-1] = -1
    elif kind in ("zero", "minus"):
        sizes[draw(st.integers(0, len(sizes) - 1))] = 0 if kind == "zero" else -2
    return sizes


@st.composite
def permute_cases(draw, cls) -> Case:
    shape = draw(any_shape(4, 4))
    full = len(shape) + 1
    rest = draw(st.permutations(range(1, full)))
    dims = [0, *rest]
    kind = draw(rarely(st.sampled_from(["plain", "plain", "negative"]),
                       st.sampled_from(["batch moved", "short", "long", "repeated", "out of range"]), 0.25))
    if kind == "negative":
        dims = [d - full if draw(st.booleans()) else d for d in dims]
    elif kind == "batch moved" and full > 1:
        dims = draw(st.permutations(range(full)))
    elif kind == "short":
        dims = dims[:-1] or [0, 1]
    elif kind == "long":
        dims = [*dims, full]
    elif kind == "repeated" and full > 2:
        dims[-1] = dims[1]
    elif kind == "out of range":
        dims[-1] = draw(st.sampled_from([full, -full - 1]))
    return Case({"dims": list(dims)}, [shape])


@st.composite
def unflatten_cases(draw, cls) -> Case:
    shape = draw(any_shape(3, 6))
    dim = draw(rarely(st.integers(1, len(shape)).flatmap(lambda d: st.sampled_from([d, d - len(shape) - 1])),
                      dim_for(len(shape)), 0.15))
    axis = dim % (len(shape) + 1) - 1 if -len(shape) - 1 <= dim <= len(shape) else 0
    total = shape[axis] if axis >= 0 else shape[0]
    return Case({"dim": dim, "unflattened_size": _sizes(draw, total, 3)}, [shape])


@st.composite
def reshape_cases(draw, cls) -> Case:
    shape = draw(any_shape(4, 4))
    return Case({"shape": _sizes(draw, math.prod(shape), 4)}, [shape])


def _dim(draw, shape) -> int:
    """A dim of the batched tensor, usually a valid one other than the batch."""
    return draw(rarely(st.integers(1, len(shape)).flatmap(lambda d: st.sampled_from([d, d - len(shape) - 1])),
                       dim_for(len(shape)), 0.15))


def _size_along(shape, dim: int) -> int:
    full = len(shape) + 1
    return shape[dim % full - 1] if -full <= dim < full and dim % full else 1


@st.composite
def narrow_cases(draw, cls) -> Case:
    shape = draw(any_shape(4, 5))
    dim = _dim(draw, shape)
    size = _size_along(shape, dim)
    start = draw(rarely(st.integers(-size, size - 1), st.integers(-size - 2, size + 1), 0.15))
    length = draw(rarely(st.integers(1, size), st.integers(-1, size + 2), 0.15))
    return Case({"dim": dim, "start": start, "length": length}, [shape])


@st.composite
def chunk_cases(draw, cls) -> Case:
    shape = draw(any_shape(4, 7))
    dim = _dim(draw, shape)
    chunks = draw(rarely(st.integers(1, 5), st.integers(-1, 0), 0.05))
    part = draw(rarely(st.integers(0, max(chunks - 1, 0)), st.integers(0, 6), 0.15))
    return Case({"chunks": chunks, "dim": dim, "part": part}, [shape])


@st.composite
def split_cases(draw, cls) -> Case:
    shape = draw(any_shape(4, 7))
    dim = _dim(draw, shape)
    size = _size_along(shape, dim)
    if draw(st.booleans()):
        sections: Any = draw(rarely(st.integers(1, size + 1), st.integers(-1, 0), 0.05))
        count = -(-size // sections) if isinstance(sections, int) and sections > 0 else 1
    else:
        cuts = sorted(draw(st.lists(st.integers(0, size), max_size=3)))
        sections = [b - a for a, b in zip([0, *cuts], [*cuts, size])]          # may hold 0s: empty parts
        if draw(rarely(st.just(False), st.just(True), 0.1)):
            sections[-1] += 1                                                  # not the axis's size
        count = len(sections)
    part = draw(rarely(st.integers(0, count - 1), st.integers(0, 5), 0.1))
    return Case({"split_size_or_sections": sections, "dim": dim, "part": part}, [shape])


LAYOUT_STRATEGIES: dict[str, Strategy] = {
    "Permute": Strategy(permute_cases, 80),
    "Unflatten": Strategy(unflatten_cases, 80),
    "Reshape": Strategy(reshape_cases, 80),
    "Narrow": Strategy(narrow_cases, 100),
    "Chunk": Strategy(chunk_cases, 100),
    "Split": Strategy(split_cases, 100),
}
