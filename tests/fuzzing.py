"""Hostile-input fuzzing of the whole command line (issue 16), shared by tests/test_fuzz.py (a fixed-seed slice in
CI) and benchmarks/fuzz.py (the long run).

A case is one `convcalc` command line with the files it names: a random or mutated spec (every layer type, random
argument values: zero, negative, huge, float, bool, null, strings, unicode, nested lists), a YAML-level mutation
of a shipped spec, random option values, random or corrupted input files. The property every case must hold: the
command answers or refuses in one line, i.e. exit code 0, 1 or 2, no traceback, no Python-internal error text, and
it finishes within a time budget, in a worker process whose address space is capped so that a blown memory shows
as a failure, not as the machine's OOM killer.

The worker runs cases in-process (typer's CliRunner) one after another and is restarted after a hang or a crash,
so a few hundred cases take seconds, not a process start each.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").rglob("*.yaml"))
CASE_SECONDS = 10.0                 # per case: a command that takes longer is a failure (issue 16: "within seconds")
WORKER_MEMORY = 6 << 30             # address-space cap of the worker: far above any honest small case
# error text that speaks Python, not the spec's language
INTERNALS = re.compile(r"Traceback \(most recent call last\)|TypeError|AttributeError|KeyError|IndexError|"
                       r"MemoryError|RecursionError|maximum recursion depth|ZeroDivisionError|OverflowError|"
                       r"ValueError: |RuntimeWarning|object has no attribute|unhashable type|NoneType")


# --------------------------------------------------------------------------- random values and specs

def hostile_value(rng: random.Random, depth: int = 0) -> Any:
    """A value a careless or hostile spec might put anywhere."""
    kind = rng.choice(["int", "int", "small", "float", "bool", "none", "str", "list", "list", "dict", "huge"])
    if kind == "small":
        return rng.randint(-2, 4)
    if kind == "int":
        return rng.choice([0, 1, 2, 3, 7, -1, -3, 64, 255, 1000, 4096])
    if kind == "huge":
        return rng.choice([10 ** 6, 10 ** 9, 2 ** 31, 2 ** 63, 10 ** 30, -(10 ** 9)])
    if kind == "float":
        return rng.choice([0.0, 0.5, 1.5, -0.5, 1e-9, 1e9, 1e400, float("nan"), 0.3333333333333333, 1.5000001,
                           0.6000000238418579, 2.0, 1e-320])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "none":
        return None
    if kind == "str":
        return rng.choice(["", "same", "valid", "zeros", "reflect", "circular", "nearest", "bilinear", "max",
                           "x", "é", "[/]", "[bold]", "${1 + }", "${10 ** 10 ** 10}", "$missing", "3x3", "(3, 3)",
                           "1e3", "inf", "nan", "-", "\u202e", "a" * 300, "${'a' * 10 ** 8}"])
    if depth >= 2:
        return rng.randint(0, 3)
    if kind == "list":
        return [hostile_value(rng, depth + 1) for _ in range(rng.choice([0, 1, 2, 2, 3, 4]))]
    return {rng.choice(["a", "type", "kernel_size", "1"]): hostile_value(rng, depth + 1)
            for _ in range(rng.randint(0, 2))}


def plausible_value(rng: random.Random) -> Any:
    """A value of the kind a layer argument usually takes, for specs that get past the first check."""
    return rng.choice([1, 1, 2, 2, 3, 3, 4, 5, 0, 16, [2, 2], [1, 2], [3, 3, 3], True, False, "same", "valid",
                       0.5, 2.0, "nearest", "bilinear", "zeros", "reflect"])


def accepted_value(rng: random.Random, arg: Any, dims: int, name: str) -> Any:
    """A plausible value the argument's own parser accepts (so that most specs get past argument checks and reach
    shapes, receptive fields and execution), or a hostile one when none is found."""
    candidates = [plausible_value(rng) for _ in range(6)] + [1, 2, [1] * dims, "same", 0.5, True, "x", "nearest"]
    for value in candidates:
        try:
            arg.parse(value, dims, name)
        except Exception:      # noqa: BLE001  (any refusal: try the next)
            continue
        return value
    return hostile_value(rng)


def random_layer(rng: random.Random, types: list, dims: int = 2) -> dict:
    from convcalc.layers import REQUIRED

    cls = rng.choice(types)
    layer: dict[str, Any] = {"type": rng.choice([cls.type_name, cls.type_name.lower(), *cls.aliases])}
    hostile = rng.random() < 0.35          # most layers get only accepted values, some get hostile ones
    for name, arg in cls.arguments.items():
        if arg.default is REQUIRED or rng.random() < 0.3:
            layer[name] = hostile_value(rng) if hostile and rng.random() < 0.5 else \
                accepted_value(rng, arg, dims, name)
    if rng.random() < 0.05:
        layer[rng.choice(["kernel", "outchannels", "from", "repeat", "name", "when"])] = hostile_value(rng)
    return layer


def arithmetic_spec(rng: random.Random) -> dict:
    """A small input through a layer whose numbers are legal but extreme: float scale factors with long decimal
    expansions, huge strides, dilations and output sizes (issue 16: cheap arithmetic that must stay cheap)."""
    factor = rng.choice([0.3333333333333333, 0.6000000238418579, 1.5000001, 1e9, 4000, 1e-9, 0.1, 2.0000001,
                         1 / 7])
    big = rng.choice([10 ** 5, 10 ** 6, 10 ** 9, 2 ** 31 - 1])
    dims = rng.choice([1, 2])
    conv, pool = f"Conv{dims}d", f"AdaptiveAvgPool{dims}d"
    layer = rng.choice([
        {"type": "Upsample", "scale_factor": factor, "mode": rng.choice(["nearest", "nearest-exact", "area",
                                                                         "linear" if dims == 1 else "bilinear",
                                                                         "nearest" if dims == 1 else "bicubic"])},
        {"type": f"ConvTranspose{dims}d", "out_channels": 1, "kernel_size": rng.choice([1, 3]), "stride": big},
        {"type": conv, "out_channels": 1, "kernel_size": 3, "dilation": big, "padding": big},
        {"type": pool, "output_size": big},
        {"type": f"MaxPool{dims}d", "kernel_size": 2, "stride": big, "ceil_mode": True},
    ])
    tail = rng.choice([[], [{"type": "Flatten"}], [{"type": f"AdaptiveMaxPool{dims}d", "output_size": 1}],
                       [{"type": conv, "out_channels": 2, "kernel_size": 3, "dilation": rng.choice([2, 1000])}]])
    return {"name": "arith", "input": [1] + [rng.choice([3, 30, 64])] * dims, "layers": [layer, *tail]}


def random_spec(rng: random.Random) -> dict:
    from convcalc.layers import layer_types

    types = layer_types()
    dims = rng.choice([1, 2, 2, 2, 3])
    size = rng.choice([1, 2, 5, 8, 16, 33]) if dims == 3 else rng.choice([0, 1, 3, 8, 16, 32, 57, 224])
    shape = [rng.choice([1, 1, 3, 4, 8])] + [size] * dims
    if rng.random() < 0.05:
        shape = hostile_value(rng)
    spec: dict[str, Any] = {"name": rng.choice(["net", "[/]", "é", "x" * 40]), "input": shape,
                            "layers": [random_layer(rng, [t for t in types if t.type_name[-2:] in (f"{dims}d", f"{dims}D")
                                                          or not t.type_name[-2:-1].isdigit()] or types, dims)
                                       for _ in range(rng.randint(1, 5))]}
    if rng.random() < 0.15:
        spec["layers"][0]["repeat"] = rng.choice([0, 1, 3, 10 ** 6, -1, "x"])
    if rng.random() < 0.1:
        spec["args"] = {"w": hostile_value(rng)}
        spec["layers"].append({"type": "Conv2d", "out_channels": "$w", "kernel_size": 1})
    return spec


def mutated_text(rng: random.Random) -> str:
    """A shipped spec with a few YAML-level mutations: lines deleted, duplicated, re-indented, truncated, numbers
    blown up, characters inserted, an alias bomb."""
    lines = rng.choice(SPECS).read_text().splitlines()
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        if not lines:
            break
        i = rng.randrange(len(lines))
        action = rng.choice(["delete", "duplicate", "indent", "dedent", "number", "number", "number", "char",
                             "truncate", "tab", "alias", "unicode", "unicode"])
        if action == "delete":
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        elif action == "indent":
            lines[i] = "  " + lines[i]
        elif action == "dedent":
            lines[i] = lines[i].lstrip()
        elif action == "number":
            lines[i] = re.sub(r"\d+", lambda m: str(rng.choice([0, -1, 10 ** 9, 99999999999999999999])), lines[i],
                              count=1)
        elif action == "char":
            at = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:at] + rng.choice([":", "{", "[", "]", "}", "-", "&", "*", "!", "%", "'", '"', "#",
                                                   "\\", "\x00", "|", ">"]) + lines[i][at:]
        elif action == "truncate":
            lines = lines[:i]
        elif action == "tab":
            lines[i] = "\t" + lines[i]
        elif action == "alias":
            bomb = ["x0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"] + [
                f"x{k}: &a{k} [*a{k - 1}, *a{k - 1}, *a{k - 1}, *a{k - 1}, *a{k - 1}, *a{k - 1}, *a{k - 1}]"
                for k in range(1, rng.randint(2, 9))]
            lines[i:i] = ["args:", *("  " + b for b in bomb)] if rng.random() < 0.5 else bomb
        else:
            lines[i] += rng.choice([" é", " \u202e", " 😀", " \ufeff"])
    return "\n".join(lines) + "\n"


def as_yaml(spec: Any) -> str:
    import yaml

    return yaml.safe_dump(spec, allow_unicode=True, sort_keys=False, default_flow_style=None)


# --------------------------------------------------------------------------- input files for `run` and `rf`

def input_file(rng: random.Random, directory: Path) -> str:
    import numpy as np

    kind = rng.choice(["npy", "npy_header", "png", "garbage_png", "empty", "npz", "dir", "glob", "missing"])
    path = directory / {"npy": "x.npy", "npy_header": "h.npy", "png": "x.png", "garbage_png": "g.png",
                        "empty": "e.png", "npz": "x.npz", "dir": "d", "glob": "*.png", "missing": "none.png"}[kind]
    if kind == "npy":
        np.save(path, np.random.default_rng(rng.randint(0, 9)).random(
            rng.choice([(3, 8, 8), (1, 3, 8, 8), (2, 1, 16, 16), (0, 3, 8, 8), (5,), (3, 8)])).astype(
            rng.choice(["float32", "float64", "int8", "complex64", "bool"])))
    elif kind == "npy_header":      # a small file whose header declares a huge array
        shape = rng.choice([(3, 100000, 100000), (10 ** 10,), (1, 3, 1, 2 ** 40)])
        header = {"descr": "<f4", "fortran_order": False, "shape": shape}
        text = repr(header).encode("latin1")
        text += b" " * (63 - (len(text) + 10) % 64) + b"\n"
        path.write_bytes(b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + b"\0" * 64)
    elif kind in ("png", "glob"):
        from PIL import Image

        size = rng.choice([(8, 8), (1, 1), (64, 48), (3, 500)])
        Image.new(rng.choice(["RGB", "L", "RGBA", "I;16", "1"]), size).save(directory / "x.png")
        path = directory / "x.png" if kind == "png" else path
    elif kind == "garbage_png":
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randint(0, 64))))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "npz":
        np.savez(path, **{"a": np.zeros((2, 2))})
    elif kind == "dir":
        path.mkdir(exist_ok=True)
    return str(path)


# --------------------------------------------------------------------------- cases

@dataclass
class Case:
    args: list[str]
    files: dict[str, str] = field(default_factory=dict)      # name -> text, written into the case's directory
    stdin: str | None = None

    def describe(self) -> str:
        shown = {name: text[:2000] for name, text in self.files.items()}
        return f"convcalc {' '.join(self.args)}\nfiles: {json.dumps(shown, indent=1, ensure_ascii=False)[:4000]}"


def make_case(rng: random.Random, directory: Path) -> Case:
    """One random command line over files written into ``directory`` (which the caller owns and empties)."""
    kind = rng.random()
    text = as_yaml(random_spec(rng)) if kind < 0.5 else as_yaml(arithmetic_spec(rng)) if kind < 0.6 else \
        mutated_text(rng)
    spec = str(directory / "spec.yaml")
    command = rng.choice(["analyze", "analyze", "analyze", "rf", "rf", "lint", "run", "run"])
    args = [command, spec]
    stdin = None
    if rng.random() < 0.05:
        args[1], stdin = "-", text
    if command == "analyze":
        args += rng.choice([[], ["--format", "json"], ["--format", "csv"], ["--format", "markdown"], ["--parts"],
                            ["--depth", rng.choice(["1", "0", "-1", "x"])]])
    if command in ("analyze", "rf") and rng.random() < 0.2:
        args += ["--input-size", rng.choice(["3x32x32", "1x8", "0x8x8", "3x100000x100000", "x", "3x-1x4", "1x1x1x1",
                                             "99999999999999999999x1"])]
    if command == "rf":
        args += rng.choice([[], [], ["--verify"], ["--unit", rng.choice(["0,0", "-1,-1", "5", "a", "1,2,3,4",
                                                                         "99999999999,0"])],
                            ["--layer", rng.choice(["input", "conv", "x", "[/]", ""])], ["--format", "json"]])
    if command == "lint":
        args = ["lint", str(directory)] + rng.choice([[], ["--format", "json"], ["--format", "sarif"],
                                                       ["--format", "junit"], ["--select", "CC2"],
                                                       ["--fail-on", rng.choice(["warning", "x"])]])
    if command == "run":
        args += ["--rf-check", rng.choice(["none", "none", "all"])]
        if rng.random() < 0.5:
            args += ["--input", input_file(rng, directory)]
        args += rng.choice([[], [], ["--batch", rng.choice(["2", "0", "1000000", "99999999999999999999"])],
                            ["--resize", rng.choice(["8x8", "0x8", "100000x100000", "axb"])],
                            ["--dtype", rng.choice(["float64", "int8"])], ["--topk", "3"],
                            ["--normalize", "imagenet"], ["--mean", rng.choice(["0.5", "a,b", "1,2,3,4,5"])],
                            ["--format", "json"], ["--seed", rng.choice(["1", "-1"])]])
    if rng.random() < 0.05:
        args += ["--set", rng.choice(["w=3", "=", "w=[", "num_classes=99999999999"])]
    return Case(args, {"spec.yaml": text}, stdin)


# --------------------------------------------------------------------------- the worker

def _worker() -> None:     # pragma: no cover (runs in the child process)
    """Read cases (JSON lines) on stdin, run each in-process, write one JSON result line per case."""
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, WORKER_MEMORY))
    from typer.testing import CliRunner

    from convcalc.cli import app
    from convcalc.execution import tune

    tune.RUN_BUDGET = 1.0          # `run` tunes a new network shape for 1 s at most, as in the suite (conftest.py)
    runner = CliRunner()

    def alarm(signum, frame):
        raise TimeoutError("case budget")

    signal.signal(signal.SIGALRM, alarm)
    for line in sys.stdin:
        case = json.loads(line)
        os.chdir(case["cwd"])
        started = time.perf_counter()
        signal.alarm(int(CASE_SECONDS) + 1)
        try:
            result = runner.invoke(app, case["args"], input=case["stdin"])
            code, output = result.exit_code, result.output
            exception = result.exception if not isinstance(result.exception, SystemExit) else None
            exc_text = f"{type(exception).__name__}: {exception}" if exception is not None else ""
        except BaseException as exc:   # noqa: BLE001  (a timeout or an error escaping the runner: report it)
            code, output, exc_text = -1, "", f"{type(exc).__name__}: {exc}"
        finally:
            signal.alarm(0)
        print(json.dumps({"code": code, "output": output[-4000:], "exception": exc_text[:2000],
                          "seconds": time.perf_counter() - started}), flush=True)


class Worker:
    """A worker process that runs cases one at a time; restarted after a case that hangs or kills it."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None

    def _start(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
                   COLUMNS="100", OPENBLAS_NUM_THREADS="1")
        self.process = subprocess.Popen([sys.executable, "-c", "import fuzzing; fuzzing._worker()"], env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True, cwd=str(ROOT))

    def run(self, case: Case, directory: Path) -> dict:
        """The worker's result for ``case``, or a result with code -2 when it hung past the budget or died."""
        for name, text in case.files.items():
            (directory / name).write_text(text, encoding="utf-8", errors="surrogatepass")
        if self.process is not None and self._address_space() > WORKER_MEMORY // 2:
            self.close()       # a long run's worker grows (~1.6 GB per 1,000 cases): fresh before it nears its cap
        if self.process is None or self.process.poll() is not None:
            self._start()
        assert self.process is not None and self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps({"args": case.args, "stdin": case.stdin, "cwd": str(directory)}) + "\n")
        self.process.stdin.flush()
        import selectors

        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=CASE_SECONDS * 2 + 5)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.close()
            return {"code": -2, "output": "", "exception": "the case hung past its budget or killed the worker",
                    "seconds": CASE_SECONDS * 2}
        return json.loads(line)

    def _address_space(self) -> int:
        """The worker's virtual memory in bytes (0 where /proc does not say)."""
        try:
            with open(f"/proc/{self.process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmSize:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, AttributeError):
            pass
        return 0

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def problem(result: dict) -> str | None:
    """What is wrong with a case's result, or None: exit 0/1/2, no traceback or Python-internal text, in budget."""
    if result["code"] == -2:
        return result["exception"]
    if result["exception"]:
        return f"an exception escaped: {result['exception']}"
    if result["code"] not in (0, 1, 2):
        return f"exit code {result['code']}"
    found = INTERNALS.search(result["output"])
    if found:
        return f"Python internals in the output: {found.group(0)!r}"
    if result["seconds"] > CASE_SECONDS:
        return f"took {result['seconds']:.1f} s (budget {CASE_SECONDS:.0f} s)"
    return None
