"""Issue 16, `run` and `rf` on hostile sizes: they check before they allocate.

* files are judged by their headers before their payload is read: a .npy declaring more than it holds (or than the
  spec takes), a .npz member declaring 10^10 floats, a zip bomb, a 12000x12000 PNG, a PGM whose maxval is 0;
* every run and study first estimates the memory it needs (`convcalc.execution.memory`) and refuses, in one line
  naming the estimate, the budget, the biggest array and how to change the budget, when it exceeds ``--max-memory``
  (default: 75 % of the available memory): huge inputs, ``--batch``, ``--resize``, an x1000 upsampling, a
  10^6 -> 10^5 Linear, ``rf --overlay/--erf/--verify`` at 3x30000x30000;
* the estimate is an upper bound on what a run really allocates (tracemalloc), not absurdly loose, and no shipped
  spec needs more than a small machine has.

Where a missing check would allocate gigabytes, the command runs in a subprocess whose address space is limited
(RLIMIT_AS) and with a timeout: without the check it would fail with a MemoryError traceback, not take the machine.
"""

from __future__ import annotations

import json
import re
import resource
import struct
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import convcalc
from convcalc.analysis.summary import analyze
from convcalc.cli import app
from convcalc.execution.memory import MemoryBudgetError, format_bytes, memory_budget, parse_size
from convcalc.execution.network import Network
from convcalc.execution.inputs import prepare_inputs
from convcalc.proof.run import run_estimate
from convcalc.spec.source import graph_of

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
TINY = str(SPECS / "tiny.yaml")
EDGES = str(SPECS / "edges.yaml")
LIMIT = 2_500_000_000          # the address space of a limited subprocess (Python, NumPy and BLAS take ~0.5 GB)


def cli(*args):
    return CliRunner().invoke(app, [*map(str, args)])


def error_line(result) -> str:
    """Exit 2 and exactly one line on stderr starting 'error:', nothing like a traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr, result.exception)
    text = result.stderr
    assert text.count("\n") == 1 and text.startswith("error: "), text
    assert "Traceback" not in result.output
    return text


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def limited(*args, code: int = 2, timeout: float = 60) -> str:
    """``convcalc ARGS`` in a subprocess limited to LIMIT bytes of address space: its exit code must be ``code``;
    with 2, stderr must be one 'error:' line (returned)."""
    done = subprocess.run([sys.executable, "-m", "convcalc", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, preexec_fn=_limit_memory, cwd=ROOT)
    assert done.returncode == code, (done.returncode, done.stdout[-2000:], done.stderr[-4000:])
    assert "Traceback" not in done.stderr and "Error:" not in done.stderr, done.stderr[-4000:]
    if code == 2:
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    return done.stderr


def write(tmp_path: Path, text: str, name: str = "net.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def npy_declaring(path: Path, shape, dtype: str = "<f4", data: int | None = None) -> Path:
    """A .npy file whose header declares ``shape``, followed by ``data`` bytes (None: all of them, as a sparse file,
    so that it takes no disk)."""
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
        offset = handle.tell()
        if data is None:
            handle.truncate(offset + int(np.prod(shape)) * np.dtype(dtype).itemsize)
        else:
            handle.write(b"\0" * data)
    return path


def _zip(path: Path, name: str, compressed: bytes, size: int, method: int = 8, crc: int = 0) -> Path:
    """A one-member zip archive written by hand (the CRC is not checked before a member is read to its end)."""
    encoded = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(compressed), size,
                        len(encoded), 0) + encoded
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(compressed), size,
                          len(encoded), 0, 0, 0, 0, 0, 0) + encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(compressed), 0)
    path.write_bytes(local + compressed + central + end)
    return path


def zip_bomb(path: Path, key: str, shape) -> Path:
    """An .npz whose member ``key`` is a float32 array of ``shape`` (a multiple of 2^22 values) of zeros: a few MB
    that inflate to gigabytes, made in milliseconds from one repeated deflate block."""
    header = _npy_header(shape)
    chunk = 1 << 24
    total = int(np.prod(shape)) * 4
    assert total % chunk == 0
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = packer.compress(header) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(bytes(chunk)) + packer.flush(zlib.Z_FULL_FLUSH)    # the same bytes for every chunk
    stream = start + block * (total // chunk) + zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    return _zip(path, key + ".npy", stream, len(header) + total)


def _npy_header(shape, dtype: str = "<f4") -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


def zero_png(path: Path, width: int, height: int, rows: int = 100) -> Path:
    """An RGB PNG of zeros, ``width`` x ``height``, written by hand: its pixel stream is one repeated deflate block
    of ``rows`` rows (a 12000x12000 picture takes ~300 KB and milliseconds)."""
    assert height % rows == 0
    row = bytes(1 + 3 * width)                                       # filter byte 0, then the pixels
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = packer.compress(row * rows) + packer.flush(zlib.Z_FULL_FLUSH)
    size = len(row) * height
    adler = ((size % 65521) << 16) | 1                               # Adler-32 of `size` zero bytes
    stream = b"\x78\xda" + block * (height // rows) + zlib.compressobj(9, zlib.DEFLATED, -15).flush() \
        + struct.pack(">I", adler)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", stream) + chunk(b"IEND", b""))
    return path


SIZE = r"(?:[\d.]+ (?:[KMGTPE]i)?B|[\d.]+e\+\d+ B)"
MEMORY_LINE = re.compile(r"error: the (run|study) would need about " + SIZE + r" of memory \((.+)\), over the"
                         r" budget of (.+?); the biggest array is (.+); make the input, batch or network smaller, or"
                         r" set --max-memory SIZE \(e\.g\. 16G; 0 or none: no limit\)\n")


def refusal(line: str) -> re.Match:
    match = MEMORY_LINE.fullmatch(line)
    assert match, line
    return match


# --------------------------------------------------------------------------- input files: headers first

def test_npy_declaring_more_than_it_holds_is_refused_before_loading(tmp_path):
    path = npy_declaring(tmp_path / "big.npy", (3, 100000, 100000), data=64)      # 192 bytes
    assert path.stat().st_size == 192
    assert limited("run", TINY, "--input", path) == \
        f"error: {path} is truncated: its header declares float32 [3, 100000, 100000] (111.8 GiB), but only 64 B" \
        " of data follow\n"


def test_npy_declaring_the_wrong_channels_is_refused_before_loading(tmp_path):
    path = npy_declaring(tmp_path / "wide.npy", (5, 20000, 20000))                # 8 GB, sparse
    assert limited("run", TINY, "--input", path) == \
        f"error: {path} has 5 channels (shape [5, 20000, 20000]); the spec takes 3\n"


def test_npy_larger_than_the_budget_is_refused_before_loading(tmp_path):
    path = npy_declaring(tmp_path / "large.npy", (3, 20000, 20000))               # 4.8 GB, sparse
    match = refusal(limited("run", EDGES, "--input", path, "--max-memory", "2G"))
    assert match.group(3) == "2.0 GiB (--max-memory)"
    assert "input" in match.group(2)


def test_npz_member_declaring_ten_billion_floats_is_refused(tmp_path):
    member = _npy_header((100000, 100000)) + bytes(512)
    path = _zip(tmp_path / "w.npz", "fc.weight.npy", member, len(member), method=0, crc=zlib.crc32(member))
    assert path.stat().st_size < 1024
    assert limited("run", TINY, "--weights", path) == \
        f"error: cannot read weights file {path}: member 'fc.weight' declares float32 [100000, 100000] (37.3 GiB)," \
        " but holds only 512 B of data\n"


def test_zip_bomb_is_judged_by_its_headers(tmp_path):
    path = zip_bomb(tmp_path / "bomb.npz", "linear_1.weight", (40960, 16384))    # 2.7 GB of zeros in ~2.7 MB
    assert path.stat().st_size < 4 * 2 ** 20
    assert limited("run", TINY, "--weights", path) == \
        "error: weights do not fit the network: missing 5: conv2d_1.weight, conv2d_1.bias, c2.weight, c2.bias," \
        " linear_1.bias | wrong shape 1: linear_1.weight is [40960, 16384], expected [10, 4096]\n"


def test_npz_member_that_is_not_an_array(tmp_path):
    path = _zip(tmp_path / "w.npz", "notes.txt", b"hello", 5, method=0, crc=zlib.crc32(b"hello"))
    assert error_line(cli("run", TINY, "--weights", path)) == \
        f"error: cannot read weights file {path}: member 'notes.txt' is not an array (.npy); save a state dict with" \
        " np.savez\n"


def test_weights_the_budget_cannot_hold_are_refused_before_loading(tmp_path):
    spec = write(tmp_path, "name: wide\ninput: [16384]\nlayers:\n  - {name: fc, type: Linear, out_features: 40960}\n")
    path = zip_bomb(tmp_path / "w.npz", "fc.weight", (40960, 16384))
    np.savez(tmp_path / "bias.npz", **{"fc.bias": np.zeros(40960, dtype=np.float32)})
    import zipfile

    with zipfile.ZipFile(tmp_path / "bias.npz") as source, zipfile.ZipFile(path, "a") as target:
        target.writestr("fc.bias.npy", source.read("fc.bias.npy"))
    match = refusal(limited("run", spec, "--weights", path, "--max-memory", "1G", "--rf-check", "none"))
    assert match.group(3) == "1.0 GiB (--max-memory)"
    assert "layer 'fc' (Linear)'s weight [40960, 16384]" in match.group(4)


def test_huge_png_is_refused_from_its_header(tmp_path):
    path = zero_png(tmp_path / "huge.png", 12000, 12000)
    assert path.stat().st_size < 1_000_000
    match = refusal(limited("run", EDGES, "--input", path, "--max-memory", "2G"))
    assert match.group(3) == "2.0 GiB (--max-memory)"


def test_rf_reads_only_the_size_of_an_input_it_does_not_draw(tmp_path):
    path = zero_png(tmp_path / "huge.png", 12000, 12000)
    limited("rf", EDGES, "--input", path, code=0)
    match = refusal(limited("rf", EDGES, "--input", path, "--overlay", tmp_path / "o.png", "--max-memory", "2G"))
    assert match.group(1) == "study" and "the input image [3, 12000, 12000] (float64)" in match.group(4)


@pytest.mark.parametrize("body", [b"P5\n4 4\n0\n" + bytes(16), b"P2\n4 4\n0\n" + b"0 " * 16])
def test_pgm_with_maxval_zero(tmp_path, body):
    path = tmp_path / "zero.pgm"
    path.write_bytes(body)
    assert error_line(cli("run", TINY, "--input", path)) == \
        f"error: cannot read image {path}: the file is malformed (maxval must be greater than 0 and less than" \
        " 65536)\n"


def test_truncated_image_is_one_line(tmp_path):
    path = tmp_path / "cut.png"
    path.write_bytes(zero_png(tmp_path / "whole.png", 64, 64, rows=64).read_bytes()[:60])
    line = error_line(cli("run", TINY, "--input", path, "--resize", "32x32"))
    assert line.startswith(f"error: cannot read image {path}: ")


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs FIFOs")
def test_files_that_are_not_regular_are_refused_without_blocking(tmp_path):
    import os

    (tmp_path / "images").mkdir()
    os.mkfifo(tmp_path / "images" / "pipe.png")
    os.mkfifo(tmp_path / "pipe.npz")
    os.mkfifo(tmp_path / "out.npy")
    assert limited("run", TINY, "--input", tmp_path / "images", timeout=30) == \
        f"error: {tmp_path / 'images' / 'pipe.png'} is a FIFO, not a regular file\n"
    assert limited("run", TINY, "--weights", tmp_path / "pipe.npz", timeout=30) == \
        f"error: {tmp_path / 'pipe.npz'} is a FIFO, not a regular weights file\n"
    assert limited("run", TINY, "--output", tmp_path / "out.npy", timeout=30) == \
        f"error: cannot write {tmp_path / 'out.npy'}: it exists and is not a regular file\n"
    assert limited("rf", TINY, "--input", tmp_path / "images" / "pipe.png", timeout=30) == \
        f"error: {tmp_path / 'images' / 'pipe.png'} is a FIFO, not a regular file\n"
    assert error_line(cli("run", TINY, "--input", "/dev/zero")) == \
        "error: /dev/zero is a character device, not a regular file\n"


# --------------------------------------------------------------------------- sizes from options and specs

@pytest.mark.parametrize("args", [
    ["--batch", "99999999999999999999"],
    ["--batch", "1000000"],
    ["--resize", "100000x100000"],
])
def test_options_that_would_blow_the_memory(args):
    match = refusal(limited("run", TINY, *args, "--max-memory", "1G"))
    assert match.group(3) == "1.0 GiB (--max-memory)"


def test_huge_spec_input(tmp_path):
    spec = write(tmp_path, "name: huge\ninput: [3, 100000, 100000]\nlayers:\n  - {type: ReLU}\n")
    match = refusal(limited("run", spec))
    assert re.fullmatch(r"[\d.]+ [KMG]iB \(75% of the [\d.]+ [KMG]iB available\)", match.group(3)), match.group(3)
    assert match.group(4) == "the input batch [1, 3, 100000, 100000] (float64) (223.5 GiB)"


def test_huge_intermediate_upsampling_names_its_layer(tmp_path):
    spec = write(tmp_path, "name: up\ninput: [1, 64, 64]\nlayers:\n"
                           "  - {name: up, type: Upsample, scale_factor: 1000}\n  - {type: ReLU}\n")
    match = refusal(error_line(cli("run", spec, "--max-memory", "4G")))
    assert match.group(4) == "layer 'up' (Upsample)'s output [1, 1, 64000, 64000] (15.3 GiB)"


def test_huge_linear_names_its_weight(tmp_path):
    spec = write(tmp_path, "name: fc\ninput: [1000000]\nlayers:\n  - {name: fc, type: Linear, out_features: 100000}\n")
    assert error_line(cli("run", spec, "--max-memory", "8G")) == (
        "error: the run would need about 1.8 TiB of memory (input 7.6 MiB, weights 1.8 TiB, overhead 16.0 MiB), over"
        " the budget of 8.0 GiB (--max-memory); the biggest array is layer 'fc' (Linear)'s weight [100000, 1000000]"
        " (745.1 GiB); make the input, batch or network smaller, or set --max-memory SIZE (e.g. 16G; 0 or none: no"
        " limit)\n")


@pytest.mark.parametrize("option", ["--overlay", "--erf"])
def test_rf_pictures_at_a_huge_size(tmp_path, option):
    match = refusal(limited("rf", TINY, "--input-size", "3x30000x30000", option, tmp_path / "p.png"))
    assert match.group(1) == "study"


def test_rf_verify_at_a_huge_size():
    match = refusal(limited("rf", EDGES, "--input-size", "3x30000x30000", "--verify"))
    # edges: per layer an anchor, two corners and per axis a run of period + 1 = 2 units (every period is 1)
    assert match.group(4).startswith("the dependency masks of 7 units through layer")


def test_rf_verify_counts_a_windows_padded_input(tmp_path):
    """A 64x64 map through a conv whose padding and dilation are 2^31 - 1 (its output is 64x64 again): the proof's
    walk scatters into the padded input, 2^32 wide (a NumPy 'array is too big' traceback before the fix)."""
    spec = write(tmp_path, "name: wide\ninput: [1, 64, 64]\nlayers:\n  - {name: c, type: Conv2d, out_channels: 1,"
                           " kernel_size: 3, dilation: 2147483647, padding: 2147483647}\n  - {type: Flatten}\n")
    match = refusal(limited("rf", spec, "--verify"))
    # (the unit count is the proof's: anchor, corners and a run per axis of c, three for the whole-input Flatten)
    assert re.match(r"the padded dependency masks of \d+ units at layer 'c'", match.group(4)), match.group(4)


def test_default_budget_follows_the_address_space_limit():
    code = "from convcalc.execution.memory import memory_budget; print(memory_budget().limit)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          preexec_fn=_limit_memory)
    assert done.returncode == 0, done.stderr
    assert 0 < int(done.stdout) < 0.75 * LIMIT


# --------------------------------------------------------------------------- --max-memory

@pytest.mark.parametrize("text, expected", [
    ("8G", 8 * 2 ** 30), ("500M", 500 * 2 ** 20), ("1.5GiB", 3 * 2 ** 29), ("2 GB", 2 * 2 ** 30), ("64k", 65536),
    ("1048576", 2 ** 20), ("0", None), ("none", None), ("Unlimited", None),
])
def test_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["lots", "8X", "-1G", "1e999G", ""])
def test_bad_sizes_are_one_line(text):
    line = error_line(cli("run", TINY, "--max-memory", text))
    assert line.startswith("error: --max-memory '") and "give" in line


def test_no_limit_runs_and_a_tiny_budget_refuses():
    assert cli("run", TINY, "--max-memory", "none").exit_code == 0
    match = refusal(error_line(cli("run", TINY, "--max-memory", "1M")))
    assert match.group(3) == "1.0 MiB (--max-memory)"
    match = refusal(error_line(cli("rf", TINY, "--erf", "/nonexistent/e.png", "--max-memory", "100K")))
    assert match.group(1) == "study" and match.group(3) == "100.0 KiB (--max-memory)"


def test_library_calls_take_the_budget():
    with pytest.raises(MemoryBudgetError, match=r"^the run would need about .* over the budget of 1\.0 MiB"):
        convcalc.run(TINY, max_memory="1M")
    with pytest.raises(MemoryBudgetError, match=r"^the study would need about .* over the budget of 1\.0 KiB"):
        convcalc.study_fields(TINY, overlay=True, max_memory=1024)
    assert convcalc.run(TINY, max_memory=0, rf_check=False).ok
    assert memory_budget(None).origin.startswith("75% of the ") and memory_budget("auto").origin.startswith("75%")
    assert memory_budget("2G") == memory_budget(2 * 2 ** 30) and memory_budget(0).limit is None
    for wrong in (-1, float("nan"), float("inf")):
        with pytest.raises(convcalc.ConvcalcError, match="must be a number of bytes, at least 0"):
            memory_budget(wrong)
    assert memory_budget(1.5e9).limit == 1_500_000_000


def test_sizes_read_as_people_write_them():
    assert format_bytes(0) == "0 B" and format_bytes(1536) == "1.5 KiB" and format_bytes(3 * 2 ** 40) == "3.0 TiB"
    assert format_bytes(10 ** 30) == "1.0e+30 B"


# --------------------------------------------------------------------------- the estimate against real runs

def measured_run(graph, x: np.ndarray, **options) -> int:
    """tracemalloc's peak of preparing ``x``, building the network and running it, as `convcalc.run` does."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        checked = convcalc.run(graph, x, max_memory=0, **options)
        assert checked.ok
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


CONVS = {             # the algorithm: (input channels, the conv), one conv per algorithm `ConvNd.algorithm_for` picks
    "winograd": (16, "{type: Conv2d, out_channels: 32, kernel_size: 3, padding: 1, algorithm: winograd}"),
    "fft": (16, "{type: Conv2d, out_channels: 8, kernel_size: 9, padding: 4, algorithm: fft}"),
    "im2col_t": (3, "{type: Conv2d, out_channels: 16, kernel_size: 5, padding: 2, algorithm: direct}"),
    "depthwise": (16, "{type: Conv2d, out_channels: 32, kernel_size: 3, groups: 16, padding: 1}"),
    "pointwise": (16, "{type: Conv2d, out_channels: 48, kernel_size: 1}"),
    "rows": (16, "{type: Conv2d, out_channels: 24, kernel_size: [3, 5], padding: [1, 2], algorithm: direct}"),
    "im2col": (16, "{type: Conv2d, out_channels: 24, kernel_size: 3, groups: 2, padding: 1, padding_mode: reflect,"
                   " algorithm: direct}"),
    # 48 x 48 outputs: more than one block of patches below a 5 MiB L2 cache (`kernels.block_rows`)
    "im2col_b": (16, "{type: Conv2d, out_channels: 24, kernel_size: 3, stride: 2, padding: 1}"),
}


@pytest.mark.parametrize("method", sorted(CONVS))
@pytest.mark.parametrize("batch", [1, 4])
def test_estimate_bounds_each_conv_algorithm(method, batch):
    channels, layer = CONVS[method]
    spec = convcalc.parse_spec(f"name: c\ninput: [{channels}, 96, 96]\nlayers:\n  - {{type: ReLU}}\n  - {layer}\n"
                               "  - {type: BatchNorm2d}\n  - {type: ReLU}\n", "c.yaml")
    graph = convcalc.build_graph(spec)
    summary = analyze(graph)
    conv = next(node for node in graph.nodes if node.type_name == "Conv2d")
    assert conv.layer.algorithm_for(channels, (96, 96), summary.layer(conv.name).output_shape[1:],
                                    np.dtype("float32")) == method
    x = np.random.default_rng(0).random((batch, channels, 96, 96))
    measured = measured_run(graph, x, rf_check=False)
    estimate = run_estimate(summary, batch, rf_check=False).total
    assert measured <= estimate <= 3 * measured + 40 * 2 ** 20, (format_bytes(measured), format_bytes(estimate))


@pytest.mark.parametrize("name, shape, options", [
    ("tiny.yaml", None, {}),
    ("edges.yaml", None, {"keep_maps": True}),
    ("resnet18.yaml", (3, 96, 96), {"dtype": "float64"}),
    ("unet.yaml", (1, 188, 188), {"rf_check": False}),
    ("c3d.yaml", (3, 16, 32, 32), {"rf_check": False}),
    ("gated_inpainting.yaml", (5, 64, 64), {}),
    ("xception.yaml", (3, 71, 71), {"rf_check": False, "keep_maps": True}),
])
def test_estimate_bounds_shipped_specs(name, shape, options):
    graph = graph_of(SPECS / name, None, False)
    shape = shape or graph.input_shape
    x = np.random.default_rng(0).random((2, *shape))
    summary = analyze(graph, shape)
    measured = measured_run(graph, x, **options)
    estimate = run_estimate(summary, 2, options.get("dtype", "float32"), keep_maps=options.get("keep_maps", False),
                            rf_check=options.get("rf_check", True)).total
    assert measured <= estimate <= 3 * measured + 40 * 2 ** 20, (format_bytes(measured), format_bytes(estimate))


def test_erf_estimate_bounds_the_study():
    from convcalc.proof.study import study_estimate
    from convcalc.proof.erf import erf_summary

    graph = graph_of(SPECS / "resnet18.yaml", None, False)
    summary = analyze(graph, (3, 64, 64))
    layer = "layer2.1.add_1"
    estimate = study_estimate(summary, erf=erf_summary(graph, (3, 64, 64), layer), overlay=True).total
    tracemalloc.start()
    try:
        convcalc.study_fields(graph, layer=layer, input_size=(3, 64, 64), erf=True, samples=2, overlay=True,
                              max_memory=0)
        measured = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert measured <= estimate <= 4 * measured + 40 * 2 ** 20, (format_bytes(measured), format_bytes(estimate))


@pytest.mark.parametrize("path", sorted(p for p in SPECS.rglob("*.yaml") if p.parent.name != "blocks"),
                         ids=lambda p: str(p.relative_to(SPECS)))
def test_no_shipped_spec_needs_a_large_machine(path):
    """At the spec's own input, a run with the receptive-field proof needs less than 3.5 GiB by the estimate: a
    machine with 5 GiB available (the default budget is 75 % of it) runs every shipped spec."""
    summary = analyze(graph_of(path, None, False))
    assert run_estimate(summary, 1).total < 3.5 * 2 ** 30


def test_network_memory_matches_prepare_inputs_for_every_kind_of_source(tmp_path):
    """`declare_inputs` (headers only) announces exactly the batch `prepare_inputs` makes."""
    from PIL import Image
    from convcalc.execution.inputs import declare_inputs

    Image.fromarray(np.zeros((20, 30, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((20, 30), dtype=np.uint8)).save(tmp_path / "b.png")
    np.save(tmp_path / "c.npy", np.zeros((2, 3, 20, 30)))
    cases = [(None, {}), (None, {"resize": (10, 12)}), (None, {"batch": 3}), (str(tmp_path / "a.png"), {}),
             (str(tmp_path / "*.png"), {"resize": (7, 9)}), (str(tmp_path / "c.npy"), {}),
             (np.zeros((3, 5, 6)), {"batch": 2}), (str(tmp_path), {"resize": (20, 30)})]
    for source, options in cases:
        declared = declare_inputs(source, (3, 16, 16), **options)
        x, _ = prepare_inputs(source, (3, 16, 16), **options)
        assert declared.shape == x.shape, (source, options)


def test_networks_still_build_from_a_summary():
    summary = analyze(graph_of(SPECS / "tiny.yaml", None, False))
    network = Network(summary)
    x, _ = prepare_inputs(None, summary.input_shape)
    assert network.run(x).ok


# --------------------------------------------------------------------------- long axes: no Python loop per position

@pytest.mark.parametrize("pool", ["AdaptiveAvgPool1d", "AdaptiveMaxPool1d"])
@pytest.mark.parametrize("i, o", [(30, 100000), (1000, 777), (5000, 65)])
def test_adaptive_pooling_to_many_bins_matches_torch(pool, i, o):
    """Adaptive pooling to many bins gathers them at once (bin by bin, 10^6 bins took 8 s of NumPy calls in
    `run --rf-check all`); the values against torch's, exactly for max."""
    import torch

    from convcalc.kernels.pooling import adaptive_reduce

    x = np.random.default_rng(i).standard_normal((2, 3, i)).astype(np.float32)
    expected = getattr(torch.nn, pool)(o)(torch.from_numpy(x)).numpy()
    got = adaptive_reduce(np.moveaxis(x, 1, -1), (o,), np.max if "Max" in pool else np.mean)
    got = np.moveaxis(got, -1, 1)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    if "Max" in pool:
        assert np.array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_rf_verify_of_a_sparse_long_axis_answers(tmp_path):
    """A stride-100,000 transposed conv (2.9 million units, one in 100,000 reading input): choosing the units to
    measure looks at a bounded number of starts from the middle, not at every unit (80 s before)."""
    spec = write(tmp_path, "name: sparse\ninput: [1, 30]\nlayers:\n  - {type: ConvTranspose1d, out_channels: 1,"
                           " kernel_size: 3, stride: 100000}\n")
    done = subprocess.run([sys.executable, "-m", "convcalc", "rf", str(spec), "--verify", "--format", "json"],
                          capture_output=True, text=True, timeout=60, preexec_fn=_limit_memory, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)


def test_units_nearest_the_middle_come_first():
    from convcalc.proof.verify import _nearest_first

    for m in range(12):
        for centre in range(-3, 26):
            assert list(_nearest_first(m, centre)) == sorted(range(m), key=lambda s: (abs(2 * s - centre), s))


def test_scatter_of_positions_named_many_times_sums_them():
    """The VJP of a gather whose positions repeat many times (adaptive pooling of 3 pixels to 10^6 bins): one
    reduceat instead of a pass per repetition (333,334 passes: 20 s of `rf --verify`); against np.add.at."""
    from convcalc.kernels.scatter import scatter_add_axis

    rng = np.random.default_rng(3)
    index = rng.integers(0, 3, size=5000)
    values = rng.standard_normal((2, 5000, 4))
    expected = np.zeros((2, 3, 4))
    np.add.at(expected, (slice(None), index), values)
    np.testing.assert_allclose(scatter_add_axis(values, index, 1, 3), expected, rtol=1e-12, atol=1e-12)
