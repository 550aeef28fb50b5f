"""The memory a run needs, estimated from the analysis before anything is allocated, and the budget it must fit.

`forward_memory` walks the graph as `Network.run` will: the input batch (the caller's float64 array and its
channels-last copy), the parameters (drawn in float64, or as a weights file holds them; the copy BatchNorm
folding makes of the layer being prepared; each unit's prepared layouts, `layers.memory.MemoryUse`), the outputs alive at each step (freed
after their last reader, as the executor frees them; dead ends stay), the step's own temporaries (a unit's
``memory_use``, else `generic_use`), kept feature maps and the final output copy. It never tests a layer's type. The
result is an upper bound on what those arrays take, meant to be a little loose (1-2x on shipped specs), never
absurdly so; `convcalc.proof` adds the dependency masks, the gradients and the pictures of `rf` on top.

The budget (`memory_budget`): ``--max-memory SIZE`` / ``max_memory=`` (bytes, or '8G', '500M', ...; 0 or 'none':
no limit), by default MEMORY_FRACTION of the memory this process can still get (the least of /proc/meminfo's
MemAvailable, a cgroup's limit and the address-space limit, `available_memory`), FALLBACK_BUDGET where none of
these can be read. `check_memory` refuses an estimate over it in one line naming the estimate, the budget, the
biggest array and its layer, and how to change the budget.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..algebra.shapes import prod
from ..analysis.summary import Summary
from ..errors import ConvcalcError
from ..layers.memory import MemoryUse
from ..spec.graph import INPUT
from .slabs import concat_chains

MEMORY_FRACTION = 0.75          # of the available memory, the default budget
FALLBACK_BUDGET = 4 * 2 ** 30   # when the available memory cannot be read
GENERIC_WORKSPACE = 3           # a unit without memory_use: temporaries up to this many times its input and output
LAYER_OVERHEAD = 64 * 2 ** 10   # per layer: Python objects, plans, small index arrays
BASE_OVERHEAD = 16 * 2 ** 20    # per run: result records, BLAS buffers, allocator slack

_UNITS = {"": 1, "b": 1, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40, "p": 2 ** 50}
NO_LIMIT_WORDS = ("none", "off", "unlimited", "no")


class MemoryBudgetError(ConvcalcError):
    """A run or study would need more memory than its budget allows."""


# --------------------------------------------------------------------------- sizes and the budget

def parse_size(text: str, option: str = "--max-memory") -> Optional[int]:
    """'8G', '500M', '1.5GiB', '2 GB', '1048576' (bytes) -> bytes; '0', 'none', 'off', 'unlimited' -> None (no
    limit). K, M, G, T and P are powers of 1024, with or without 'B'/'iB'."""
    cleaned = str(text).strip().lower().replace("_", "")
    if cleaned in NO_LIMIT_WORDS:
        return None
    match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*([kmgtp]?)(?:i?b)?", cleaned)
    if not match or len(cleaned) > 40:
        raise ConvcalcError(f"{option} '{str(text)[:40]}' is not a size: give a number of bytes with an optional"
                            " unit K, M, G or T (e.g. 8G, 500M), or 0 / none for no limit")
    value = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(value) or value >= 2 ** 80:
        raise ConvcalcError(f"{option} '{str(text)[:40]}' is too large; give 0 or none for no limit")
    return int(value) or None


def format_bytes(count: float) -> str:
    """1536 -> '1.5 KiB'; past 1024 EiB, '2.3e+25 B'."""
    try:
        value = float(count)
    except OverflowError:
        return "more than 10^300 B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{float(count):.1e} B"


def _read_small(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read(65536).decode("ascii", "replace")
    except OSError:
        return ""


def available_memory() -> Optional[int]:
    """Bytes this process can still allocate: the least of MemAvailable (/proc/meminfo), what its cgroup allows
    beyond its current use (cgroup v2 memory.max) and its address-space limit (RLIMIT_AS) beyond its current size;
    None when none of these can be read."""
    found = []
    match = re.search(r"^MemAvailable:\s+(\d+)\s*kB", _read_small("/proc/meminfo"), re.MULTILINE)
    if match:
        found.append(int(match.group(1)) * 1024)
    limit, current = _read_small("/sys/fs/cgroup/memory.max").strip(), _read_small("/sys/fs/cgroup/memory.current")
    if limit.isdigit() and current.strip().isdigit():
        found.append(max(int(limit) - int(current), 0))
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY and soft > 0:
            size = re.search(r"^VmSize:\s+(\d+)\s*kB", _read_small("/proc/self/status"), re.MULTILINE)
            found.append(max(soft - (int(size.group(1)) * 1024 if size else 0), 0))
    except (ImportError, ValueError, OSError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2)
        except (AttributeError, ValueError, OSError):
            return None
    return min(found)


def default_budget() -> int:
    """MEMORY_FRACTION of `available_memory` (FALLBACK_BUDGET when it cannot be read)."""
    available = available_memory()
    return FALLBACK_BUDGET if available is None else int(available * MEMORY_FRACTION)


@dataclass(frozen=True)
class Budget:
    limit: Optional[int]      # bytes; None: no limit
    origin: str               # how it was set, for the message

    @property
    def text(self) -> str:
        return f"{format_bytes(self.limit)} ({self.origin})" if self.limit is not None else "no limit"


def memory_budget(max_memory: int | float | str | None = None) -> Budget:
    """The budget for ``max_memory``: None or 'auto' the default (`default_budget`), an int in bytes or a size text
    (`parse_size`); 0 or 'none': no limit."""
    if max_memory is None or (isinstance(max_memory, str) and max_memory.strip().lower() in ("auto", "default")):
        available = available_memory()
        if available is None:
            return Budget(FALLBACK_BUDGET, "the default when the available memory cannot be read")
        return Budget(int(available * MEMORY_FRACTION),
                      f"{MEMORY_FRACTION:.0%} of the {format_bytes(available)} available")
    if isinstance(max_memory, bool) or not isinstance(max_memory, (int, float, str)):
        raise ConvcalcError(f"max_memory must be a number of bytes or a size text such as '8G', got"
                            f" {type(max_memory).__name__}")
    if isinstance(max_memory, (int, float)):
        if not max_memory >= 0 or max_memory == float("inf"):
            raise ConvcalcError(f"--max-memory must be a number of bytes, at least 0, got {max_memory}")
        return Budget(int(max_memory) or None, "--max-memory")
    limit = parse_size(max_memory)
    return Budget(limit, "--max-memory")


# --------------------------------------------------------------------------- the estimate

@dataclass(frozen=True)
class Piece:
    """One array (or group of them) in an estimate, for the message: what it is and its bytes."""

    what: str
    bytes: int


@dataclass
class Estimate:
    """An upper bound on the bytes a run (or study) allocates at its peak, by phase, and the biggest array."""

    total: int = 0
    parts: dict[str, int] = field(default_factory=dict)     # at the peak: 'input', 'weights', 'activations', ...
    biggest: Piece = Piece("nothing", 0)

    def consider(self, what: str, size: int) -> None:
        if size > self.biggest.bytes:
            self.biggest = Piece(what, size)

    def phase(self, parts: Mapping[str, int]) -> None:
        """One phase of the work (the parts alive together); the estimate is the largest phase."""
        total = sum(parts.values())
        if total > self.total:
            self.total, self.parts = total, {k: v for k, v in parts.items() if v}

    def describe(self) -> str:
        return ", ".join(f"{name} {format_bytes(size)}" for name, size in self.parts.items())


def check_memory(estimate: Estimate, budget: Budget, work: str = "the run") -> None:
    """Refuse ``estimate`` over ``budget`` in one line (`MemoryBudgetError`)."""
    if budget.limit is None or estimate.total <= budget.limit:
        return
    raise MemoryBudgetError(
        f"{work} would need about {format_bytes(estimate.total)} of memory ({estimate.describe()}), over the budget"
        f" of {budget.text}; the biggest array is {estimate.biggest.what} ({format_bytes(estimate.biggest.bytes)});"
        " make the input, batch or network smaller, or set --max-memory SIZE (e.g. 16G; 0 or none: no limit)")


def shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join(f"{s}" for s in shape) + "]"


def _patch_bytes(layer: Any, in_shapes: Sequence[Sequence[int]], out_shape: Sequence[int], item: int,
                 batch: int) -> int:
    """A window op's patch matrix (output positions x window x input channels) and a scatter op's (input positions
    x kernel x output channels, plus its uncropped output): what an im2col-like kernel may copy."""
    found = 0
    try:
        windows = layer.window_geometry(in_shapes, out_shape)
        scatter = layer.upsampling_geometry(in_shapes, out_shape)
    except Exception:      # noqa: BLE001  (a geometry the unit cannot give at these shapes: no patches counted)
        return 0
    if windows and len(in_shapes[0]) >= 2:
        found += prod(out_shape[1:]) * prod(w.kernel for w in windows) * in_shapes[0][0]
    if scatter and len(in_shapes[0]) >= 2 and len(out_shape) >= 2:
        found += prod(in_shapes[0][1:]) * prod(a.kernel for a in scatter) * out_shape[0]
        found += prod((size - 1) * a.stride + a.dilation * (a.kernel - 1) + 1
                      for size, a in zip(in_shapes[0][1:], scatter)) * out_shape[0]
    return found * item * batch


def generic_use(layer: Any, in_shapes: Sequence[Sequence[int]], out_shape: Sequence[int], params: int,
                dtype: np.dtype, batch: int) -> MemoryUse:
    """The bound for a unit without ``memory_use``: parameters laid out once (and a copy while preparing);
    GENERIC_WORKSPACE times its largest input and its output in temporaries (a merge of many inputs works through
    them one at a time; a unit whose temporaries take more per value says so in ``temporary_bytes_per_value``),
    plus twice a window or scatter op's patches; three times that, and the gradients, backward."""
    item = np.dtype(dtype).itemsize
    values = batch * (max((prod(s) for s in in_shapes), default=0) + prod(out_shape))
    per_value = max(GENERIC_WORKSPACE * item, getattr(layer, "temporary_bytes_per_value", 0))
    patches = _patch_bytes(layer, in_shapes, out_shape, item, batch)
    workspace = per_value * values + 2 * patches
    return MemoryUse(item * params, 2 * item * params, workspace, 0, 3 * workspace + 4 * item * values)


def unit_use(layer: Any, in_shapes: Sequence[Sequence[int]], out_shape: Sequence[int], params: int,
             parts: Sequence[Any], dtype: np.dtype, batch: int) -> MemoryUse:
    """One unit's `MemoryUse` at ``batch``: its own ``memory_use``, a composite's from its parts (their outputs all
    kept while it runs, each part's temporaries in turn), else `generic_use`."""
    item = np.dtype(dtype).itemsize
    if parts:
        shapes = {INPUT: tuple(in_shapes[0])}
        uses, outputs = [], 0
        for part in parts:
            shapes[part.name] = tuple(part.inferred.out_shape)
            part_params = part.inferred.param_count + part.inferred.buffer_count
            uses.append(unit_use(part.layer, [shapes[i] for i in part.inputs], part.inferred.out_shape, part_params,
                                 part.inferred.parts, dtype, batch))
            outputs += item * batch * prod(part.inferred.out_shape)
        return MemoryUse(sum(u.prepared for u in uses), max(u.preparing for u in uses) + 8 * params,   # folded
                         outputs + max(u.workspace for u in uses), sum(u.output for u in uses),
                         2 * outputs + max(u.workspace for u in uses) + max(u.backward for u in uses))
    rule = getattr(layer, "memory_use", None)
    if rule is not None:
        return rule(in_shapes, out_shape, np.dtype(dtype), batch)
    return generic_use(layer, in_shapes, out_shape, params, dtype, batch)


@dataclass(frozen=True)
class LayerCost:
    """What the estimate needs of one layer, at the batch size."""

    name: str
    type: str
    inputs: tuple[str, ...]
    output: int            # bytes of its output at the batch size, plus what the output keeps alive
    use: MemoryUse
    params: int            # parameters and buffers (elements)


def layer_costs(summary: Summary, dtype: np.dtype, batch: int) -> list[LayerCost]:
    item = np.dtype(dtype).itemsize
    shapes = {INPUT: tuple(summary.input_shape), **{row.name: tuple(row.output_shape) for row in summary.layers}}
    costs = []
    for node, row in zip(summary.graph.nodes, summary.layers):
        owner = row if row.tied_to is None else summary.layer(row.tied_to)   # a tied use lays its owner's out again
        params = owner.params + owner.buffers
        use = unit_use(node.layer, [shapes[i] for i in node.inputs], row.output_shape, params, row.parts, dtype,
                       batch)
        costs.append(LayerCost(row.name, row.type, tuple(node.inputs),
                               item * batch * prod(row.output_shape) + use.output, use, params))
    return costs


def weights_bytes(summary: Summary, costs: Sequence[LayerCost], state_bytes: Optional[Mapping[str, int]],
                  estimate: Estimate) -> tuple[int, int]:
    """(bytes kept, bytes at the peak of preparing) of the parameters: the state (drawn in float64, or
    ``state_bytes`` per layer as a weights file holds them; drawn weights are freed as they are laid out, but a
    proof may draw them again), the float64 copy BatchNorm folding makes of the producer being prepared, every unit's prepared layouts, and the largest unit's temporaries while preparing (with a
    float64 copy of a file's parameters, which units make before laying them out)."""
    graph = summary.graph
    readers: dict[str, list[str]] = {}
    for node in graph.nodes:
        for name in node.inputs:
            readers.setdefault(name, []).append(node.name)
    nodes = {node.name: node for node in graph.nodes}
    rows = {row.name: row for row in summary.layers}
    state = folded = 0
    for cost in costs:
        row = rows[cost.name]
        own = state_bytes.get(cost.name, 0) if state_bytes is not None else 8 * cost.params * (row.tied_to is None)
        state += own
        for name, shape in {**row.weights, **row.buffer_shapes}.items():
            estimate.consider(f"layer '{cost.name}' ({cost.type})'s {name} {shape_text(shape)}", 8 * prod(shape))
        consumers = readers.get(cost.name, [])
        if (len(consumers) == 1 and hasattr(nodes[cost.name].layer, "absorb_affine") and cost.name != graph.output
                and hasattr(nodes[consumers[0]].layer, "affine_of")):
            folded = max(folded, 8 * cost.params)        # folded as the producer is prepared, one at a time
    prepared = sum(cost.use.prepared + LAYER_OVERHEAD for cost in costs)
    cast = 0 if state_bytes is None else 8
    preparing = max((cost.use.preparing + cast * cost.params for cost in costs), default=0)
    return state + folded + prepared, state + folded + prepared + preparing


def forward_memory(summary: Summary, batch: int, dtype: str | np.dtype = "float32", *,
                   state_bytes: Optional[Mapping[str, int]] = None, keep_maps: bool = False,
                   input_prepare: int = 0, after: Sequence[Mapping[str, int]] = ()) -> Estimate:
    """An upper bound on the bytes `convcalc.run` allocates for ``summary`` at ``batch``: the largest of its phases
    (preparing the input, ``input_prepare`` bytes; building the network; running it; each of ``after``: what runs
    afterwards, one at a time, beside the weights, the input and the results, e.g. the receptive-field proof)."""
    dtype = np.dtype(dtype)
    item = dtype.itemsize
    estimate = Estimate()
    costs = layer_costs(summary, dtype, batch)
    in_elements = batch * prod(summary.input_shape)
    caller = 8 * in_elements                                 # the float64 batch `prepare_inputs` returns
    estimate.consider(f"the input batch {shape_text((batch, *summary.input_shape))} (float64)", caller)
    kept, building = weights_bytes(summary, costs, state_bytes, estimate)
    estimate.phase({"input": input_prepare})
    estimate.phase({"input": caller, "weights": building, "overhead": BASE_OVERHEAD})
    # the run: the input's channels-last copy (and the cast on the way), then the outputs alive at each step
    last_use = {name: index for index, cost in enumerate(costs) for name in cost.inputs}
    # a chain of joins fills one buffer (`slabs`): its head allocates it, shaped as the chain's root, and it lives
    # while any join of the chain is read (the other joins are views of it)
    shapes = {INPUT: tuple(summary.input_shape), **{row.name: tuple(row.output_shape) for row in summary.layers}}
    slabs = concat_chains(summary.graph, shapes.__getitem__)
    outputs = {cost.name: cost.output for cost in costs}
    position = {cost.name: index for index, cost in enumerate(costs)}
    for name, slab in slabs.items():
        if name == slab.head:
            outputs[name] = item * batch * prod(shapes[slab.root]) + outputs[name]
            members = [member for member, other in slabs.items() if other.head == name]
            if summary.graph.output in members:
                last_use[name] = len(costs)
            else:
                last_use[name] = max(last_use.get(member, position[member]) for member in members)
        else:
            outputs[name] = 0
    sizes = {INPUT: 2 * item * in_elements}
    live, peak, peak_workspace, maps = sizes[INPUT], 0, 0, 0
    for index, cost in enumerate(costs):
        output = outputs[cost.name]
        estimate.consider(f"layer '{cost.name}' ({cost.type})'s output"
                          f" {shape_text((batch, *summary.layers[index].output_shape))}", output)
        step = live + output + cost.use.workspace + maps
        if step > peak:
            peak, peak_workspace = step, cost.use.workspace
        sizes[cost.name] = output
        live += output
        if keep_maps:
            maps += item * batch * prod(summary.layers[index].output_shape)
        for name in dict.fromkeys(cost.inputs):
            if last_use.get(name) == index and name != summary.graph.output:
                live -= sizes.get(name, 0)
    final = live + maps + item * batch * prod(summary.output_shape)       # the output copied out at the end
    activations = max(peak - peak_workspace, final)
    estimate.phase({"input": caller, "weights": kept, "activations": activations, "workspace": peak_workspace,
                    "overhead": BASE_OVERHEAD})
    results = item * batch * prod(summary.output_shape) + maps
    for parts in after:
        estimate.phase({"input": caller, "weights": kept, "results": results, **parts, "overhead": BASE_OVERHEAD})
    return estimate


SWEEP_BYTES = 256 * 2 ** 20     # the receptive-field proof's masks in one reverse sweep, one channel each


def mask_frontier(summary: Summary) -> tuple[int, str]:
    """The most mask positions a reverse sweep over the graph holds per walk at once, and the layer where: at each
    layer, its own output's plane, its inputs' planes and those of every earlier layer some later layer already
    reached (still waiting for their turn). A plane is one channel, or the whole output where a Permute moved the
    spatial axes (a mask then differs along the last stored axis)."""
    shapes = {INPUT: tuple(summary.input_shape), **{row.name: tuple(row.output_shape) for row in summary.layers}}
    moved = {row.name for row in summary.layers if not row.rf.standard}

    def plane(name: str) -> int:
        shape = shapes[name]
        return prod(shape) if name in moved else prod(shape[1:]) if len(shape) > 1 else 1
    waiting: dict[str, int] = {}
    widest, where = 0, ""
    for node in reversed(summary.graph.nodes):
        waiting.pop(node.name, None)
        for name in node.inputs:
            waiting[name] = plane(name)
        size = sum(waiting.values()) + plane(node.name)
        if size > widest:
            widest, where = size, node.name
    return widest, where


def sweep_rows(summary: Summary, least: int = 1) -> int:
    """How many walks one reverse sweep of the proof carries: as many as fit SWEEP_BYTES of one-channel float32
    masks at the sweep's widest point (`mask_frontier`), at least ``least`` (one layer's units)."""
    widest, _ = mask_frontier(summary)
    return max(least, SWEEP_BYTES // (4 * max(widest, 1)))


def _units_checked(row: Any, units_per_axis: int) -> int:
    """At most how many units the proof walks for one layer: an anchor, the first and last units, and per spatial
    axis a run of period + 1 units (at most ``units_per_axis``)."""
    field = row.rf
    if field.whole:
        return 3
    return 3 + sum(min(axis.period + 1, max(units_per_axis, 2)) for axis in field.axes)


def mask_memory(summary: Summary, units_per_axis: int, estimate: Optional[Estimate] = None) -> int:
    """An upper bound on the receptive-field proof's memory (`convcalc.proof.verify`): the walks of one reverse
    sweep (`sweep_rows`, at least one layer's units, at most every layer's: `_units_checked`) as float32 masks, one channel while a mask is the same on every channel, at the sweep's widest point
    (`mask_frontier`: every mask waiting for its layer plus the step's), and the structural instances the walk
    caches (every layer's output at batch 1); with the run's BASE_OVERHEAD (calibrated on the shipped specs: the
    masks that differ per channel stay below it, and a sweep whose waiting masks outgrow SWEEP_BYTES is walked
    again in halves)."""
    per_layer = [_units_checked(row, units_per_axis) for row in summary.layers]
    units = min(sweep_rows(summary, max(per_layer, default=1)), max(sum(per_layer), 1))
    widest, where = mask_frontier(summary)
    if estimate is not None and where:
        estimate.consider(f"the dependency masks of {units} units through layer '{where}'", 4 * units * widest)
    padded, padded_at = _padded_plane(summary)
    if estimate is not None and padded_at:
        estimate.consider(f"the padded dependency masks of {units} units at layer '{padded_at}'", 4 * units * padded)
    return 4 * (units * (widest + padded) + sum(prod(row.output_shape) for row in summary.layers))


def _padded_plane(summary: Summary) -> tuple[int, str]:
    """The largest padded input plane (one channel) a window's walk scatters into (col2im), and its layer."""
    shapes = {INPUT: tuple(summary.input_shape), **{row.name: tuple(row.output_shape) for row in summary.layers}}
    padded, padded_at = 0, ""
    for node in summary.graph.nodes:
        first = shapes[node.inputs[0]] if node.inputs else ()
        try:
            windows = node.layer.window_geometry([shapes[i] for i in node.inputs], shapes[node.name])
        except Exception:      # noqa: BLE001  (a geometry the unit cannot give at these shapes: nothing counted)
            windows = None
        if windows and len(first) >= 2:
            size = prod(n + w.pad_lo + w.pad_hi for n, w in zip(first[1:], windows))
            if size > padded:
                padded, padded_at = size, node.name
    return padded, padded_at


def picture_memory(spatial: Sequence[int], zoom: int = 1) -> int:
    """An upper bound on drawing one picture of a map with ``spatial`` axes (`convcalc.report.drawing`, the feature
    maps of `report.maps`): a plane's float64 temporaries (colour map, scaling), its RGB pixels at ``zoom`` and the
    PNG encoder's copy (3-D: the middle plane)."""
    plane = prod(spatial[-2:]) if spatial else 1
    return 160 * plane + 2 * 3 * plane * zoom * zoom + 2 ** 20


def input_preparing(elements: int, spatial_dims: int = 0, channels: int = 1, largest_file: int = 0) -> int:
    """An upper bound on what preparing an input batch of ``elements`` values allocates (`prepare_inputs`): the
    float64 batch, the per-file arrays before they are stacked and normalisation's temporaries, a decoded file
    (``largest_file`` bytes, as read), and the built-in test image's coordinate grids."""
    per_sample = elements // max(channels, 1)
    return 8 * 4 * elements + largest_file + 8 * per_sample * (spatial_dims + 8 + 2 * channels)


# --------------------------------------------------------------------------- the allocator

HEAP_THRESHOLD = 32 * 2 ** 20   # glibc's largest M_MMAP_THRESHOLD on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX)
TRIM_THRESHOLD = 2 ** 30        # free memory at the heap's top given back to the system only past this much
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3       # mallopt's parameter numbers (malloc.h)


def reuse_freed_memory() -> bool:
    """Keep what a forward pass frees for its next allocations: glibc's malloc serves arrays up to HEAP_THRESHOLD
    from its heap and gives freed memory back to the system only past TRIM_THRESHOLD at its top (mallopt's
    M_MMAP_THRESHOLD and M_TRIM_THRESHOLD: at glibc's 128 KiB, or at 64 MiB, what a pass frees at the heap's top
    is handed back and faults in again on the next pass: DenseNet-121 at batch 8, 3,000-4,000 pages a pass at
    64 MiB, whose join buffers (`slabs`) leave the top free at times). By default each activation above 128 KiB (glibc's adaptive threshold
    rises only after a free) is a fresh mmap whose every page faults on first write, and is unmapped again when
    the next layer frees it: thousands of faults per pass (MobileNetV2 at batch 1: ~2,700, a fifth of its time on
    a virtual machine). Peak memory is what the pass needs either way; the resident size stays at that peak
    between passes. Process-wide, so the CLI's choice (`convcalc run`) and not the library's; True when set (glibc
    only: elsewhere nothing changes)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, HEAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


__all__ = ["BASE_OVERHEAD", "Budget", "Estimate", "FALLBACK_BUDGET", "GENERIC_WORKSPACE", "MEMORY_FRACTION",
           "MemoryBudgetError", "Piece", "SWEEP_BYTES", "available_memory", "check_memory", "default_budget",
           "format_bytes", "forward_memory", "generic_use", "input_preparing", "layer_costs", "mask_frontier",
           "mask_memory", "memory_budget", "parse_size", "picture_memory", "reuse_freed_memory", "sweep_rows",
           "unit_use", "weights_bytes"]
