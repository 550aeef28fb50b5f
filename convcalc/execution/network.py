"""The executor: a generic walk that calls each layer unit's NumPy forward and checks the analyzer.

It never tests a layer's type. BatchNorm folding uses two capabilities a unit may offer:
``affine_of(params)`` (the layer is a per-channel affine map at inference) and
``absorb_affine(params, scale, shift)`` (the layer can take such a map into its weights). A producer
may also offer ``can_absorb_affine(out_shape)`` when it can absorb a per-channel map only at some output
shapes (a Linear's weights act on the last axis, which is the channel axis only for a vector output).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Mapping, Sequence

import numpy as np

from ..analysis.summary import Summary, analyze
from ..errors import ConvcalcError
from ..spec.graph import INPUT, Graph
from ..kernels import MacCounter, parallel, to_logical, to_storage
from .init_schemes import Scheme
from .slabs import Slab, concat_chains
from .weights import State, initial_state, state_from_dict, with_ties

DTYPES = {"float32": np.float32, "float64": np.float64}


@dataclass(slots=True)
class LayerRun:
    """One layer's prediction against what really happened. (A plain slotted record: `Network.run` makes one per
    layer per pass, and a frozen dataclass's __init__ takes 5x as long, ~0.2 ms of a ResNet-50 forward.)"""

    name: str
    type: str
    predicted_shape: tuple[int, ...]
    actual_shape: tuple[int, ...]
    predicted_macs: int
    executed_macs: int
    seconds: float
    finite: bool = True
    folded: bool = False     # a BatchNorm folded into the preceding layer's weights
    transform_macs: int = 0  # multiply-accumulates a transform-domain conv really ran (FFT spectra, Winograd
                             # tiles); executed_macs then counts the direct-equivalent MACs of its outputs
    transform: str = ""      # which transform: 'fft' (kernels.conv_fft), 'winograd' (kernels.conv_winograd)
    fused_into: str = ""     # a sum its producer's GEMM added into the other input (`Network.accumulate`)
    algorithm: str = ""      # the algorithm a conv ran ('rows', 'im2col+bias', 'winograd', ...; `ConvNd.prepare`)
    chosen_by: str = ""      # who chose it: 'tuned' (measured, `execution.tune`), 'model' (the cost model), 'spec'

    @property
    def shape_ok(self) -> bool:
        return self.predicted_shape == self.actual_shape

    @property
    def macs_ok(self) -> bool:
        return self.predicted_macs == self.executed_macs

    @property
    def ok(self) -> bool:
        return self.shape_ok and self.macs_ok and self.finite


@dataclass(frozen=True)
class RunResult:
    output: np.ndarray                     # PyTorch layout, (N, C, *S) or (N, F)
    layers: tuple[LayerRun, ...]
    summary: Summary
    batch: int
    seconds: float
    maps: Mapping[str, np.ndarray] = field(default_factory=dict)   # kept layers' outputs, PyTorch layout

    @property
    def ok(self) -> bool:
        return all(layer.ok for layer in self.layers)

    @property
    def first_nonfinite(self) -> str | None:
        return next((layer.name for layer in self.layers if not layer.finite), None)


class Network:
    """A graph with its parameters laid out for execution at one input shape."""

    def __init__(self, graph: Graph | Summary, input_shape: Sequence[int] | None = None, *,
                 state: State | Mapping[str, np.ndarray] | None = None, seed: int = 0, dtype: str = "float32",
                 fold_batchnorm: bool = True, init: Scheme | None = None, prepare: bool = True):
        """``graph``: a Graph (analysed here at ``input_shape``, default the spec's) or a Summary already analysed
        (its graph and input shape; ``input_shape`` must then be None or the same). Without ``state``: weights
        drawn with ``seed``, by PyTorch's defaults or the scheme ``init`` (`weights.initial_state`). ``prepare``
        False: only the plan (which layers fold, which sums a GEMM writes: `folded`, `accumulate`), nothing laid
        out to run (the tuner reads it, `convcalc.execution.tune`)."""
        if dtype not in DTYPES:
            raise ConvcalcError(f"unknown dtype '{dtype}'; valid: {', '.join(DTYPES)}")
        if isinstance(graph, Summary):
            if input_shape is not None and tuple(input_shape) != tuple(graph.input_shape):
                raise ConvcalcError(f"the summary was analysed at {list(graph.input_shape)}, not at"
                                    f" {list(input_shape)}")
            self.summary = graph
            graph = graph.graph
        else:
            self.summary = analyze(graph, input_shape)
        self.graph = graph = self.summary.graph      # (a graph that reads its input's size is built for this one)
        self.dtype = np.dtype(DTYPES[dtype])
        drawn = state is None     # then the prepared layouts become the only copy of the weights kept (`state`)
        self._draw = (seed, init)
        if drawn:
            state = initial_state(graph, self.summary, seed, init)
        elif not state or not isinstance(next(iter(state.values())), dict):
            state = state_from_dict(state, self.summary)   # a flat state dict: checked key by key
        self._state: State | None = with_ties({name: dict(values) for name, values in state.items()}, graph)
        del state
        self.folded: set[str] = set()
        params = {name: dict(values) for name, values in self._state.items()}
        owners = {node.tie for node in graph.nodes}
        affines = self._fold(params) if fold_batchnorm else {}
        self.prepared: dict[str, Any] = {}
        for node, row in zip(graph.nodes, self.summary.layers):
            if node.name in self.folded or not prepare:
                continue
            in_shapes = [self._shape(name) for name in node.inputs]
            own = params.get(node.name, {})
            if node.name in affines:     # folded here, one layer at a time: one float64 copy alive, not all
                own = node.layer.absorb_affine(own, *affines.pop(node.name))
            self.prepared[node.name] = node.layer.prepare(own, in_shapes, row.output_shape, self.dtype)
            del own
            if drawn and node.name not in owners:   # freed as the layouts are made: peak ~ the drawn state
                params.pop(node.name, None)
                self._state.pop(node.name, None)
        if drawn:
            self._state = None
        # per layer that chose an algorithm (a plan that names it: convs), (the algorithm, who chose it)
        self.algorithms = {name: (plan["algorithm"], plan.get("chosen_by", "")) for name, plan in self.prepared.items()
                           if isinstance(plan, dict) and isinstance(plan.get("algorithm"), str)}
        self.last_use: dict[str, int] = {}
        for index, node in enumerate(graph.nodes):
            for name in node.inputs:
                self.last_use[name] = index
        self.accumulate = self._plan_accumulation()
        self.slabs = concat_chains(graph, self._shape)      # joins that write into one buffer (`slabs`)
        self._nodes = {node.name: node for node in graph.nodes}
        self.then = self._plan_then()
        # per node, what `run` needs besides the prepared parameters: its forward (and in-place forward, if any,
        # with the input it overwrites: `inplace_input`, default the first) and the arrays no later node reads once
        # it has run
        self.steps = [(node, row, node.name in self.folded, node.layer.forward,
                       getattr(node.layer, "forward_inplace", None), self._inplace_input(node),
                       tuple(name for name in dict.fromkeys(node.inputs)
                             if self.last_use.get(name) == index and name != graph.output),
                       self.accumulate.get(node.name), self.slabs.get(node.name), self.then.get(node.name))
                      for index, (node, row) in enumerate(zip(graph.nodes, self.summary.layers))]

    @property
    def state(self) -> State:
        """The parameters by layer, as given or as drawn (float64). Drawn ones are not kept once laid out for
        execution (the prepared layouts are the only copy: ResNet-50's float64 state is 195 MiB): asked for, they
        are drawn again from the same seed, the same values, and kept."""
        if self._state is None:
            self._state = with_ties(initial_state(self.graph, self.summary, *self._draw), self.graph)
        return self._state

    def _inplace_input(self, node: Any) -> int:
        """The input a node's `forward_inplace` may overwrite: the one its layer's ``inplace_input(in_shapes)``
        names (a merge writes into the input that has the output's shape), else the first."""
        choose = getattr(node.layer, "inplace_input", None)
        if choose is None or not node.inputs:
            return 0
        return choose([self._shape(name) for name in node.inputs])

    def _shape(self, name: str) -> tuple[int, ...]:
        return self.summary.input_shape if name == INPUT else self.summary.layer(name).output_shape

    def _fold(self, params: State) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Fold each affine-at-inference layer into its producer when nothing else reads the producer: the
        folded layers (``self.folded``) and, per producer, the (scale, shift) it absorbs when it is prepared."""
        affines: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        consumers: dict[str, int] = {}
        for node in self.graph.nodes:
            for name in node.inputs:
                consumers[name] = consumers.get(name, 0) + 1
        nodes = {node.name: node for node in self.graph.nodes}
        for node in self.graph.nodes:
            if len(node.inputs) != 1 or not hasattr(node.layer, "affine_of"):
                continue
            producer = nodes.get(node.inputs[0])
            if producer is None or producer.name in self.folded or not hasattr(producer.layer, "absorb_affine"):
                continue
            if consumers.get(producer.name) != 1 or producer.name == self.graph.output:
                continue
            can_absorb = getattr(producer.layer, "can_absorb_affine", None)
            if can_absorb is not None and not can_absorb(self._shape(producer.name)):
                continue
            affine = node.layer.affine_of(params[node.name])
            if affine is None:
                continue
            affines[producer.name] = affine
            self.folded.add(node.name)
        return affines

    def _plan_accumulation(self) -> dict[str, tuple[str, str, tuple[str, ...]]]:
        """Sums a producer can write itself: for a two-input sum layer (``sums_inputs``, Add) one of whose inputs
        ``a`` is made by a layer with ``forward_into`` (Conv: BLAS's GEMM adds its product to an array, beta = 1)
        whose output (through folded layers) nothing but the sum reads, and whose other input ``b`` exists when
        that producer runs, has the output's shape, is not read by the producer and is read by nothing after the
        sum: the producer adds its output into ``b``'s array and the sum has nothing left to do (ResNet's
        ``conv3 + identity``: the add runs inside the GEMM instead of as one more pass over the output). Of two
        such inputs, the one made later. Per producer: (sum, b, the names whose arrays become the sum's).
        Whether ``b``'s memory is free is checked at run time (`_memory_free`)."""
        graph, nodes = self.graph, {node.name: node for node in self.graph.nodes}
        position = {node.name: index for index, node in enumerate(graph.nodes)}
        readers: dict[str, list[str]] = {}
        for node in graph.nodes:
            for name in node.inputs:
                readers.setdefault(name, []).append(node.name)
        plan: dict[str, tuple[str, str, tuple[str, ...]]] = {}
        for node in graph.nodes:
            if (not getattr(node.layer, "sums_inputs", False) or len(node.inputs) != 2
                    or node.inputs[0] == node.inputs[1]):
                continue
            choices = []
            for a, b in (node.inputs, node.inputs[::-1]):
                chain = [a]                                  # a, back through folded layers to its producer
                while chain[-1] in self.folded:
                    chain.append(nodes[chain[-1]].inputs[0])
                producer = chain[-1]
                if (producer == INPUT or b == INPUT or not hasattr(nodes[producer].layer, "forward_into")
                        or readers.get(a) != [node.name] or graph.output in chain
                        or any(readers.get(name) != [nodes[later].name] for name, later in zip(chain[1:], chain))
                        or b in nodes[producer].inputs or position.get(b, -1) > position[producer]
                        or self.last_use.get(b) != position[node.name]
                        or any(b in later.inputs
                               for later in graph.nodes[position[producer] + 1:position[node.name]])
                        or not self._shape(a) == self._shape(b) == self._shape(node.name)):
                    continue
                choices.append((position[producer], producer, b, tuple(chain[:-1]) + (node.name,)))
            if choices:
                _, producer, b, names = max(choices)
                plan[producer] = (node.name, b, names)
        return plan

    def _plan_then(self) -> dict[str, str]:
        """Activations a producer applies block by block as it writes its output (``forward_then``: an inference
        BatchNorm that no conv absorbed, DenseNet's norm1 before relu1): per producer, the one layer that reads its
        output, an in-place elementwise unit (``apply_inplace``: ReLU, SiLU, ...) of that output alone. The
        activation then has nothing left to do (its output is the producer's array, marked fused), and the output
        is read and written once instead of twice. Not for the network's output, nor where either is kept."""
        readers: dict[str, list[str]] = {}
        for node in self.graph.nodes:
            for name in node.inputs:
                readers.setdefault(name, []).append(node.name)
        nodes = {node.name: node for node in self.graph.nodes}
        plan = {}
        for node in self.graph.nodes:
            if (node.name in self.folded or not hasattr(node.layer, "forward_then") or node.name == self.graph.output
                    or len(readers.get(node.name, ())) != 1):
                continue
            reader = nodes[readers[node.name][0]]
            if (tuple(reader.inputs) == (node.name,) and reader.name not in self.folded
                    and getattr(reader.layer, "apply_inplace", None) is not None):
                plan[node.name] = reader.name
        return plan

    def _memory_free(self, name: str, index: int, activations: Mapping[str, np.ndarray], keep_set: Collection[str],
                     caller: np.ndarray, read_later: bool = False) -> bool:
        """True when no one needs the memory of array ``name`` after layer ``index``: neither that array (unless
        ``read_later``: a sum reads it, `_plan_accumulation` checked it is the last reader) nor any live one
        sharing its memory (a folded layer's output is its producer's array; Identity returns its input, a Flatten
        of a 1x1 map a view of it) is read later, is the network's input or output, or is kept; nor is it the
        caller's array ``caller`` (a one-channel input needs no copy to be channels-last, so a view of it can
        outlive 'input' in ``activations``)."""
        if name == INPUT or name == self.graph.output or name in keep_set:
            return False
        array = activations[name]
        if np.may_share_memory(array, caller):
            return False
        for other, value in activations.items():
            if (other == name and read_later) or not (value is array or np.may_share_memory(value, array)):
                continue
            if (self.last_use.get(other, -1) > index or other == INPUT or other == self.graph.output
                    or other in keep_set):
                return False
        return True

    def _forward_then(self, node: Any, then: str, inputs: Sequence[np.ndarray], counter: MacCounter,
                      check_finite: bool) -> tuple[np.ndarray | None, bool]:
        """(node's output with the activation ``then`` applied block by block, or None where the unit cannot;
        whether some block was not finite before the activation, when ``check_finite``)."""
        apply = self._nodes[then].layer.apply_inplace
        prepared = self.prepared[then]
        seen = [False]

        def activate(block: np.ndarray) -> None:
            if check_finite and not seen[0] and not np.isfinite(block).all():
                seen[0] = True
            result = apply(block, prepared)
            if result is not block:
                block[...] = result

        y = node.layer.forward_then(inputs, self.prepared[node.name], counter, activate)
        return y, seen[0]

    @staticmethod
    def _join(slab: Slab, inputs: Sequence[np.ndarray],
              chains: dict[str, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """A join of a chain (`slabs.concat_chains`): when its first input is the view the chain's previous join
        returned, only its other inputs are written, after it; else (the chain's head) a buffer shaped as the
        chain's root is allocated and all its inputs written from its start. Returns the buffer's first
        ``slab.stop`` entries along the axis: what np.concatenate would give."""
        axis = slab.axis
        lead = (slice(None),) * axis
        current = chains.get(slab.root)
        if slab.parent is not None and current is not None and inputs[0] is current[1]:
            buffer, start, rest = current[0], slab.start, inputs[1:]
        else:
            shape = list(inputs[0].shape)
            shape[axis] = slab.length
            buffer, start, rest = np.empty(shape, dtype=np.result_type(*inputs)), 0, inputs
        for x in rest:
            stop = start + x.shape[axis]
            parallel.copy_into(buffer[lead + (slice(start, stop),)], x)
            start = stop
        view = buffer[lead + (slice(0, slab.stop),)]
        if slab.stop == slab.length:
            chains.pop(slab.root, None)       # the chain is complete: nothing more is written into its buffer
        else:
            chains[slab.root] = (buffer, view)
        return view

    def run(self, x: np.ndarray, *, keep: Collection[str] | bool = (), check_finite: bool = True,
            on_layer: Callable[[LayerRun], None] | None = None) -> RunResult:
        """Push ``x`` (N, C, *S) — or (C, *S), taken as a batch of one — through the network."""
        with np.errstate(all="ignore"):   # NaN/Inf are reported per layer (LayerRun.finite), not warned about
            return self._run(x, keep, check_finite, on_layer)

    def _batch(self, x: np.ndarray) -> np.ndarray:
        """``x`` as (N, C, *S): a (C, *S) array is a batch of one; any other shape than prepared for is refused."""
        x = np.asarray(x)
        if x.shape == self.summary.input_shape:
            x = x[None]
        if tuple(x.shape[1:]) != self.summary.input_shape:
            raise ConvcalcError(f"the input is {list(x.shape)}, but the network was prepared for"
                                f" [N, {', '.join(map(str, self.summary.input_shape))}]")
        return x

    def values(self, x: np.ndarray, only: Collection[str] | None = None,
               prepared: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
        """Every layer's output of one forward pass (channels-last, this network's dtype), keyed by layer name and
        ``input``; nothing is overwritten in place or freed (for a backward pass, `convcalc.proof.gradient`). ``only``:
        compute just these layers (their inputs must be among them). A folded layer's value is its producer's
        array. ``prepared`` overrides some layers' prepared parameters. ``x``: (N, C, *S), or (C, *S) as a batch
        of one. An empty batch (N = 0) gives empty arrays of the predicted shapes, as `run` does."""
        x = self._batch(x)
        values: dict[str, np.ndarray] = {INPUT: to_storage(x.astype(self.dtype, copy=False))}
        overrides = prepared or {}
        with np.errstate(all="ignore"):
            for node in self.graph.nodes:
                if only is not None and node.name not in only:
                    continue
                inputs = [values[name] for name in node.inputs]
                if x.shape[0] == 0:
                    shape = self.summary.layer(node.name).output_shape
                    values[node.name] = to_storage(np.empty((0, *shape), dtype=self.dtype))
                elif node.name in overrides:
                    values[node.name] = node.layer.forward(inputs, overrides[node.name], MacCounter())
                elif node.name in self.folded:
                    values[node.name] = inputs[0]
                else:
                    values[node.name] = node.layer.forward(inputs, self.prepared[node.name], MacCounter())
        return values

    def _run(self, x: np.ndarray, keep: Collection[str] | bool, check_finite: bool,
             on_layer: Callable[[LayerRun], None] | None) -> RunResult:
        x = self._batch(x)
        keep_all = keep is True
        keep_set = set() if keep is False or keep_all else set(keep)
        activations: dict[str, np.ndarray] = {INPUT: to_storage(x.astype(self.dtype, copy=False))}
        runs: list[LayerRun] = []
        maps: dict[str, np.ndarray] = {}
        started = time.perf_counter()
        batch = x.shape[0]
        clock = time.perf_counter
        summed: dict[str, str] = {}                      # sum layer -> the producer that wrote it
        chains: dict[str, tuple[np.ndarray, np.ndarray]] = {}   # a join chain's root -> (buffer, its last view)
        for index, step in enumerate(self.steps):
            node, row, folded, forward, forward_inplace, overwritten, done, accumulate, slab, then = step
            before_then = None                           # with `then`: whether the output was finite before it
            inputs = [activations[name] for name in node.inputs]
            counter = MacCounter()
            fused_into = summed.get(node.name, "")
            tic = clock()
            if batch == 0:                               # an empty batch: empty outputs of the predicted shapes
                y = to_storage(np.empty((0, *row.output_shape), dtype=self.dtype))
            elif folded:
                y = inputs[0]
            elif slab is not None:                       # a join: its inputs written into the chain's buffer
                y = self._join(slab, inputs, chains)
            elif then is not None and not keep_all and node.name not in keep_set and then not in keep_set:
                y, before_then = self._forward_then(node, then, inputs, counter, check_finite)
                if y is None:
                    y, before_then = forward(inputs, self.prepared[node.name], counter), None
                else:
                    summed[then] = node.name
            elif fused_into:                             # both inputs are now the producer's array: the sum
                y = inputs[0]
            elif (accumulate is not None and not keep_all and keep_set.isdisjoint(accumulate[2])
                  and node.name not in keep_set
                  and self._memory_free(accumulate[1], index, activations, keep_set, x, read_later=True)):
                y = node.layer.forward_into(inputs, self.prepared[node.name], counter, activations[accumulate[1]])
                summed[accumulate[0]] = node.name
            elif (forward_inplace is not None and not keep_all
                  and self._memory_free(node.inputs[overwritten], index, activations, keep_set, x)):
                y = forward_inplace(inputs, self.prepared[node.name], counter)
            else:
                y = forward(inputs, self.prepared[node.name], counter)
            seconds = clock() - tic
            actual = (y.shape[-1], *y.shape[1:-1]) if y.ndim > 2 else tuple(y.shape[1:])   # PyTorch's order
            finite = bool(np.isfinite(y).all()) if check_finite and before_then is None else not before_then
            if not finite and accumulate is not None and summed.get(accumulate[0]) == node.name:
                # y is the sum: whether this layer's own output was finite takes running it alone (rare)
                finite = bool(np.isfinite(forward(inputs, self.prepared[node.name], MacCounter())).all())
            record = LayerRun(node.name, node.type_name, row.output_shape, actual, row.macs * batch, counter.total,
                              seconds, finite, folded, counter.transform_macs, counter.transform, fused_into,
                              *self.algorithms.get(node.name, ("", "")))
            runs.append(record)
            if on_layer is not None:
                on_layer(record)
            activations[node.name] = y
            if keep_all or node.name in keep_set:
                kept = np.ascontiguousarray(to_logical(y))
                maps[node.name] = kept.copy() if np.may_share_memory(kept, y) else kept   # later layers may
                                                                                            # overwrite y
            for name in done:
                activations.pop(name, None)
        output = np.ascontiguousarray(to_logical(activations[self.graph.output]))
        return RunResult(output, tuple(runs), self.summary, x.shape[0], time.perf_counter() - started, maps)


def execute(graph: Graph, x: np.ndarray, **kwargs: Any) -> RunResult:
    """One-shot: prepare the network for ``x``'s shape and run it."""
    x = np.asarray(x)
    shape = x.shape[1:] if x.ndim == len(graph.input_shape) + 1 else x.shape
    run_options = {k: kwargs.pop(k) for k in ("keep", "check_finite", "on_layer") if k in kwargs}
    return Network(graph, tuple(shape), **kwargs).run(x, **run_options)
