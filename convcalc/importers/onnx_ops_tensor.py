"""Translation rules of ONNX's linear, layout and elementwise ops: Gemm/MatMul(+Add) as Linear, Flatten, Reshape,
Transpose (and the Reshape → Transpose → Reshape of a channel shuffle), Squeeze/Unsqueeze, Concat, Split, Slice,
Add/Sum/Mul/Sub/Div (of tensors, or by constants as LearnableTensor), x·Sigmoid(x) as SiLU, reductions over the
spatial axes as global pooling, Dropout/Identity/Cast (dropped)."""

from __future__ import annotations

import numpy as np

from .onnx_patterns import gelu_erf, gelu_tanh, group_norm, layout_chain
from .onnx_translate import Translator, rule


def _no_batch(t: Translator, axis: int, what: str) -> None:
    if axis == 0:
        raise t.fail(f"{what} axis 0, the batch: convcalc's layers keep the batch axis as it is")


@rule("Gemm")
def gemm(t: Translator, node, a: dict) -> None:
    x = t.x(node)
    if int(a.get("transA", 0)):
        raise t.fail("transA 1 transposes the batch into the features: convcalc's Linear reads [N, features]")
    b = t.const(node, 1, "weight (B)")
    if b.ndim != 2:
        raise t.fail(f"a weight B of rank {b.ndim}: Linear's weight is 2-D")
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    weight = b if int(a.get("transB", 0)) else b.T
    weight = (weight * np.float32(alpha)).astype(b.dtype) if alpha != 1 else np.ascontiguousarray(weight)
    c = t.const(node, 2, "bias (C)") if len(node.input) > 2 and node.input[2] else None
    weights = {"weight": weight}
    args = {"out_features": int(weight.shape[0])}
    if c is None or beta == 0:
        args["bias"] = False
    else:
        if c.size not in (1, weight.shape[0]) or (c.ndim == 2 and c.shape[0] != 1):
            raise t.fail(f"a bias C of shape {list(c.shape)}: Linear's bias is one value per output feature")
        bias = np.broadcast_to(c.reshape(-1), (weight.shape[0],)) * (np.float32(beta) if beta != 1 else 1)
        weights["bias"] = bias.astype(b.dtype)
    t.bind(node.output[0], t.emit(node, "Linear", args, [x], weights, prefer_from=1))


@rule("MatMul")
def matmul(t: Translator, node, a: dict) -> None:
    x = t.x(node)
    b = t.const(node, 1)
    if b is None or b.ndim != 2:
        raise t.fail("a product of two computed tensors (or by a constant of rank other than 2): convcalc has"
                     " Linear, a product by a constant matrix, only")
    weights = {"weight": np.ascontiguousarray(b.T)}
    args = {"out_features": int(b.shape[1])}
    output = node.output[0]
    add = t.sole_consumer(output)
    bias = None
    if add is not None and add.op_type == "Add" and len(add.input) == 2:
        other = add.input[1] if add.input[0] == output else add.input[0]
        value = t.model.consts.get(other)
        if value is not None and value.size == b.shape[1] and value.shape[-1] == b.shape[1]:
            bias = value.reshape(-1)
    if bias is None:
        args["bias"] = False
    else:
        weights["bias"] = bias
        t.done.add(id(add))
        output = add.output[0]
    prefer = 1 if node.input[1].endswith(".weight") else None
    t.bind(output, t.emit(node, "Linear", args, [x], weights, prefer_from=prefer))


@rule("Dropout", "Identity", "Cast", "CastLike")
def passthrough(t: Translator, node, a: dict) -> None:
    if node.op_type == "Dropout" and len(node.output) > 1 and node.output[1] and t.consumers(node.output[1]):
        raise t.fail("its mask output is used: convcalc's Dropout is the identity at inference")
    if node.input[0] in t.model.consts:         # a constant cast like a computed tensor: still a constant
        t.model.consts[node.output[0]] = np.asarray(t.model.consts[node.input[0]], np.float32)
        return
    target = int(a.get("to", 1)) if node.op_type == "Cast" else None
    if node.op_type == "CastLike":
        like = t.const(node, 1)
        target = 1 if like is None or like.dtype.kind == "f" else 0
    if target is not None and target not in (1, 10, 11, 16):
        raise t.fail(f"a cast to the ONNX type {target}: convcalc computes in floating point")
    t.bind(node.output[0], t.x(node))


def _reshape_to(t: Translator, node, x: str, source: tuple[int, ...], target: tuple[int, ...]) -> str:
    """The layer reshaping [N, *source] to [N, *target] (Flatten where it flattens everything after the batch)."""
    if tuple(source) == tuple(target):
        return x
    if len(target) == 1 and len(source) > 1:
        return t.emit(node, "Flatten", {}, [x])
    return t.emit(node, "Reshape", {"shape": [int(v) for v in target]}, [x])


def _target_shape(t: Translator, node, shape, wanted) -> tuple[int, ...]:
    """ONNX Reshape's output shape (0 copies the input's size unless allowzero, one -1 inferred)."""
    allowzero = next((att.i for att in node.attribute if att.name == "allowzero"), 0)
    out = [shape[i] if (v == 0 and not allowzero) else int(v) for i, v in enumerate(wanted)]
    if -1 in out:
        known = int(np.prod([v for v in out if v != -1]))
        out[out.index(-1)] = int(np.prod(shape)) // max(known, 1)
    return tuple(out)


def _channel_shuffle(t: Translator, node, shape, out) -> bool:
    """Reshape [N, C, *S] → [N, g, C/g, *S] → Transpose(0, 2, 1, ...) → Reshape [N, C, *S]: a ChannelShuffle."""
    if len(out) != len(shape) + 1 or out[0] != shape[0] or out[1] * out[2] != shape[1] or out[3:] != shape[2:]:
        return False
    transpose = t.sole_consumer(node.output[0])
    if transpose is None or transpose.op_type != "Transpose":
        return False
    perm = [int(p) for p in next((att.ints for att in transpose.attribute if att.name == "perm"), [])]
    if perm != [0, 2, 1, *range(3, len(out))]:
        return False
    back = t.sole_consumer(transpose.output[0])
    if back is None or back.op_type != "Reshape" or back.input[0] != transpose.output[0]:
        return False
    wanted = t.model.consts.get(back.input[1])
    if wanted is None or _target_shape(t, back, tuple(out[i] for i in perm), wanted) != tuple(shape):
        return False
    ref = t.emit(node, "ChannelShuffle", {"groups": int(out[1])}, [t.x(node)])
    t.done.update({id(transpose), id(back)})
    t.bind(back.output[0], ref)
    return True


@rule("Reshape")
def reshape(t: Translator, node, a: dict) -> None:
    if group_norm(t, node) or layout_chain(t, node):
        return
    x = t.x(node)
    shape = t.shape(node)
    out = _target_shape(t, node, shape, t.const(node, 1, "shape"))
    if int(np.prod(out)) != int(np.prod(shape)):
        raise t.fail(f"it reshapes {list(shape)} into {list(out)}, which has another number of values")
    if _channel_shuffle(t, node, shape, out):
        return
    if out[0] != shape[0]:
        raise t.fail(f"it reshapes {list(shape)} into {list(out)}, changing the batch axis: convcalc's Reshape"
                     " keeps it")
    t.bind(node.output[0], _reshape_to(t, node, x, shape[1:], out[1:]))


@rule("Flatten")
def flatten(t: Translator, node, a: dict) -> None:
    x = t.x(node)
    shape = t.shape(node)
    axis = int(a.get("axis", 1))
    axis = axis + len(shape) if axis < 0 else axis
    if axis != 1:
        raise t.fail(f"axis {axis}: ONNX's Flatten makes [prod(dims before axis), rest], which moves the batch"
                     " unless axis is 1")
    t.bind(node.output[0], _reshape_to(t, node, x, shape[1:], (int(np.prod(shape[1:])),)))


@rule("Squeeze", "Unsqueeze")
def squeeze(t: Translator, node, a: dict) -> None:
    if layout_chain(t, node):
        return
    x = t.x(node)
    shape = t.shape(node)
    axes = a.get("axes") if "axes" in a else t.const(node, 1, "axes")
    if node.op_type == "Squeeze":
        axes = [i for i, v in enumerate(shape) if v == 1 and i > 0] if axes is None else \
            [int(v) % len(shape) for v in np.asarray(axes).ravel()]
        if 0 in axes:
            _no_batch(t, 0, "it squeezes")
        out = tuple(v for i, v in enumerate(shape) if i not in axes)
    else:
        rank = len(shape) + len(np.asarray(axes).ravel())
        axes = sorted(int(v) % rank for v in np.asarray(axes).ravel())
        if 0 in axes:
            _no_batch(t, 0, "it unsqueezes")
        out = list(shape)
        for axis in axes:
            out.insert(axis, 1)
        out = tuple(out)
    t.bind(node.output[0], _reshape_to(t, node, x, shape[1:], out[1:]))


@rule("Transpose")
def transpose(t: Translator, node, a: dict) -> None:
    if layout_chain(t, node):
        return
    x = t.x(node)
    rank = len(t.shape(node))
    perm = [int(p) for p in a.get("perm", reversed(range(rank)))]
    if perm[0] != 0:
        raise t.fail(f"perm {perm} moves the batch axis: convcalc's Permute keeps it first")
    if perm == list(range(rank)):
        t.bind(node.output[0], x)
        return
    t.bind(node.output[0], t.emit(node, "Permute", {"dims": perm}, [x]))


@rule("Concat")
def concat(t: Translator, node, a: dict) -> None:
    inputs = [t.x(node, i) for i in range(len(node.input)) if node.input[i]]
    rank = len(t.shape(node))
    axis = int(a["axis"]) % rank
    _no_batch(t, axis, "it joins along")
    if len(inputs) == 1:
        t.bind(node.output[0], inputs[0])
        return
    t.bind(node.output[0], t.emit(node, "Concat", {} if axis == 1 else {"dim": axis}, inputs))


@rule("Split")
def split(t: Translator, node, a: dict) -> None:
    x = t.x(node)
    shape = t.shape(node)
    axis = int(a.get("axis", 0)) % len(shape)
    _no_batch(t, axis, "it splits along")
    sizes = a.get("split") if "split" in a else t.const(node, 1, "split")
    parts = len(node.output)
    if sizes is None:
        count = int(a.get("num_outputs", parts))
        step = -(-shape[axis] // count)
        sizes = [min(step, shape[axis] - k * step) for k in range(count)]
    sizes = [int(v) for v in np.asarray(sizes).ravel()]
    args = {"split_size_or_sections": sizes}
    if axis != 1:
        args["dim"] = axis
    ref = t.emit(node, "Split", args, [x])
    for k, name in enumerate(node.output):
        t.bind(name, f"{ref}.{k}")


@rule("Slice")
def slice_(t: Translator, node, a: dict) -> None:
    ref = t.x(node)
    shape = t.shape(node)
    if t.model.opset >= 10:
        starts, ends = t.const(node, 1, "starts"), t.const(node, 2, "ends")
        axes, steps = t.const(node, 3, "axes"), t.const(node, 4, "steps")
    else:
        starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
    starts, ends = np.asarray(starts).ravel(), np.asarray(ends).ravel()
    axes = range(len(starts)) if axes is None else np.asarray(axes).ravel()
    steps = np.ones(len(starts), np.int64) if steps is None else np.asarray(steps).ravel()
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = int(axis) % len(shape)
        size = shape[axis]
        if int(step) != 1:
            raise t.fail(f"steps {int(step)} on axis {axis}: convcalc's Narrow keeps consecutive positions")
        first = int(min(max(start + size if start < 0 else start, 0), size))
        last = int(min(max(end + size if end < 0 else end, 0), size))
        if first == 0 and last == size:
            continue
        _no_batch(t, axis, "it slices")
        if last <= first:
            raise t.fail(f"it keeps nothing of axis {axis} ({start}..{end} of {size})")
        ref = t.emit(node, "Narrow", {"dim": axis, "start": first, "length": last - first}, [ref])
    t.bind(node.output[0], ref)


@rule("ReduceMean", "ReduceMax")
def reduce(t: Translator, node, a: dict) -> None:
    x = t.x(node)
    shape = t.shape(node)
    axes = a.get("axes") if "axes" in a else t.const(node, 1, "axes")
    axes = sorted(int(v) % len(shape) for v in np.asarray(axes).ravel()) if axes is not None else None
    if axes != list(range(2, len(shape))) or len(shape) < 3:
        raise t.fail(f"axes {axes}: convcalc reduces over every spatial axis only (global pooling)")
    ref = t.emit(node, "GlobalAvgPool" if node.op_type == "ReduceMean" else "GlobalMaxPool", {}, [x])
    if not int(a.get("keepdims", 1)):
        ref = t.emit(node, "Flatten", {}, [ref])
    t.bind(node.output[0], ref)


@rule("Add", "Sum", "Mul", "Sub", "Div")
def arithmetic(t: Translator, node, a: dict) -> None:
    op = node.op_type
    if (op == "Div" and gelu_erf(t, node)) or (op == "Mul" and gelu_tanh(t, node)):
        return
    names = [n for n in node.input if n]
    constants = [t.model.consts.get(n) for n in names]
    if all(c is None for c in constants):
        if op in ("Sub", "Div"):
            raise t.fail(f"{'a difference' if op == 'Sub' else 'a quotient'} of two computed tensors: convcalc has"
                         " Add and Multiply of tensors only")
        if len(names) == 1:
            t.bind(node.output[0], t.x(node))
            return
        ranks = {len(t.shape(node, i)) for i in range(len(names))}
        if len(ranks) > 1:
            raise t.fail("inputs of different ranks: convcalc's Add and Multiply broadcast equal-rank shapes only")
        t.bind(node.output[0], t.emit(node, "Add" if op in ("Add", "Sum") else "Multiply", {},
                                      [t.x(node, i) for i in range(len(names))]))
        return
    if len(names) != 2:
        raise t.fail(f"{len(names)} operands with a constant: convcalc folds a constant into one other operand")
    k = 0 if constants[0] is not None else 1
    value, x = np.asarray(constants[k]), t.x(node, 1 - k)
    rank = len(t.shape(node, 1 - k))
    if value.ndim > rank or (value.ndim == rank and value.shape[0] != 1):
        raise t.fail(f"a constant of shape {list(value.shape)} against an input of rank {rank}: it would change"
                     " the batch axis")
    if op in ("Sub", "Div") and k == 0:
        if op == "Div":
            raise t.fail("a constant divided by a computed tensor: convcalc has no reciprocal layer")
        x = t.emit(node, "LearnableTensor", {"shape": [1], "op": "multiply"}, [x], {"": np.array([-1], value.dtype)})
        op = "Add"
    elif op == "Sub":
        value, op = -value, "Add"
    elif op == "Div":
        value, op = (np.float32(1) / value).astype(value.dtype), "Mul"
    identity = 0 if op in ("Add", "Sum") else 1
    if np.all(value == identity) and names[k] not in t.model.initializers:   # an initializer is a parameter
        t.bind(node.output[0], x)
        return
    shape = list(value.shape) or [1]
    layer_op = "add" if op in ("Add", "Sum") else "multiply"
    t.bind(node.output[0], t.emit(node, "LearnableTensor", {"shape": shape, "op": layer_op}, [x],
                                  {"": value.reshape(shape)}))


@rule("Gather")
def gather(t: Translator, node, a: dict) -> None:
    """Gather of a computed tensor by constant, consecutive indices off the batch axis: Narrow (and a Reshape
    dropping the axis for a scalar index)."""
    x = t.x(node)
    shape = t.shape(node)
    axis = int(a.get("axis", 0)) % len(shape)
    _no_batch(t, axis, "it gathers along")
    indices = t.const(node, 1, "indices")
    picked = [int(i) % shape[axis] for i in np.asarray(indices).ravel()]
    if not picked or picked != list(range(picked[0], picked[0] + len(picked))) or indices.ndim > 1:
        raise t.fail(f"indices {np.asarray(indices).ravel().tolist()[:8]}: convcalc's Narrow keeps consecutive"
                     " positions (a gather of others has no layer)")
    ref = x
    if len(picked) < shape[axis]:
        ref = t.emit(node, "Narrow", {"dim": axis, "start": picked[0], "length": len(picked)}, [x])
    if indices.ndim == 0:
        out = shape[:axis] + shape[axis + 1:]
        ref = _reshape_to(t, node, ref, (*shape[1:axis], 1, *shape[axis + 1:]), out[1:])
    t.bind(node.output[0], ref)
