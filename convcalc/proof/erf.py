"""The effective receptive field (Luo, Li, Urtasun & Zemel, NeurIPS 2016, "Understanding the Effective Receptive
Field in Deep Convolutional Neural Networks").

For one unit of a layer, the ERF is the input-gradient magnitude ``|d y_unit / d x|``, averaged over random
networks and random inputs: sample ``i`` draws the weights with seed ``seed + i`` (the executor's PyTorch-style
initialisation) and a standard-normal input from the same seed (or uses the given image for every sample),
backpropagates a one-hot cotangent at the unit through the NumPy executor (`convcalc.proof.gradient.input_gradient`),
and takes ``|gradient|`` summed over the input channels. ``channel=None`` seeds every output channel of the unit
(the gradient of their sum); an integer seeds that channel only. The average is normalised to total 1: a
distribution over the input positions (the *mass*).

Statistics per axis (`ErfAxis`), from the mass summed over the other axes: its mean and standard deviation, and
the side: the number of positions in the smallest window centred on the unit's theoretical centre that holds
``fraction`` (default 95 %) of the mass, beside the theoretical size (and what lies inside the input of it).
Luo et al.'s result, tested: for n uniform k-wide linear convolutions the mass is the n-fold convolution of a
k-point uniform distribution, with variance n(k^2 - 1)/12 per axis.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import ConvcalcError, did_you_mean
from ..algebra.shapes import prod
from ..analysis.summary import Summary, analyze
from ..execution.memory import Estimate, layer_costs, shape_text, weights_bytes
from ..execution.network import Network
from ..spec.graph import Graph
from ..analysis.regions import UnitRegion, unit_region


@dataclass(frozen=True)
class ErfAxis:
    """One axis of an ERF: the theoretical region (clipped to the input; None: the unit reads nothing) and the
    statistics of the gradient mass along the axis."""

    length: int
    theoretical_size: int
    clipped: Optional[tuple[int, int]]
    centre: float            # where the window for ``side`` is centred: the unit's theoretical centre
    mean: float
    std: float
    side: int                # positions in the smallest centred window holding ``fraction`` of the mass
    window: Optional[tuple[int, int]] = None   # that window's first and last position (inside the input)

    @property
    def variance(self) -> float:
        return self.std ** 2


@dataclass(frozen=True)
class Erf:
    layer: str
    units: tuple[int, ...]
    samples: int
    channel: Optional[int]
    fraction: float
    mass: np.ndarray                 # the input's spatial shape, total 1 (all zeros if the unit reads no input)
    axes: tuple[ErfAxis, ...]
    region: UnitRegion
    inside: float                    # the share of the mass inside the theoretical region (1 up to rounding)


def gradient_mass(network: Network, x: np.ndarray, layer: str, units: Sequence[int],
                  channel: Optional[int] = None) -> np.ndarray:
    """``|d y[channel(s), units] / d x|`` summed over the input channels, for one input ``x`` of shape (C, *S)."""
    from .gradient import input_gradient

    out_shape = tuple(network.summary.layer(layer).output_shape)
    cotangent = np.zeros(out_shape, dtype=network.dtype)
    cotangent[(slice(None) if channel is None else channel, *units)] = 1.0
    gradient = input_gradient(network, x, layer, cotangent)
    return np.abs(gradient.astype(np.float64)).sum(axis=0)


def window_holding(marginal: np.ndarray, centre: float, fraction: float) -> Optional[tuple[int, int]]:
    """The first and last position of the smallest window [centre - d, centre + d] (within the input) holding
    ``fraction`` of the (normalised) ``marginal``'s mass; None when there is no mass."""
    positions = np.arange(len(marginal))
    distance = np.abs(positions - centre)
    order = np.argsort(distance, kind="stable")
    cumulative = np.cumsum(marginal[order])
    total = cumulative[-1] if len(cumulative) else 0.0
    if total <= 0:
        return None
    index = int(np.searchsorted(cumulative, fraction * total * (1 - 1e-12)))
    reach = distance[order[min(index, len(order) - 1)]]
    inside = positions[distance <= reach + 1e-9]
    return int(inside[0]), int(inside[-1])


def side_holding(marginal: np.ndarray, centre: float, fraction: float) -> int:
    """The number of positions in the smallest window [centre - d, centre + d] holding ``fraction`` of the
    (normalised) ``marginal``'s mass (`window_holding`)."""
    window = window_holding(marginal, centre, fraction)
    return 0 if window is None else window[1] - window[0] + 1


def statistics(mass: np.ndarray, region: UnitRegion, fraction: float = 0.95) -> tuple[tuple[ErfAxis, ...], float]:
    """Per-axis statistics of a gradient ``mass`` (any scale) for a unit with theoretical ``region``, and the
    share of the mass inside the region (clipped to the input)."""
    total = float(mass.sum())
    normalised = mass / total if total > 0 else mass
    axes = []
    for axis, info in enumerate(region.axes):
        other = tuple(a for a in range(mass.ndim) if a != axis)
        marginal = normalised.sum(axis=other) if other else normalised
        positions = np.arange(mass.shape[axis], dtype=np.float64)
        mean = float((marginal * positions).sum()) if total > 0 else float("nan")
        std = float(np.sqrt((marginal * (positions - mean) ** 2).sum())) if total > 0 else float("nan")
        centre = float(info.centre) if info.centre is not None else mean
        window = window_holding(marginal, centre, fraction)
        axes.append(ErfAxis(info.length, info.size, info.clipped, centre, mean, std,
                            0 if window is None else window[1] - window[0] + 1, window))
    inside = 0.0
    if total > 0 and not region.empty and all(a.clipped for a in region.axes):
        box = tuple(slice(a.clipped[0], a.clipped[1] + 1) for a in region.axes)
        inside = float(normalised[box].sum())
    return tuple(axes), inside


def _up_to(graph: Graph, layer: str) -> Graph:
    """The part of ``graph`` that ``layer`` depends on, ending at ``layer``."""
    nodes = {node.name: node for node in graph.nodes}
    if layer not in nodes:
        raise ConvcalcError(f"no layer '{layer}' in the network; {did_you_mean(layer, list(nodes))}")
    needed, pending = set(), [layer]
    while pending:
        name = pending.pop()
        if name in nodes and name not in needed:
            needed.add(name)
            pending.extend(nodes[name].inputs)
    return replace(graph, nodes=tuple(n for n in graph.nodes if n.name in needed), output=layer, groups={})


def erf_summary(graph: Graph, input_shape: Sequence[int], layer: str) -> Summary:
    """The analysis of the part of ``graph`` that ``layer`` depends on, which `effective_field` runs."""
    return analyze(_up_to(graph, layer), tuple(input_shape))


def erf_memory(summary: Summary, estimate: Estimate, dtype: str = "float64") -> int:
    """An upper bound on the bytes `effective_field` allocates for the truncated network ``summary``
    (`erf_summary`; `convcalc.execution.memory`'s per-layer costs): two seeded networks' parameters (the next one is
    drawn while the last is still held), every output kept for the backward pass and as many gradients, the
    largest step's temporaries forward and backward, and the input, its gradient and the running mass (a few
    float64 copies of the input)."""
    input_shape = tuple(summary.input_shape)
    costs = layer_costs(summary, np.dtype(dtype), 1)
    kept, building = weights_bytes(summary, costs, None, estimate)
    values = sum(cost.output for cost in costs)
    for cost, row in zip(costs, summary.layers):
        estimate.consider(f"layer '{cost.name}' ({cost.type})'s output {shape_text(row.output_shape)} ({dtype})",
                          cost.output)
    steps = max((cost.use.workspace + cost.use.backward for cost in costs), default=0)
    inputs = 8 * prod(input_shape) * 6 + 8 * prod(input_shape[1:]) * 4
    return kept + building + 2 * values + steps + inputs


def effective_field(graph: Graph, input_shape: Sequence[int], layer: str, units: Sequence[int], *,
                    samples: int = 16, seed: int = 0, channel: Optional[int] = None,
                    image: Optional[np.ndarray] = None, fraction: float = 0.95, dtype: str = "float64",
                    truncated: Optional[Summary] = None,
                    on_progress: Optional[Callable[[int, int], None]] = None) -> Erf:
    """Luo et al.'s ERF of unit ``units`` of ``layer``, averaged over ``samples`` random networks (weights seeded
    ``seed``, ``seed + 1``, ...) and random standard-normal inputs, or ``image`` ([C, *S]) for every sample.
    ``truncated``: `erf_summary` of these arguments, when already analysed. ``on_progress(done, samples)`` is
    called after each sample."""
    if samples < 1:
        raise ConvcalcError(f"--samples must be at least 1, got {samples}")
    if not 0 < fraction < 1:
        raise ConvcalcError(f"the ERF fraction must lie strictly between 0 and 1, got {fraction}")
    input_shape = tuple(input_shape)
    if image is not None and tuple(image.shape) != input_shape:
        raise ConvcalcError(f"the ERF input has shape {list(image.shape)}, the network takes {list(input_shape)}")
    total = np.zeros(input_shape[1:], dtype=np.float64)
    region = None
    # the part of the network the layer depends on: no weights drawn for the layers after it
    summary = truncated if truncated is not None else erf_summary(graph, input_shape, layer)
    for index in range(samples):
        network = Network(summary, seed=seed + index, dtype=dtype)
        if region is None:
            region = unit_region(network.summary, layer, units)
            out_channels = network.summary.layer(layer).output_shape[0]
            if channel is not None and not 0 <= channel < out_channels:
                raise ConvcalcError(f"--channel {channel} is out of range: layer '{layer}' has {out_channels}"
                                    f" channels (valid: 0..{out_channels - 1})")
        x = image if image is not None else np.random.default_rng(seed + index).standard_normal(input_shape)
        total += gradient_mass(network, x, layer, units, channel)
        if on_progress is not None:
            on_progress(index + 1, samples)
    average = total / samples
    mass = average / average.sum() if average.sum() > 0 else average
    axes, inside = statistics(mass, region, fraction)
    return Erf(layer, tuple(units), samples, channel, fraction, mass, axes, region, inside)


__all__ = ["Erf", "ErfAxis", "effective_field", "erf_memory", "erf_summary", "gradient_mass", "side_holding",
           "statistics", "window_holding"]
