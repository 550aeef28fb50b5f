"""Executor speed and memory against PyTorch eager and ONNX Runtime, measured in the same run (not a test).

    python benchmarks/executor.py                 # ResNet-18, ResNet-50, MobileNetV2, EfficientNet-B0,
                                                  # DenseNet-121; batch 1 and 8; 1 thread and all cores
    python benchmarks/executor.py --rounds 7 --models resnet50 mobilenet_v2 --batches 1 --threads 1 2
    python benchmarks/executor.py --no-ort --top 0   # PyTorch only, no per-layer table
    python benchmarks/executor.py --no-tune       # the cost model's algorithms, not the tuner's

Each side runs in its own worker process (NumPy's OpenBLAS, PyTorch's and ONNX Runtime's thread pools spin and slow
each other by up to 3x when they share a process), with the same thread count (ONNX Runtime: intra_op_num_threads,
sequential execution). Rounds run the sides one after the other with a short pause between, the side going first
rotating from round to round; each round times several forward passes per side and takes the fastest (the least
disturbed by whatever else the machine does; noise only ever adds time). Printed per configuration (model, batch,
threads): the median NumPy/PyTorch and NumPy/ONNX Runtime ratios over rounds and their ranges, the ratio of each
side's fastest pass over the whole run ('best': on a machine whose load comes in bursts, the steadiest estimate), the
executor's GFLOP/s and its fraction of the machine's fp32 GEMM peak (a 2048^3 float32 product through the same NumPy,
timed by the NumPy worker after the rounds: this machine's speed drifts, so the peak is measured in the same run),
and each worker's peak resident memory (VmHWM: imports, weights, the warm-up pass and the timed ones; not the
tuner's, below).

Then, per configuration, the ten (--top) layers where the executor loses most time to the faster of the two others:
per-layer times are each side's fastest over --layer-passes passes, taken after the rounds: the executor's own
per-layer clock (`RunResult.layers[i].seconds`), PyTorch's forward pre- and post-hooks on its leaf modules, ONNX
Runtime's profiler (`SessionOptions.enable_profiling`, a second session) whose node names are the layers' names
(convcalc's exporter names each node after its layer; a node ONNX Runtime fused carries its last layer's name and a
suffix such as '_nchwc'). A row is a layer and the per-channel layers that only read it (a conv with its BatchNorm
and activation: convcalc folds the BatchNorm into the conv, ONNX Runtime fuses all three, PyTorch runs each), named
by its first layer.

The NumPy side runs the tuner's choices (`convcalc.execution.tune`, as `convcalc run`: the user's cache, timed first
within `convcalc tune`'s budget where it has none), or with --no-tune the cost model's and OpenBLAS's own kernels.
What is not cached yet is timed in a process of its own (the same thread count) before the NumPy worker starts, so
the worker only reads the cache and its peak memory is the inference's: the tuner's candidates (every algorithm's
weights and workspace at once, up to MEMORY_SLACK more than the chosen one's) would otherwise set VmHWM, and since
`reuse_freed_memory` keeps freed memory in malloc's heap, resetting the peak after tuning (/proc/self/clear_refs)
would still count them. Where the worker had to time something anyway (the cache could not be written) its memory
figure is marked '*' and its peak is reset after tuning, an upper bound of the inference's.

The PyTorch models are the hand-built torch.nn networks of tests/torch_models.py, or torchvision's own for
MobileNetV2, EfficientNet-B0 and DenseNet-121 (`torch_models.benchmark_model`), with the spec's layer names; the ONNX model is
convcalc's own export of the spec (`convcalc.importers.export_onnx`, the seeded weights the executor draws), written
to a temporary file by this process. ONNX Runtime is the optional benchmark extra (pip install 'convcalc[bench]');
without it (or with --no-ort) only PyTorch is compared. The CPU model is printed first: ratios hold for that CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEAK_SIZE = 2048      # the machine's fp32 GEMM peak: a PEAK_SIZE^3 float32 product, timed in the NumPy worker
SIDES = ("numpy", "torch", "ort")


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo, else the platform's), with its widest vector extension."""
    name, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not name:
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    name = name or platform.processor() or platform.machine()
    vector = next((v for v in ("avx512f", "avx2", "avx", "neon", "asimd") if v in flags), "")
    return f"{name}{f' ({vector})' if vector else ''}, {os.cpu_count()} logical CPUs"


# --------------------------------------------------------------------------- the workers

def numpy_side(model: str, threads: int, batch: int):
    import convcalc
    from convcalc.analysis.summary import analyze
    from convcalc.execution.network import Network
    from convcalc.execution.memory import reuse_freed_memory
    from convcalc.execution.tune import TUNE_BUDGET, tune
    from convcalc.kernels.blas import kernels

    reuse_freed_memory()   # as `convcalc run` does
    graph = convcalc.build_graph(convcalc.load_spec(ROOT / "specs" / f"{model}.yaml"))
    summary = analyze(graph, tuple(graph.input_shape))
    tuned_here = False
    if not os.environ.get("CONVCALC_BENCH_NO_TUNE"):  # as `convcalc run`: the cached choices (`tune_first` timed
        tuning = tune(summary, batch, budget=TUNE_BUDGET)      # what was missing, in a process of its own)
        for warning in tuning.warnings:
            print(warning, file=sys.stderr)
        tuned_here = bool(tuning.timed or tuning.kernels_timed)
        if tuned_here:
            reset_peak_rss()
    network = Network(summary)

    def forward(x):
        network.run(x, check_finite=False)

    def layers(x, passes):
        best: dict[str, float] = {}
        for _ in range(passes):
            for record in network.run(x, check_finite=False).layers:
                best[record.name] = min(best.get(record.name, float("inf")), record.seconds)
        return best

    return forward, layers, {"kernels": kernels(), "tuned_here": tuned_here}


def tune_first(model: str, batch: int) -> dict:
    """`tune` (the user's cache, what it lacks timed within TUNE_BUDGET) in this process, which then exits: the
    NumPy worker started after it finds every choice cached and times nothing."""
    import convcalc
    from convcalc.analysis.summary import analyze
    from convcalc.execution.tune import TUNE_BUDGET, tune

    graph = convcalc.build_graph(convcalc.load_spec(ROOT / "specs" / f"{model}.yaml"))
    tuning = tune(analyze(graph, tuple(graph.input_shape)), batch, budget=TUNE_BUDGET)
    for warning in tuning.warnings:
        print(warning, file=sys.stderr)
    return {"timed": tuning.timed, "kernels_timed": tuning.kernels_timed, "cached": tuning.cached,
            "out_of_budget": tuning.out_of_budget, "load": tuning.load}


def torch_side(model: str, threads: int):
    import torch

    torch.set_num_threads(threads)
    sys.path.insert(0, str(ROOT / "tests"))
    from torch_models import benchmark_model

    net = benchmark_model(model)

    def forward(x):
        with torch.no_grad():
            net(torch.from_numpy(x))

    def layers(x, passes):
        clock, started, seconds = time.perf_counter, {}, {}
        leaves = [(name, module) for name, module in net.named_modules() if name and not any(module.children())]

        def before(name):
            return lambda module, inputs: started.__setitem__(name, clock())

        def after(name):
            return lambda module, inputs, output: seconds.__setitem__(
                name, seconds.get(name, 0.0) + clock() - started[name])

        handles = [m.register_forward_pre_hook(before(n)) for n, m in leaves]
        handles += [m.register_forward_hook(after(n)) for n, m in leaves]
        best: dict[str, float] = {}
        for _ in range(passes):
            seconds.clear()
            forward(x)
            for name, value in seconds.items():
                best[name] = min(best.get(name, float("inf")), value)
        for handle in handles:
            handle.remove()
        return best

    return forward, layers, None


def ort_side(onnx_path: str, threads: int):
    import onnxruntime

    def session(profile: bool):
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        if profile:
            options.enable_profiling = True
            options.profile_file_prefix = os.path.join(tempfile.gettempdir(), f"convcalc_bench_{os.getpid()}")
        return onnxruntime.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])

    main = session(False)

    def forward(x):
        main.run(None, {"input": x})

    def layers(x, passes):
        profiled = session(True)
        profiled.run(None, {"input": x})           # warm-up, left out below
        for _ in range(passes):
            profiled.run(None, {"input": x})
        path = profiled.end_profiling()
        with open(path) as handle:
            events = json.load(handle)
        os.unlink(path)
        runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
        firsts = sorted(e["ts"] for e in runs)[1:]   # each timed run's start
        best: dict[str, float] = {}
        per_run: list[dict[str, float]] = [{} for _ in firsts]
        for event in events:
            if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
                continue
            index = sum(1 for t in firsts if t <= event["ts"]) - 1
            if index < 0:
                continue
            name = event["name"][:-len("_kernel_time")]
            per_run[index][name] = per_run[index].get(name, 0.0) + event["dur"] / 1e6
        for run in per_run:
            for name, value in run.items():
                best[name] = min(best.get(name, float("inf")), value)
        return best

    return forward, layers, None


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB: /proc/self/status's VmHWM (reset by exec), else ru_maxrss (on
    Linux inherited from the parent at fork and kept across exec: the driver's own peak, not the worker's)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current resident size (Linux: '5' to /proc/self/clear_refs); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def worker(side: str, model: str, batch: int, threads: int, onnx_path: str) -> None:
    """Serve requests on stdin, one JSON answer a line: 'time N' (N forwards: the fastest and median seconds, peak
    RSS), 'layers N' (each layer's fastest seconds over N passes), 'peak' (the BLAS's GEMM GFLOP/s)."""
    sys.path.insert(0, str(ROOT))   # the checkout's convcalc, installed or not

    import numpy as np

    if side == "tune":
        print(json.dumps(tune_first(model, batch)), flush=True)
        return
    rng = np.random.default_rng(0)
    if side == "numpy":
        forward, layers, used = numpy_side(model, threads, batch)
    elif side == "torch":
        forward, layers, used = torch_side(model, threads)
    else:
        forward, layers, used = ort_side(onnx_path, threads)
    shape = json.loads(os.environ["CONVCALC_BENCH_SHAPE"])
    x = rng.standard_normal((batch, *shape)).astype(np.float32)
    forward(x)
    print(json.dumps({"ready": True, "kernels": used}), flush=True)
    for line in sys.stdin:
        request = line.split()
        if request[0] == "peak":    # the BLAS's own best: a large square float32 GEMM, fastest of 5
            a = rng.standard_normal((PEAK_SIZE, PEAK_SIZE)).astype(np.float32)
            product = np.empty_like(a)
            seconds = []
            for _ in range(6):
                tic = time.perf_counter()
                np.matmul(a, a, out=product)
                seconds.append(time.perf_counter() - tic)
            print(json.dumps({"gflops": 2 * PEAK_SIZE ** 3 / min(seconds[1:]) / 1e9}), flush=True)
            continue
        if request[0] == "layers":
            print(json.dumps({"layers": layers(x, int(request[1]))}), flush=True)
            continue
        times = []
        for _ in range(int(request[1])):
            tic = time.perf_counter()
            forward(x)
            times.append(time.perf_counter() - tic)
        peak_mib = peak_rss_mib()
        print(json.dumps({"best": min(times), "median": statistics.median(times), "peak_mib": peak_mib}), flush=True)


def worker_env(threads: int, shape) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
            "CONVCALC_BENCH_SHAPE": json.dumps(list(shape))}


def run_tuner(model: str, batch: int, threads: int, shape) -> dict:
    """The tuner in a process of its own (`tune_first`), at the workers' thread count; what it timed."""
    done = subprocess.run([sys.executable, __file__, "--worker", "tune", model, str(batch), str(threads)],
                          stdout=subprocess.PIPE, text=True, env=worker_env(threads, shape))
    if done.returncode:
        raise SystemExit(f"the tuner for {model} failed (exit status {done.returncode})")
    return json.loads(done.stdout.splitlines()[-1])


class Worker:
    def __init__(self, side: str, model: str, batch: int, threads: int, onnx_path: str, shape):
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", side, model, str(batch), str(threads), onnx_path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=worker_env(threads, shape))
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the {side} worker for {model} failed to start")
        self.used = json.loads(line)["kernels"] or {}
        self.kernels = self.used.get("kernels")

    def ask(self, request: str) -> dict:
        self.process.stdin.write(request + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


# --------------------------------------------------------------------------- per-layer gaps

def layer_groups(graph, summary) -> dict[str, str]:
    """Layer name -> its row's name: a layer joins its input's row when it reads one layer that nothing else reads,
    keeps its shape and has no weights of more than one axis (BatchNorm, activations, an identity), so a conv and what convcalc folds or ONNX Runtime
    fuses into it are one row."""
    readers: dict[str, int] = {}
    for node in graph.nodes:
        for name in node.inputs:
            readers[name] = readers.get(name, 0) + 1
    shapes = {row.name: tuple(row.output_shape) for row in summary.layers}
    per_channel = {row.name for row in summary.layers if all(len(shape) <= 1 for shape in row.weights.values())}
    group: dict[str, str] = {}
    for node in graph.nodes:
        source = node.inputs[0] if len(node.inputs) == 1 else None
        if (source in group and readers.get(source) == 1 and shapes[source] == shapes[node.name]
                and node.name in per_channel):
            group[node.name] = group[source]
        else:
            group[node.name] = node.name
    return group


def grouped(times: dict[str, float], group: dict[str, str]) -> dict[str, float]:
    """Per-name seconds summed into rows; a name that is no layer's counts for the longest layer name it starts
    with (a composite's parts, ONNX Runtime's fused '<layer>_nchwc'), else for '(other)'."""
    rows: dict[str, float] = {}
    for name, seconds in times.items():
        owner = name if name in group else None
        cut = name
        while owner is None and cut:
            cut = max(cut.rfind("."), cut.rfind("_"))
            cut = name[:cut] if cut > 0 else ""
            owner = cut if cut in group else None
        key = group[owner] if owner else "(other)"
        rows[key] = rows.get(key, 0.0) + seconds
    return rows


def print_gaps(per_side: dict[str, dict[str, float]], group: dict[str, str], top: int) -> None:
    rows = {side: grouped(times, group) for side, times in per_side.items()}
    others = [side for side in ("torch", "ort") if side in rows]
    names = sorted(set().union(*rows.values()), key=lambda n: list(group.values()).index(n) if n in group else 1e9)

    def gap(name):
        ours = rows["numpy"].get(name, 0.0)
        return ours - min(rows[side].get(name, 0.0) for side in others)

    worst = sorted(names, key=gap, reverse=True)[:top]
    width = max([len(n) for n in worst] + [5])
    header = f"  {'layer':{width}} {'numpy ms':>9} {'torch ms':>9}" + (f" {'ort ms':>9}" if "ort" in rows else "")
    print(header + f" {'gap ms':>8}   (the executor's time less the faster other's; sums over all rows:"
          + "".join(f" {side} {sum(rows[side].values()) * 1000:.1f}" for side in rows) + " ms)")
    for name in worst:
        cells = "".join(f" {rows[side].get(name, 0.0) * 1000:9.3f}" for side in ("numpy", "torch", "ort")
                        if side in rows)
        print(f"  {name:{width}}{cells} {gap(name) * 1000:8.3f}")


# --------------------------------------------------------------------------- the run

def export_model(graph, directory: str) -> str:
    """convcalc's own ONNX export of the spec (the executor's seeded weights), as a file for the ORT worker."""
    from convcalc.importers.onnx_export import export_onnx

    path = os.path.join(directory, f"{graph.name or 'model'}.onnx")
    with open(path, "wb") as handle:
        handle.write(export_onnx(graph))
    return path


def have_ort() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def measure(model: str, batch: int, threads: int, onnx_path: str, args, summary, group, shown: set) -> None:
    sides = ["numpy", "torch"] + (["ort"] if onnx_path else [])
    if not args.no_tune:      # before the NumPy worker starts: its peak memory is then the inference's alone
        run_tuner(model, batch, threads, summary.input_shape)
    workers = {side: Worker(side, model, batch, threads, onnx_path, summary.input_shape) for side in sides}
    if workers["numpy"].kernels and "kernels" not in shown:
        print(f"(NumPy's OpenBLAS runs its {workers['numpy'].kernels} kernels)", flush=True)
        shown.add("kernels")
    best = {side: [] for side in sides}
    ratios = {side: [] for side in sides[1:]}
    peaks = {}
    for round_index in range(args.rounds):
        order = sides[round_index % len(sides):] + sides[:round_index % len(sides)]   # who goes first rotates
        answers = {}
        for side in order:
            answers[side] = workers[side].ask(f"time {args.repeats}")
            time.sleep(args.pause)
        for side in sides:
            best[side].append(answers[side]["best"])
            peaks[side] = answers[side]["peak_mib"]
        for side in sides[1:]:
            ratios[side].append(answers["numpy"]["best"] / answers[side]["best"])
    per_layer = {side: workers[side].ask(f"layers {args.layer_passes}")["layers"] for side in sides} \
        if args.top else {}
    peak = workers["numpy"].ask("peak")["gflops"]
    for w in workers.values():
        w.close()
    ms = {side: statistics.median(best[side]) * 1000 for side in sides}
    gflops = 2 * summary.totals.macs * batch / (ms["numpy"] / 1000) / 1e9
    cells = [f"{model:15} {batch:5d} {threads:7d}", *(f"{ms[side]:9.1f}" for side in sides)]
    for side in sides[1:]:
        r = ratios[side]
        cells.append(f"{statistics.median(r):6.2f} {min(r):5.2f}-{max(r):<5.2f} {min(best['numpy']) / min(best[side]):5.2f}")
    cells.append(f"{gflops:6.1f} {gflops / peak:7.0%} {peak:9.0f}")
    marked = {"numpy": "*" if workers["numpy"].used.get("tuned_here") else ""}
    cells += [f"{peaks[side]:9.0f}{marked.get(side, '')}" for side in sides]
    print(" ".join(cells), flush=True)
    if per_layer:
        print_gaps(per_layer, group, args.top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "densenet121"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--threads", nargs="+", type=int, default=sorted({1, os.cpu_count() or 1}))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="forward passes per side per round")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between the sides of a round")
    parser.add_argument("--top", type=int, default=10, help="layers in the per-layer table (0: none)")
    parser.add_argument("--layer-passes", type=int, default=5, help="passes timed per layer, the fastest kept")
    parser.add_argument("--no-ort", action="store_true", help="leave ONNX Runtime out")
    parser.add_argument("--no-tune", action="store_true",
                        help="the cost model's algorithms and OpenBLAS's own kernels (as `convcalc run --no-tune`);"
                             " default: the tuned ones (the user's cache, timed first where it has none)")
    args = parser.parse_args()
    if args.no_tune:
        os.environ["CONVCALC_BENCH_NO_TUNE"] = "1"     # the workers inherit it

    sys.path.insert(0, str(ROOT))
    import convcalc

    ort = not args.no_ort and have_ort()
    print(f"CPU: {cpu_model()}; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
          + ("" if ort else "; ONNX Runtime not installed or --no-ort: PyTorch only"), flush=True)
    if os.environ.get("OPENBLAS_CORETYPE"):     # OpenBLAS's own override: the tuner leaves the user's choice alone
        print(f"note: OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} is set: NumPy's OpenBLAS runs those kernels"
              " whatever the CPU has, and the tuner times no other kernel set (PyTorch ignores it)", flush=True)
    ratio_head = "".join(f" {'np/' + s:>6} {'range':>11} {'best':>5}" for s in (["torch", "ort"] if ort else ["torch"]))
    print(f"{'model':15} {'batch':>5} {'threads':>7} {'numpy ms':>9} {'torch ms':>9}" + (f" {'ort ms':>9}" if ort else "")
          + ratio_head + f" {'GF/s':>6} {'of peak':>7} {'peak GF/s':>9} {'numpy MiB':>9} {'torch MiB':>9}"
          + (f" {'ort MiB':>9}" if ort else ""), flush=True)
    shown: set = set()
    with tempfile.TemporaryDirectory() as directory:
        for model in args.models:
            graph = convcalc.build_graph(convcalc.load_spec(ROOT / "specs" / f"{model}.yaml"))
            summary = convcalc.analyze(graph)
            group = layer_groups(summary.graph, summary)
            onnx_path = export_model(graph, directory) if ort else ""
            for batch in args.batches:
                for threads in args.threads:
                    measure(model, batch, threads, onnx_path, args, summary, group, shown)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] if len(sys.argv) > 6 else "")
    else:
        main()
