"""Depthwise convs at MobileNetV2's and EfficientNet-B0's shapes: the executor against PyTorch, per shape (not a test).

    python benchmarks/depthwise.py                  # batch 1, one thread
    python benchmarks/depthwise.py --batch 8 --rounds 9

Every distinct depthwise conv of the two zoo specs (channels, size, kernel, stride; how often the networks use it)
runs as a one-layer network in the executor (`Network.run`'s own clock for the layer: its padding and kernel
included, float32, channels-last as between layers) and as ``torch.nn.functional.conv2d(groups=C)`` on the same
values (NCHW, PyTorch's eager layout). One thread on both sides (OPENBLAS/OMP_NUM_THREADS=1, torch.set_num_threads(1)):
no thread pool spins, so one process serves both; rounds alternate the two sides, each keeping its fastest of
--repeats passes, and the median over rounds is printed with the ratio, the ratio's range over rounds, and the
largest difference from PyTorch's output relative to its largest value. The last line weighs each shape by its uses.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import convcalc  # noqa: E402
from convcalc.execution.network import Network  # noqa: E402


def depthwise_shapes(models) -> dict[tuple, int]:
    """(channels, height, width, kernel, stride, padding) -> uses, over the specs' depthwise Conv2d layers."""
    found: dict[tuple, int] = {}
    for model in models:
        summary = convcalc.analyze(convcalc.load_spec(ROOT / "specs" / f"{model}.yaml"))
        shapes = {"input": summary.input_shape, **{row.name: row.output_shape for row in summary.layers}}
        for node in summary.graph.nodes:
            args = node.layer.args
            if node.type_name != "Conv2d" or args.get("groups", 1) == 1:
                continue
            channels, height, width = shapes[node.inputs[0]]
            if args["groups"] != channels or args["out_channels"] != channels:
                continue
            key = (channels, height, width, node.layer.kernel_size[0], node.layer.stride[0],
                   node.layer.pads((height, width))[0][0])
            found[key] = found.get(key, 0) + 1
    return found


def one_layer(channels, height, width, kernel, stride, padding) -> Network:
    spec = convcalc.spec_from_dict({"name": "dw", "input": [channels, height, width], "layers": [
        {"name": "conv", "type": "Conv2d", "out_channels": channels, "kernel_size": kernel, "stride": stride,
         "padding": padding, "groups": channels, "bias": False}]})
    return Network(convcalc.build_graph(spec), (channels, height, width))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mobilenet_v2", "efficientnet_b0"])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with open("/proc/cpuinfo") as handle:
        cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "?")
    print(f"CPU: {cpu}; batch {args.batch}; one thread; load average {os.getloadavg()[0]:.2f}")
    print(f"{'C':>5} {'H×W':>9} {'k':>2} {'s':>2} {'uses':>4} {'numpy ms':>9} {'torch ms':>9} {'ratio':>6}"
          f" {'range':>11} {'max diff':>9}")
    rng = np.random.default_rng(0)
    total_numpy = total_torch = 0.0
    for (channels, height, width, kernel, stride, padding), uses in sorted(depthwise_shapes(args.models).items()):
        network = one_layer(channels, height, width, kernel, stride, padding)
        x = rng.standard_normal((args.batch, channels, height, width)).astype(np.float32)
        weight = torch.from_numpy(np.asarray(network.state["conv"]["weight"], dtype=np.float32))
        tensor = torch.from_numpy(x)
        ours, theirs, ratios = [], [], []
        for _ in range(args.rounds):
            best = float("inf")
            for _ in range(args.repeats):
                best = min(best, network.run(x, check_finite=False).layers[0].seconds)
            ours.append(best)
            best = float("inf")
            with torch.no_grad():
                for _ in range(args.repeats):
                    tic = time.perf_counter()
                    torch.nn.functional.conv2d(tensor, weight, None, stride, padding, 1, channels)
                    best = min(best, time.perf_counter() - tic)
            theirs.append(best)
            ratios.append(ours[-1] / theirs[-1])
        expected = torch.nn.functional.conv2d(tensor, weight, None, stride, padding, 1, channels).numpy()
        got = network.run(x).output
        diff = float(np.abs(got - expected).max() / np.abs(expected).max())
        numpy_ms, torch_ms = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
        total_numpy += uses * numpy_ms
        total_torch += uses * torch_ms
        print(f"{channels:5d} {f'{height}×{width}':>9} {kernel:2d} {stride:2d} {uses:4d} {numpy_ms:9.3f} {torch_ms:9.3f}"
              f" {statistics.median(ratios):6.2f} {min(ratios):5.2f}-{max(ratios):<5.2f} {diff:9.1e}", flush=True)
    print(f"all depthwise convs of {', '.join(args.models)} (each shape times its uses): numpy {total_numpy:.2f} ms,"
          f" torch {total_torch:.2f} ms, ratio {total_numpy / total_torch:.2f}")


if __name__ == "__main__":
    main()
