"""The tuner: measure, on the machine at hand, which algorithm each conv runs fastest, and which OpenBLAS kernels.

The cost model (`convcalc.layers.conv_cost`, `layers.conv_choice`) was fitted on one CPU; here each choice is timed
instead. `tune(summary, batch, dtype)`:

1. OpenBLAS's kernel set (`kernels.blas.kernel_choices`: only sets whose instructions the CPU has, each checked
   against float64's products when switched to): each candidate times the network's largest GEMM shapes, and the
   fastest runs the process (OpenBLAS's own pick unless another is KERNEL_MARGIN faster);
2. per distinct conv (its arguments, shapes, the batch, whether a folded BatchNorm gives it a bias, whether its
   GEMM writes a residual sum: `Network.accumulate`, and the algorithms it offers, so that an entry made before a
   new algorithm existed is timed again), largest first, every algorithm it can run
   (`ConvNd.algorithm_choices`: the ones the cost model rules out by a wide margin are left out, and the ones that
   would need much more memory than the model's) is prepared on random weights and run REPEATS times on a random
   input; the fastest (the minimum of its runs; at one BLAS thread its CPU time, `candidate_timer`) wins where it
   beats the model's guess by CHOICE_MARGIN.

Everything is bounded by ``budget`` seconds (checked before each candidate: a candidate started finishes, a layer
whose candidates were not all timed keeps the model's guess and is tuned by a later call). Results go to the cache
(`tune_cache`), keyed by machine, BLAS build, kernel set, dtype, batch and the layer, so a second call times
nothing. A choice only picks among algorithms that compute the same numbers up to rounding; a given choice always
gives the same bytes. The process's BLAS kernels change (process-wide): the CLI calls this, the library never does.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Collection, Sequence

import numpy as np

from ..analysis.summary import Summary
from ..algebra.shapes import prod
from ..kernels import MacCounter, blas, to_storage
from .network import Network
from .tune_cache import TuneCache, entry_key, machine

RUN_BUDGET = 3.0        # seconds `convcalc run` spends tuning a network shape it has not seen (then: the cache)
TUNE_BUDGET = 30.0      # seconds `convcalc tune` spends by default
REPEATS = 3             # runs per candidate at least; its time is the fastest
MORE_REPEATS = 12       # and up to this many while a layer's runs took less than LAYER_SECONDS in all: under load
LAYER_SECONDS = 0.1     # a multithreaded GEMM's time swings 100x (a thread waits for one descheduled), and only
                        # the fastest of many runs is its speed
MIN_MACS = 1_000_000    # convs smaller than this (at the batch) keep the model's guess: below the timer's noise
CHOICE_MARGIN = 0.97    # another algorithm replaces the model's guess only when at least 3 % faster
KERNEL_MARGIN = 0.97    # another kernel set replaces OpenBLAS's own pick only when at least 3 % faster
KERNEL_SHARE = 1 / 3     # of the budget, for the kernel sets at most (the convs have the rest)
KERNEL_OPERAND_BYTES = 8 * 2 ** 20   # the left operand's rows are cut to this size (a GEMM's speed per row is flat)
KERNEL_SHAPES = 6       # the GEMM shapes (largest by MACs) each kernel set is timed on
MEMORY_SLACK = 64 * 2 ** 20   # a candidate may use 2x the model's guess's memory, or this much more


@dataclass(frozen=True)
class TunedConv:
    """One conv's algorithm, who chose it ('tuned': measured, now or before; 'model': the cost model; 'spec': its
    `algorithm` argument leaves no choice) and, where measured, each candidate's seconds (the fastest run)."""

    name: str
    algorithm: str
    chosen_by: str
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class Tuning:
    """What `tune` did: how many convs run a measured algorithm (``tuned``, of them ``cached`` read from the cache),
    how many keep the cost model's (``model``; of them ``fixed`` had one candidate worth timing or too few MACs), how
    many conv candidates it timed (``timed``) and OpenBLAS kernel sets (``kernels_timed``), the kernel set and how
    it was chosen ('timed', 'cached', 'pinned' by OPENBLAS_CORETYPE, or '' when there was no choice), and warnings
    about the cache."""

    tuned: int = 0
    cached: int = 0
    model: int = 0
    timed: int = 0
    kernels_timed: int = 0
    fixed: int = 0
    kernels: str | None = None
    kernels_by: str = ""
    out_of_budget: bool = False
    warnings: list[str] = field(default_factory=list)
    path: str = ""
    layers: list[TunedConv] = field(default_factory=list)     # every conv, in the network's order
    load: float | None = None     # the load average when something was timed (`_load`)


def conv_nodes(summary: Summary) -> list[tuple[Any, Any, tuple[int, ...]]]:
    """(node, row, input shape) of every layer that offers algorithm choices (`algorithm_choices`)."""
    shapes = {row.name: row.output_shape for row in summary.layers}
    found = []
    for node, row in zip(summary.graph.nodes, summary.layers):
        if hasattr(node.layer, "algorithm_choices") and len(node.inputs) == 1:
            source = node.inputs[0]
            found.append((node, row, tuple(summary.input_shape if source not in shapes else shapes[source])))
    return found


def tune(summary: Summary, batch: int, dtype: str = "float32", *, budget: float = RUN_BUDGET,
         cache: TuneCache | None = None, kernels: bool = True,
         clock: Callable[[], float] = time.perf_counter) -> Tuning:
    """Choose every conv's algorithm (and OpenBLAS's kernels, ``kernels``) for ``summary``'s shapes at ``batch``:
    from ``cache`` (default: the user's, `TuneCache`) where it has them, else by timing within ``budget``
    seconds; the choices are set on the graph's layers (`ConvNd.use_choice`) and saved to the cache."""
    cache = TuneCache() if cache is None else cache
    result = Tuning(warnings=cache.warnings, path=str(cache.path))
    convs = conv_nodes(summary)
    forget_choices(summary)          # every choice made here, from the cache or measured
    started = clock()
    timer = candidate_timer() if clock is time.perf_counter else clock
    item = np.dtype(dtype)
    here = machine()
    if kernels:
        _choose_kernels(convs, batch, item, here, cache, result, started, budget * KERNEL_SHARE, clock, timer)
    result.kernels = blas.kernels()
    pending = []
    found: dict[str, tuple[str, dict[str, float]]] = {}       # conv -> (its measured algorithm, the seconds)
    for node, row, in_shape in convs:
        layer, out = node.layer, tuple(row.output_shape[1:])
        channels, spatial = in_shape[0], in_shape[1:]
        if len(layer.algorithm_choices(channels, spatial, out, item, prune=False, bias=True)) < 2:
            result.fixed += 1
            continue
        pending.append((node, row, in_shape))
    folded_into: set[str] = set()
    fused_sums: Collection[str] = ()
    if pending:      # which convs get a folded BatchNorm's bias, which write a residual sum: the network's plan
        network = Network(summary, dtype=dtype, state=_zero_state(summary), prepare=False)
        folded_into = {node.inputs[0] for node in summary.graph.nodes if node.name in network.folded}
        fused_sums = network.accumulate
    todo: dict[str, list] = {}
    biases: dict[str, bool] = {}
    for node, row, in_shape in pending:
        layer, out = node.layer, tuple(row.output_shape[1:])
        bias, fused = bool(layer.bias) or node.name in folded_into, node.name in fused_sums
        biases[node.name] = bias
        offered = layer.algorithm_choices(in_shape[0], in_shape[1:], out, item, prune=False, bias=bias)
        key = entry_key("conv", here, result.kernels, item.name, batch, layer.type_name, in_shape, row.output_shape,
                        _arguments(layer, in_shape), bias, fused, offered)   # a new algorithm: timed anew
        entry = cache.get(key) or {}
        chosen = entry.get("algorithm")
        if chosen in layer.algorithm_choices(in_shape[0], in_shape[1:], out, item, prune=False, bias=bias):
            layer.use_choice(in_shape[0], in_shape[1:], out, item, chosen)
            seconds = entry.get("seconds")
            found[node.name] = chosen, dict(seconds) if isinstance(seconds, dict) else {}
            result.cached += 1
        else:
            todo.setdefault(key, []).append((node, row, in_shape, bias, fused))
    rate = _gemm_rate(item, clock) if todo else 0.0
    for key, group in sorted(todo.items(), key=lambda entry: -entry[1][0][1].macs):
        node, row, in_shape, bias, fused = group[0]
        choice, seconds = None, {}
        if row.macs * batch < MIN_MACS:
            result.fixed += len(group)
        elif row.macs * batch / rate > budget - (clock() - started):
            result.out_of_budget = True      # one run of it would not fit what is left: the smaller ones may
        elif row.macs * batch >= MIN_MACS:
            choice, seconds = _time_conv(node.layer, row, in_shape, batch, item, bias, fused, started, budget, clock,
                                         result, timer)
            result.fixed += len(group) if choice == "" else 0
        if not choice:
            continue
        for other, other_row, other_shape, _, _ in group:
            other.layer.use_choice(other_shape[0], other_shape[1:], tuple(other_row.output_shape[1:]), item, choice)
            found[other.name] = choice, seconds
        cache.put(key, {"algorithm": choice, "seconds": seconds, "load": _load()})
    cache.save()
    for node, row, in_shape in convs:
        if node.name in found:
            result.layers.append(TunedConv(node.name, found[node.name][0], "tuned", found[node.name][1]))
        else:
            algorithm, by = node.layer.choice_for(in_shape[0], in_shape[1:], tuple(row.output_shape[1:]), item,
                                                  biases.get(node.name))
            result.layers.append(TunedConv(node.name, algorithm, by))
    if result.timed or result.kernels_timed:
        result.load = _load()
    result.tuned = len(found)
    result.model = len(result.layers) - result.tuned
    return result


def forget_choices(summary: Summary) -> None:
    """Every conv of ``summary``'s graph back to the cost model's choice (`ConvNd.use_choice` undone)."""
    for node, _, _ in conv_nodes(summary):
        node.layer.tuned = MappingProxyType({})


def _zero_state(summary: Summary) -> dict[str, dict[str, np.ndarray]]:
    """Zeros for every parameter and buffer (np.zeros: pages the system gives on first touch, so nearly free):
    enough for `Network` to plan which layers fold and which sums a GEMM writes, which depend on the graph alone."""
    return {row.name: {name: np.zeros(shape) for name, shape in {**row.weights, **row.buffer_shapes}.items()}
            for row in summary.layers if row.weights or row.buffer_shapes}


def _load() -> float | None:
    """The system's load average over the last minute when the entry was measured (kept for whoever reads the
    cache: timings taken while other work ran are noisier), None where the system does not say."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def _arguments(layer: Any, in_shape: Sequence[int]) -> dict[str, Any]:
    """What besides the shapes decides a conv's speed (its resolved padding, not the spelling)."""
    return {"kernel_size": list(layer.kernel_size), "stride": list(layer.stride), "dilation": list(layer.dilation),
            "groups": layer.groups, "pads": [list(pair) for pair in layer.pads(in_shape[1:])],
            "padding_mode": layer.padding_mode, "algorithm": layer.algorithm}


def _memory(layer: Any, choice: str, in_shape: Sequence[int], out_shape: Sequence[int], item: np.dtype,
            batch: int) -> int:
    """The bytes ``choice`` would cost (`layers.memory.conv_memory`, asked with the choice set for a moment)."""
    saved = layer.tuned
    try:
        layer.tuned = {layer.choice_key(in_shape[0], in_shape[1:], out_shape[1:], item): choice}
        use = layer.memory_use([in_shape], out_shape, item, batch)
    finally:
        layer.tuned = saved
    return use.prepared + use.preparing + use.workspace + use.output


def _time_conv(layer: Any, row: Any, in_shape: tuple[int, ...], batch: int, item: np.dtype, bias: bool, fused: bool,
               started: float, budget: float, clock: Callable[[], float],
               result: Tuning, timer: Callable[[], float] | None = None) -> tuple[str | None, dict[str, float]]:
    """Time every candidate algorithm of one conv; (the winner, each candidate's seconds), or (None, ...) when
    the budget ran out before every candidate was timed, or ('', {}) when no other candidate is worth timing (the
    cost model rules the others out, or they need far more memory)."""
    timer = clock if timer is None else timer
    channels, spatial, out = in_shape[0], in_shape[1:], tuple(row.output_shape[1:])
    candidates = layer.algorithm_choices(channels, spatial, out, item, bias=bias)
    guess = candidates[0]
    limit = max(2 * _memory(layer, guess, in_shape, row.output_shape, item, batch),
                _memory(layer, guess, in_shape, row.output_shape, item, batch) + MEMORY_SLACK)
    candidates = [c for c in candidates if c == guess or _memory(layer, c, in_shape, row.output_shape, item,
                                                                   batch) <= limit]
    if len(candidates) < 2:
        return "", {}
    if clock() - started >= budget:
        result.out_of_budget = True
        return None, {}
    rng = np.random.default_rng(0)     # uniform values in the run's dtype: drawn fast, and no speed depends on them
    params = {"weight": rng.random(row.weights["weight"]) - 0.5}
    if bias:
        params["bias"] = rng.random(row.output_shape[0]) - 0.5
    x = np.ascontiguousarray(to_storage(rng.random((batch, *in_shape), dtype=item)))
    into = np.zeros_like(to_storage(np.empty((batch, *row.output_shape), dtype=item))) if fused else None
    plans = {}
    for choice in candidates:
        if clock() - started >= budget:
            result.out_of_budget = True
            return None, {}
        plans[choice] = layer.prepare(params, [in_shape], row.output_shape, item, choice=choice)
    seconds = {choice: float("inf") for choice in plans}
    spent = 0.0
    for repeat in range(MORE_REPEATS):  # round by round, so a burst of load elsewhere slows every candidate alike
        if repeat and (clock() - started >= budget or (repeat >= REPEATS and spent >= LAYER_SECONDS)):
            break
        for choice, plan in plans.items():
            if repeat >= REPEATS and seconds[choice] > 3 * min(seconds.values()):
                continue                     # a clear loser: no more runs
            if not repeat and clock() - started >= budget:
                result.out_of_budget = True  # not every candidate ran once: the layer keeps the model's choice
                return None, {}
            tic = timer()
            if into is not None:
                layer.forward_into([x], plan, MacCounter(), into)
            else:
                layer.forward([x], plan, MacCounter())
            took = timer() - tic
            spent += took
            seconds[choice] = min(seconds[choice], took)
    result.timed += len(plans)
    winner = min(seconds, key=seconds.get)
    if seconds[winner] >= CHOICE_MARGIN * seconds[guess]:
        winner = guess
    return winner, seconds


def candidate_timer() -> Callable[[], float]:
    """The clock candidates are timed by: with BLAS on one thread (no algorithm offered then runs threads of its
    own) the calling thread's CPU time, which on a quiet machine is the wall time and on a busy one leaves out the
    time other processes hold the core (which would otherwise decide among close candidates at random); with several
    threads the wall clock, the only one that sees them work side by side."""
    return time.thread_time if blas.threads() == 1 else time.perf_counter


def _gemm_rate(item: np.dtype, clock: Callable[[], float]) -> float:
    """Multiply-accumulates per second of a 256^3 product, the fastest of REPEATS (what a layer's run is guessed
    to take before it is started: one that would overrun the budget is not)."""
    a = np.ones((256, 256), dtype=item)
    best = float("inf")
    for _ in range(REPEATS):
        tic = clock()
        np.matmul(a, a)
        best = min(best, clock() - tic)
    return 256 ** 3 / max(best, 1e-9)


def gemm_shapes(convs: Sequence[tuple[Any, Any, tuple[int, ...]]], batch: int) -> list[tuple[int, int, int]]:
    """The largest (by MACs) distinct (rows, depth, columns) products of the network's convs as im2col runs them:
    (batch x output positions, kernel taps x C/g, O/g)."""
    shapes = {(batch * prod(row.output_shape[1:]), prod(node.layer.kernel_size) * in_shape[0] // node.layer.groups,
               row.output_shape[0] // node.layer.groups) for node, row, in_shape in convs}
    return sorted(shapes, key=lambda s: -s[0] * s[1] * s[2])[:KERNEL_SHAPES]


def _choose_kernels(convs, batch: int, item: np.dtype, here: str, cache: TuneCache, result: Tuning, started: float,
                    budget: float, clock: Callable[[], float], timer: Callable[[], float]) -> None:
    """Switch OpenBLAS to the kernel set fastest on the network's GEMM shapes: the cache's, or timed."""
    if blas.pinned():                 # OPENBLAS_CORETYPE: the user's choice, kept as it is (no other set timed)
        result.kernels_by = "pinned"
        return
    choices = blas.kernel_choices()
    shapes = gemm_shapes(convs, batch)
    if len(choices) < 2 or not shapes:
        return
    own = choices[0]
    key = entry_key("kernels", here, item.name, shapes)
    chosen = (cache.get(key) or {}).get("kernels")
    if isinstance(chosen, str) and chosen in choices:
        if blas.use_kernels(chosen):
            result.kernels_by = "cached"
        return
    rng = np.random.default_rng(0)
    operands = [(rng.random((min(m, max(KERNEL_OPERAND_BYTES // (k * item.itemsize), 1)), k), dtype=item),
                 rng.random((k, n), dtype=item)) for m, k, n in shapes]
    seconds: dict[str, float] = {}
    for repeat in range(MORE_REPEATS):   # round by round, as the convs' candidates
        if repeat >= REPEATS and sum(seconds.values()) >= LAYER_SECONDS:
            break
        for name in choices:
            if clock() - started >= budget:
                result.out_of_budget = True
                break
            if not blas.use_kernels(name):     # OpenBLAS itself refused it (its own check of the CPU), or a
                continue                        # product came out wrong: switched back, not a candidate
            total = 0.0
            for a, b in operands:
                tic = timer()
                np.matmul(a, b)
                total += timer() - tic
            seconds[name] = min(seconds.get(name, float("inf")), total)
            result.kernels_timed += repeat == 0
    winner = min(seconds, key=seconds.get) if own in seconds and not result.out_of_budget else own
    if winner != own and seconds[winner] >= KERNEL_MARGIN * seconds[own]:
        winner = own
    blas.use_kernels(winner)
    if not result.out_of_budget:
        cache.put(key, {"kernels": winner, "seconds": seconds, "load": _load()})
        result.kernels_by = "timed"


__all__ = ["RUN_BUDGET", "TUNE_BUDGET", "TunedConv", "Tuning", "conv_nodes", "forget_choices", "gemm_shapes", "tune"]
