"""`convcalc run` through the CLI (typer's CliRunner, in-process): what it computes, what it checks,
what it refuses.

* the state_dict contract: a torch model whose module names are convcalc's layer names saves a
  ``.npz`` that `run` loads as it is and reproduces torch's logits (hand-built ResNet-18 of
  ``torch_models``, BatchNorm statistics randomised so that folding is exercised);
* weights files that do not fit: every problem in one line, exit 2; no pickles;
* every shipped spec runs on the built-in image and confirms every prediction; ResNet-50's executed
  MACs are torchvision's published 4.089 GMACs;
* ``specs/edges.yaml`` against a Sobel magnitude computed here with torch; ``--save-maps``;
* image inputs (channel conversion, sizes, ``--resize``, directories, globs, ``--batch``, ``--normalize``,
  ``--mean/--std``) through a spec that is the identity, so ``--output`` shows the input itself;
* ``--topk`` and the JSON contract; exit 1 when a layer does not do what the analyzer predicted.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_models import TORCH_MODELS  # noqa: E402

from convcalc.cli import app  # noqa: E402
from convcalc.execution.inputs import IMAGENET_MEAN, IMAGENET_STD, default_input  # noqa: E402
from convcalc.layers import lookup  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
SPEC_FILES = sorted(p for p in SPECS.rglob("*.yaml") if p.parent.name != "blocks")   # tfslim/ too; not libraries
TINY = str(SPECS / "tiny.yaml")
EDGES = str(SPECS / "edges.yaml")

SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)
SOBEL_Y = SOBEL_X.T.copy()


def invoke(*args):
    return CliRunner().invoke(app, ["run", *map(str, args)])


def ok(result, code: int = 0):
    """Assert the exit code; show everything if it is not the expected one."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


def error_line(result) -> str:
    """A bad input: exit 2, exactly one line on stderr starting 'error:', nothing like a traceback."""
    ok(result, 2)
    text = result.stderr
    assert text.count("\n") == 1 and text.endswith("\n"), text
    assert text.startswith("error: "), text
    assert "Traceback" not in result.output
    return text


def write_spec(tmp_path: Path, text: str, name: str = "net.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def identity_spec(tmp_path: Path, channels: int, size=(8, 8)) -> Path:
    """A network that is the identity: its --output is the input as `run` prepared it."""
    return write_spec(tmp_path, f"name: ident\ninput: [{channels}, {size[0]}, {size[1]}]\n"
                                "layers:\n  - {type: Identity}\n", f"ident{channels}.yaml")


def save_png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def flat(text: str) -> str:
    """Output with runs of whitespace (and rich's wrapping of a title longer than its table) made one space."""
    return " ".join(text.split())


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- the state_dict contract

@pytest.fixture(scope="module")
def resnet18_files(tmp_path_factory):
    """Hand-built torch ResNet-18 with random BatchNorm statistics/affines, its .npz, an input and the logits."""
    directory = tmp_path_factory.mktemp("resnet18")
    torch.manual_seed(0)
    model = TORCH_MODELS["resnet18"][0]().eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.num_batches_tracked.fill_(7)
    weights = directory / "w.npz"
    np.savez(weights, **{k: v.numpy() for k, v in model.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32)   # float32-representable
    inputs = directory / "x.npy"
    np.save(inputs, x)
    with torch.no_grad():
        logits = model.double()(torch.from_numpy(x.astype(np.float64))).numpy()
    return directory, weights, inputs, logits


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-9), ("float32", 1e-4)])
def test_torch_state_dict_runs_as_saved(resnet18_files, dtype, tolerance):
    directory, weights, inputs, logits = resnet18_files
    out = directory / f"y_{dtype}.npy"
    result = ok(invoke(SPECS / "resnet18.yaml", "--input", inputs, "--weights", weights, "--output", out,
                       "--dtype", dtype))
    assert "all predictions confirmed" in result.stdout
    assert f"output [2, 1000] saved to {out}" in result.stdout
    y = np.load(out)
    assert y.dtype == np.dtype(dtype)
    assert y.shape == logits.shape == (2, 1000)
    scale = np.abs(logits).max()
    assert scale > 0.1                                            # not a degenerate comparison
    assert np.abs(y - logits).max() <= tolerance * scale
    # the two samples differ, and the run did not just reproduce the default initialisation
    assert np.abs(y[0] - y[1]).max() > 1e-3 * scale


def test_weights_mismatch_reported_together(tmp_path):
    rng = np.random.default_rng(0)
    state = {"conv2d_1.weight": rng.random((16, 3, 3, 3)), "conv2d_1.bias": rng.random(16),
             "c2.weight": rng.random((16, 16, 3, 3)),                          # c2.bias missing
             "linear_1.weight": rng.random((10, 4095)),                         # wrong shape
             "linear_1.bias": rng.random(10),
             "extra.weight": rng.random(3), "conv2d_1.running_mean": rng.random(16)}   # unexpected
    np.savez(tmp_path / "w.npz", **state)
    line = error_line(invoke(TINY, "--weights", tmp_path / "w.npz"))
    assert line == ("error: weights do not fit the network: missing 1: c2.bias"
                    " | unexpected 2: extra.weight, conv2d_1.running_mean"
                    " | wrong shape 1: linear_1.weight is [10, 4095], expected [10, 4096]\n")


def test_weights_refuse_pickles(tmp_path):
    marker = tmp_path / "unpickled"

    class Payload:                                                # unpickling it would create `marker`
        def __reduce__(self):
            return os.makedirs, (str(marker),)

    path = tmp_path / "evil.npz"
    np.savez(path, **{"conv2d_1.weight": np.array([Payload(), 1], dtype=object)})
    line = error_line(invoke(TINY, "--weights", path))
    assert f"cannot read weights file {path}" in line and "allow_pickle=False" in line
    assert not marker.exists()


def test_weights_file_problems(tmp_path):
    # no such file
    assert error_line(invoke(TINY, "--weights", tmp_path / "nope.npz")) == \
        f"error: no such weights file: {tmp_path / 'nope.npz'}\n"
    # a single array (.npy) is not a state dict (was a traceback)
    np.save(tmp_path / "one.npy", np.zeros(3))
    assert "holds a single array, not a state dict" in error_line(invoke(TINY, "--weights", tmp_path / "one.npy"))
    # an empty archive lists every key as missing (was a KeyError traceback)
    np.savez(tmp_path / "empty.npz")
    assert "missing 6: conv2d_1.weight, conv2d_1.bias, c2.weight, c2.bias, linear_1.weight, linear_1.bias" in \
        error_line(invoke(TINY, "--weights", tmp_path / "empty.npz"))
    # not a zip file at all
    (tmp_path / "text.npz").write_text("hello")
    assert error_line(invoke(TINY, "--weights", tmp_path / "text.npz")) == \
        f"error: {tmp_path / 'text.npz'} is not an .npz archive (save a state dict with np.savez)\n"


def test_weights_non_numeric_values(tmp_path):
    rng = np.random.default_rng(0)
    state = {"conv2d_1.weight": np.full((16, 3, 3, 3), "x"), "conv2d_1.bias": rng.random(16),
             "c2.weight": rng.random((16, 16, 3, 3)), "c2.bias": rng.random(16),
             "linear_1.weight": rng.random((10, 4096)), "linear_1.bias": rng.random(10)}
    np.savez(tmp_path / "w.npz", **state)
    assert "conv2d_1.weight holds <U1 values, not real numbers" in error_line(invoke(TINY, "--weights",
                                                                                tmp_path / "w.npz"))


def test_weights_without_num_batches_tracked(tmp_path):
    """num_batches_tracked is bookkeeping of training: a state dict may leave it out."""
    spec = write_spec(tmp_path, "name: cb\ninput: [2, 6, 6]\nlayers:\n"
                                "  - {name: conv, type: Conv2d, out_channels: 3, kernel_size: 3, bias: false}\n"
                                "  - {name: bn, type: BatchNorm2d}\n")
    torch.manual_seed(0)
    conv, bn = torch.nn.Conv2d(2, 3, 3, bias=False), torch.nn.BatchNorm2d(3).eval()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    state = {f"conv.{k}": v.numpy() for k, v in conv.state_dict().items()}
    state.update({f"bn.{k}": v.numpy() for k, v in bn.state_dict().items() if k != "num_batches_tracked"})
    np.savez(tmp_path / "w.npz", **state)
    x = np.random.default_rng(0).random((1, 2, 6, 6))
    np.save(tmp_path / "x.npy", x)
    ok(invoke(spec, "--input", tmp_path / "x.npy", "--weights", tmp_path / "w.npz", "--output", tmp_path / "y.npy",
              "--dtype", "float64"))
    with torch.no_grad():
        expected = bn.double()(conv.double()(torch.from_numpy(x))).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- every shipped spec, built-in image

@functools.lru_cache(maxsize=None)
def default_run(name: str) -> tuple[int, dict]:
    """`convcalc run specs/<name>.yaml --format json` on the built-in image (once per session); ``name`` may have a
    directory (``tfslim/vgg_16``)."""
    result = CliRunner().invoke(app, ["run", str(SPECS / f"{name}.yaml"), "--format", "json"])
    assert result.exit_code == 0, (result.stdout[-2000:], result.stderr, result.exception)
    return result.exit_code, json.loads(result.stdout)


def test_shipped_specs_found():
    assert {"tiny", "lenet5", "alexnet", "vgg16", "resnet18", "resnet50", "edges"} <= {p.stem for p in SPEC_FILES}


def spec_name(path: Path) -> str:
    """specs/tfslim/vgg_16.yaml -> 'tfslim/vgg_16'."""
    return path.relative_to(SPECS).with_suffix("").as_posix()


@pytest.mark.parametrize("path", SPEC_FILES, ids=spec_name)
def test_every_shipped_spec_runs_on_the_builtin_image(path):
    code, data = default_run(spec_name(path))
    assert code == 0
    assert data["ok"] is True and data["first_nonfinite"] is None
    assert data["input"]["source"] == "built-in test image"
    spec_input = json.loads(CliRunner().invoke(app, ["analyze", str(path), "--format", "json"]).stdout)
    assert data["input"]["shape"] == [1, *spec_input["input_shape"]]
    assert data["output_shape"] == [1, *spec_input["output_shape"]]
    assert [layer["name"] for layer in data["layers"]] == [layer["name"] for layer in spec_input["layers"]]
    for layer, predicted in zip(data["layers"], spec_input["layers"]):
        assert layer["shape_ok"] and layer["macs_ok"] and layer["finite"], layer
        assert layer["predicted_shape"] == layer["actual_shape"] == predicted["output_shape"]
        assert layer["predicted_macs"] == layer["executed_macs"] == predicted["macs"]
    assert data["totals"]["executed_macs"] == data["totals"]["predicted_macs"] == spec_input["totals"]["macs"]


@pytest.mark.parametrize("path", SPEC_FILES, ids=spec_name)
def test_every_shipped_spec_runs_an_empty_batch(path):
    """Batch 0 (as PyTorch allows): empty outputs of every predicted shape, nothing executed, no error."""
    from convcalc import build_graph, load_spec
    from convcalc.execution.network import Network

    network = Network(build_graph(load_spec(path)))
    result = network.run(np.zeros((0, *network.summary.input_shape), dtype=np.float32))
    assert result.ok
    assert result.output.shape == (0, *network.summary.layers[-1].output_shape)
    assert all(layer.executed_macs == 0 for layer in result.layers)


def test_resnet50_executed_macs_are_torchvisions_gmacs():
    _, data = default_run("resnet50")
    executed = data["totals"]["executed_macs"]
    assert executed == 4_089_184_256
    assert round(executed / 1e9, 3) == 4.089          # torchvision's "GFLOPS" column for ResNet50_Weights


def test_default_run_table_and_exit_code():
    result = ok(invoke(TINY))
    assert result.stdout.startswith("tiny: built-in test image → batch 1 × 3×32×32 → 10")
    assert "shapes 7/7 ✓   MACs 7/7 ✓   executed 1,073,152 MACs" in result.stdout
    assert result.stdout.rstrip().endswith("all predictions confirmed")
    assert result.stderr == ""


def test_seed_and_dtype(tmp_path):
    outs = {}
    for seed in (0, 0, 1):
        ok(invoke(TINY, "--seed", seed, "--output", tmp_path / "y.npy"))
        outs.setdefault(seed, []).append(np.load(tmp_path / "y.npy"))
    assert np.array_equal(outs[0][0], outs[0][1])
    assert not np.allclose(outs[0][0], outs[1][0])
    assert error_line(invoke(TINY, "--dtype", "float16")) == ("error: Invalid value for '--dtype': 'float16' is not one"
                                                              " of 'float32', 'float64' ('convcalc run -h' lists the"
                                                              " options)\n")


# --------------------------------------------------------------------------- edges.yaml against Sobel

def sobel_magnitude(images: np.ndarray) -> np.ndarray:
    """[N, 3, H, W] RGB in [0, 1] -> [N, 1, H, W]: BT.601 luma, Sobel x/y with replicate padding, √(gx²+gy²)."""
    x = torch.from_numpy(np.asarray(images, dtype=np.float64))
    luma = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    padded = F.pad(luma, (1, 1, 1, 1), mode="replicate")
    kernels = torch.from_numpy(np.stack([SOBEL_X, SOBEL_Y])[:, None])
    g = F.conv2d(padded, kernels)                       # cross-correlation, as the spec's Conv2d
    return torch.sqrt(g[:, 0:1] ** 2 + g[:, 1:2] ** 2).numpy()


def test_edges_on_the_builtin_image(tmp_path):
    image = default_input([3, 256, 256])[None]
    expected = sobel_magnitude(image)
    assert expected.max() > 1.0 and np.median(expected) < 0.05       # strong edges, mostly gentle gradient
    ok(invoke(EDGES, "--output", tmp_path / "y64.npy", "--dtype", "float64"))
    y = np.load(tmp_path / "y64.npy")
    assert y.shape == (1, 1, 256, 256)
    # torch's float64 conv (the oracle) has been seen, on a busy machine only, to differ from exact arithmetic by up
    # to 2e-11 from row 128 on (its threaded path; NumPy's own sums agree with convcalc): 1e-9 still fails
    # on any wrong tap, weight or padding, whose errors here are above 1e-3
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-9)
    ok(invoke(EDGES, "--output", tmp_path / "y32.npy"))
    y32 = np.load(tmp_path / "y32.npy")
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, expected, rtol=0, atol=1e-5 * expected.max())


def test_edges_on_a_png(tmp_path):
    height, width = 70, 90                                  # not the spec's 256x256, not square
    yy, xx = np.mgrid[0:height, 0:width]
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[..., 0] = (xx * 255 // (width - 1)).astype(np.uint8)                  # horizontal ramp in red
    pixels[..., 1] = np.where((yy - 35) ** 2 + (xx - 30) ** 2 < 15 ** 2, 220, 20)   # a disc in green
    pixels[..., 2] = np.where((xx // 8 + yy // 8) % 2 == 0, 200, 50)            # a checkerboard in blue
    png = save_png(tmp_path / "photo.png", pixels)
    result = ok(invoke(EDGES, "--input", png, "--output", tmp_path / "y.npy", "--dtype", "float64"))
    assert f"edges: {png} → batch 1 × 3×70×90 → 1×70×90" in flat(result.stdout)
    y = np.load(tmp_path / "y.npy")
    expected = sobel_magnitude(pixels.transpose(2, 0, 1)[None] / 255.0)
    assert y.shape == (1, 1, height, width)
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12)


def test_save_maps(tmp_path):
    maps = tmp_path / "maps" / "nested"
    result = ok(invoke(EDGES, "--save-maps", maps))
    assert f"5 feature-map pictures written to {maps}/" in result.stdout
    names = sorted(p.name for p in maps.iterdir())
    assert names == ["000_gray.png", "001_sobel.png", "002_squared.png", "003_sum.png", "004_magnitude.png"]
    pictures = {}
    for name in names:
        with Image.open(maps / name) as picture:
            picture.load()
            assert picture.format == "PNG"
            pictures[name] = np.asarray(picture)
    magnitude = pictures["004_magnitude.png"]
    assert magnitude.min() < magnitude.max()
    assert magnitude.max() == 255                          # scaled to its own range
    assert len(np.unique(magnitude)) > 10


@pytest.mark.parametrize("text", [
    "input: [3, 40]\nlayers:\n  - {name: c, type: Conv1d, out_channels: 4, kernel_size: 3}\n"
    "  - {name: f, type: Flatten}\n  - {name: fc, type: Linear, out_features: 5}\n",
    "input: [2, 6, 10, 12]\nlayers:\n  - {name: c, type: Conv3d, out_channels: 20, kernel_size: 3}\n"
    "  - {name: p, type: AdaptiveAvgPool3d, output_size: 1}\n",
], ids=["1d-and-vectors", "3d"])
def test_save_maps_of_every_rank(tmp_path, text):
    spec = write_spec(tmp_path, "name: r\n" + text)
    maps = tmp_path / "maps"
    ok(invoke(spec, "--save-maps", maps))
    layers = [line.split("name: ")[1].split(",")[0] for line in text.splitlines() if "name: " in line]
    assert sorted(p.name for p in maps.iterdir()) == [f"{i:03d}_{name}.png" for i, name in enumerate(layers)]
    for picture in maps.iterdir():
        with Image.open(picture) as image:
            assert image.mode == "L" and min(image.size) >= 1


# --------------------------------------------------------------------------- images

def test_rgb_image_into_a_one_channel_spec_is_pil_grayscale(tmp_path):
    pixels = rgb(12, 20)
    png = save_png(tmp_path / "c.png", pixels)
    ok(invoke(identity_spec(tmp_path, 1), "--input", png, "--output", tmp_path / "y.npy", "--dtype", "float64"))
    y = np.load(tmp_path / "y.npy")
    with Image.open(png) as image:
        gray = np.asarray(image.convert("L"), dtype=np.float64) / 255.0
    assert y.shape == (1, 1, 12, 20)
    np.testing.assert_array_equal(y[0, 0], gray)
    # and it is the BT.601 luma of the pixels (PIL rounds to 8 bits)
    luma = pixels @ np.array([0.299, 0.587, 0.114])
    assert np.abs(y[0, 0] * 255 - luma).max() <= 0.51


def test_grayscale_image_into_a_three_channel_spec(tmp_path):
    gray = np.random.default_rng(2).integers(0, 256, (10, 14), dtype=np.uint8)
    png = save_png(tmp_path / "g.png", gray)
    ok(invoke(identity_spec(tmp_path, 3), "--input", png, "--output", tmp_path / "y.npy", "--dtype", "float64"))
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (1, 3, 10, 14)
    for channel in range(3):
        np.testing.assert_array_equal(y[0, channel], gray / 255.0)


def test_sixteen_bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    raw = (np.arange(16 * 16).reshape(16, 16) * 250).astype(np.uint16)     # 0 .. 63750
    png = tmp_path / "g16.png"
    Image.fromarray(raw).save(png)
    with Image.open(png) as image:
        assert image.mode.startswith("I")
    ok(invoke(identity_spec(tmp_path, 1), "--input", png, "--output", tmp_path / "y.npy", "--dtype", "float64"))
    np.testing.assert_allclose(np.load(tmp_path / "y.npy")[0, 0], raw / 65535.0, rtol=0, atol=1e-6)
    ok(invoke(identity_spec(tmp_path, 3), "--input", png, "--output", tmp_path / "y3.npy", "--dtype", "float64"))
    y3 = np.load(tmp_path / "y3.npy")[0]
    assert y3.shape == (3, 16, 16) and np.array_equal(y3[0], y3[2])
    np.testing.assert_allclose(y3[1], raw / 65535.0, rtol=0, atol=1e-6)


def test_two_channel_spec_refuses_an_image(tmp_path):
    png = save_png(tmp_path / "c.png", rgb(8, 8))
    line = error_line(invoke(identity_spec(tmp_path, 2), "--input", png))
    assert line == ("error: the spec takes 2 input channels; an image gives 1 (grayscale), 3 (RGB) or 4 (RGBA):"
                    " use a .npy input instead\n")


def test_images_of_different_sizes_need_resize(tmp_path):
    save_png(tmp_path / "a.png", rgb(10, 12))
    save_png(tmp_path / "b.png", rgb(20, 16, seed=1))
    line = error_line(invoke(identity_spec(tmp_path, 3), "--input", tmp_path / "*.png"))
    assert line == "error: the inputs differ in size (3x10x12, 3x20x16); pass --resize HxW to give them one size\n"


def test_resize_and_the_predictions_follow_it(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    save_png(images / "a.png", rgb(10, 12))
    save_png(images / "b.png", rgb(30, 50, seed=1))
    spec = write_spec(tmp_path, "name: cp\ninput: [3, 224, 224]\nlayers:\n"
                                "  - {name: conv, type: Conv2d, out_channels: 4, kernel_size: 3, padding: 1}\n"
                                "  - {name: pool, type: MaxPool2d, kernel_size: 2}\n")
    result = ok(invoke(spec, "--input", images, "--resize", "24x40", "--format", "json"))
    data = json.loads(result.stdout)
    assert data["input"] == {"source": str(images), "shape": [2, 3, 24, 40]}
    shapes = {layer["name"]: (layer["predicted_shape"], layer["actual_shape"]) for layer in data["layers"]}
    assert shapes == {"conv": ([4, 24, 40], [4, 24, 40]), "pool": ([4, 12, 20], [4, 12, 20])}
    macs = {layer["name"]: (layer["predicted_macs"], layer["executed_macs"]) for layer in data["layers"]}
    assert macs["conv"] == (2 * 4 * 24 * 40 * 27,) * 2                    # batch 2 x outputs x C_in·k²
    table = ok(invoke(spec, "--input", images, "--resize", "24x40")).stdout
    assert f"cp: {images} → batch 2 × 3×24×40 → 4×12×20" in flat(table)
    assert re.search(r"conv\s*│ Conv2d \([a-z_0-9+]+, (model|tuned)\)\s*│ 4×24×40\s*│ 4×24×40\s*│ ✓", table)
    # the pixels are PIL's bilinear resize
    ok(invoke(identity_spec(tmp_path, 3), "--input", images, "--resize", "24x40", "--output", tmp_path / "y.npy",
              "--dtype", "float64"))
    y = np.load(tmp_path / "y.npy")
    with Image.open(images / "b.png") as image:
        resized = np.asarray(image.resize((40, 24), Image.Resampling.BILINEAR), dtype=np.float64) / 255.0
    np.testing.assert_array_equal(y[1], resized.transpose(2, 0, 1))
    assert error_line(invoke(spec, "--input", images, "--resize", "24")).startswith("error: --resize '24'")


def test_directory_and_glob_form_a_batch(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    arrays = {name: rgb(9, 11, seed=i) for i, name in enumerate(["c.png", "a.png", "b.png"])}
    for name, array in arrays.items():
        save_png(images / name, array)
    (images / "notes.txt").write_text("not an image")
    spec = identity_spec(tmp_path, 3)
    expected = np.stack([arrays[n].transpose(2, 0, 1) / 255.0 for n in ("a.png", "b.png", "c.png")])  # sorted
    for source in (images, images / "*.png"):              # the glob reaches the program unexpanded
        result = ok(invoke(spec, "--input", source, "--output", tmp_path / "y.npy", "--dtype", "float64"))
        assert "batch 3 × 3×9×11 → 3×9×11" in flat(result.stdout)
        np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert error_line(invoke(spec, "--input", empty)) == f"error: the directory {empty} holds no images\n"
    assert error_line(invoke(spec, "--input", tmp_path / "*.jpg")) == f"error: no such input: {tmp_path / '*.jpg'}\n"


def test_batch_repeats_one_input(tmp_path):
    result = ok(invoke(TINY, "--batch", 3, "--output", tmp_path / "y.npy", "--format", "json"))
    data = json.loads(result.stdout)
    assert data["batch"] == 3 and data["input"]["shape"] == [3, 3, 32, 32] and data["ok"]
    assert data["totals"]["executed_macs"] == 3 * 1_073_152
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (3, 10)
    # equal to float32 rounding, not bit for bit: a BLAS kernel may sum a row's products in an order that depends
    # on the row's place in its register block (OpenBLAS's Haswell sgemm does)
    np.testing.assert_allclose(y[1:], np.broadcast_to(y[0], (2, 10)), rtol=1e-5, atol=1e-6)
    images = tmp_path / "images"
    images.mkdir()
    save_png(images / "a.png", rgb(32, 32))
    save_png(images / "b.png", rgb(32, 32, seed=1))
    assert error_line(invoke(TINY, "--input", images, "--batch", 2)) == \
        "error: --batch repeats one input, but 2 were given\n"


def test_normalize_mean_std(tmp_path):
    spec = identity_spec(tmp_path, 3, (6, 5))
    x = default_input([3, 6, 5])

    def output(*options):
        ok(invoke(spec, "--output", tmp_path / "y.npy", "--dtype", "float64", *options))
        return np.load(tmp_path / "y.npy")[0]

    np.testing.assert_array_equal(output(), x)                              # the identity, really
    mean, std = np.array(IMAGENET_MEAN)[:, None, None], np.array(IMAGENET_STD)[:, None, None]
    assert IMAGENET_MEAN == (0.485, 0.456, 0.406) and IMAGENET_STD == (0.229, 0.224, 0.225)
    np.testing.assert_allclose(output("--normalize", "imagenet"), (x - mean) / std, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(output("--mean", "0.5", "--std", "0.25"), (x - 0.5) / 0.25, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(output("--mean", "0.1,0.2,0.3"), x - np.array([0.1, 0.2, 0.3])[:, None, None],
                               rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(output("--std", "1, 2,4"), x / np.array([1, 2, 4])[:, None, None], rtol=1e-15)
    # on an image too
    png = save_png(tmp_path / "c.png", rgb(6, 5))
    y = output("--input", png, "--normalize", "imagenet")
    np.testing.assert_allclose(y, (rgb(6, 5).transpose(2, 0, 1) / 255.0 - mean) / std, rtol=1e-15, atol=1e-15)

    assert error_line(invoke(spec, "--mean", "0.1,0.2")) == "error: --mean needs 1 or 3 values, got 2\n"
    assert error_line(invoke(spec, "--std", "0")) == "error: --std values must not be 0\n"
    assert error_line(invoke(spec, "--mean", "a,b")) == \
        "error: --mean 'a,b' must be numbers separated by commas, e.g. 0.5,0.5,0.5\n"
    assert error_line(invoke(spec, "--normalize", "cifar")) == (
        "error: Invalid value for '--normalize': 'cifar' is not one of 'imagenet' ('convcalc run -h' lists the"
        " options)\n")


# --------------------------------------------------------------------------- --topk and JSON

def test_topk_matches_softmax_of_the_output(tmp_path):
    k = 4
    result = ok(invoke(TINY, "--batch", 2, "--mean", "0.3", "--topk", k, "--output", tmp_path / "y.npy"))
    logits = np.load(tmp_path / "y.npy").astype(np.float64)
    probabilities = softmax(logits)
    lines = [line for line in result.stdout.splitlines() if line.startswith("top-")]
    assert len(lines) == 2
    for sample, line in enumerate(lines):
        prefix = f"top-{k} of sample {sample}: "
        assert line.startswith(prefix)
        pairs = re.findall(r"(\d+) \((\d\.\d{3})\)", line[len(prefix):])
        assert len(pairs) == k
        indices = [int(i) for i, _ in pairs]
        assert indices == list(np.argsort(-probabilities[sample], kind="stable")[:k])
        shown = np.array([float(p) for _, p in pairs])
        assert np.abs(shown - probabilities[sample, indices]).max() <= 5e-4 + 1e-12
        assert np.all(np.diff(shown) <= 0)
        assert probabilities[sample, indices].sum() <= 1.0

    data = json.loads(ok(invoke(TINY, "--batch", 2, "--mean", "0.3", "--topk", k, "--format", "json")).stdout)
    assert len(data["topk"]) == 2
    for sample, best in enumerate(data["topk"]):
        assert [set(b) for b in best] == [{"index", "probability"}] * k
        indices = [b["index"] for b in best]
        assert indices == list(np.argsort(-probabilities[sample], kind="stable")[:k])
        np.testing.assert_allclose([b["probability"] for b in best], probabilities[sample, indices], rtol=1e-12)
        assert sum(b["probability"] for b in best) <= 1.0
    # k larger than the number of classes: every class, probabilities summing to 1
    data = json.loads(ok(invoke(TINY, "--topk", 50, "--format", "json")).stdout)
    assert len(data["topk"][0]) == 10
    assert abs(sum(b["probability"] for b in data["topk"][0]) - 1.0) < 1e-9


def test_run_json_schema():
    data = json.loads(ok(invoke(TINY, "--format", "json", "--topk", 2)).stdout)
    assert data["schema_version"] == 1
    assert set(data) >= {"schema_version", "name", "input", "batch", "output_shape", "ok", "first_nonfinite",
                         "seconds", "layers", "totals", "topk"}
    assert data["name"] == "tiny" and data["ok"] is True and data["batch"] == 1
    assert data["output_shape"] == [1, 10]
    assert data["input"] == {"source": "built-in test image", "shape": [1, 3, 32, 32]}
    assert len(data["layers"]) == 7
    for layer in data["layers"]:
        assert set(layer) >= {"name", "type", "predicted_shape", "actual_shape", "shape_ok", "predicted_macs",
                              "executed_macs", "macs_ok", "finite", "folded", "transform", "transform_macs", "seconds",
                              "algorithm", "chosen_by"}
        assert all(isinstance(v, int) for v in layer["predicted_shape"] + layer["actual_shape"])
        assert isinstance(layer["predicted_macs"], int) and isinstance(layer["executed_macs"], int)
        assert layer["shape_ok"] is True and layer["macs_ok"] is True and layer["finite"] is True
    conv = data["layers"][0]
    assert (conv["name"], conv["type"], conv["predicted_shape"], conv["predicted_macs"]) == \
        ("conv2d_1", "Conv2d", [16, 32, 32], 16 * 32 * 32 * 27)
    assert data["totals"] == {"predicted_macs": 1_073_152, "executed_macs": 1_073_152}
    assert len(data["topk"]) == 1 and len(data["topk"][0]) == 2
    assert "topk" not in json.loads(ok(invoke(TINY, "--format", "json")).stdout)


def test_folded_batchnorm_is_marked(tmp_path):
    data = json.loads(ok(invoke(SPECS / "resnet18.yaml", "--input", _small_npy(tmp_path), "--format",
                                "json")).stdout)
    folded = {layer["name"] for layer in data["layers"] if layer["folded"]}
    assert "bn1" in folded and "layer2.0.downsample.1" in folded
    assert all(name.split(".")[-1].startswith("bn") or name.endswith("downsample.1") for name in folded)


def test_table_names_the_transform_a_conv_ran_in(tmp_path):
    """The text table marks a conv run as Winograd or FFT, as JSON's 'transform' field does."""
    spec = tmp_path / "algorithms.yaml"
    spec.write_text("name: algorithms\ninput: [4, 12, 12]\nlayers:\n"
                    "  - {name: w, type: Conv2d, out_channels: 4, kernel_size: 3, padding: 1, algorithm: winograd}\n"
                    "  - {name: f, type: Conv2d, out_channels: 4, kernel_size: 5, padding: 2, algorithm: fft}\n"
                    "  - {name: d, type: Conv2d, out_channels: 4, kernel_size: 3, padding: 1, algorithm: direct}\n")
    text = ok(invoke(spec, "--no-tune")).stdout
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in text.splitlines()
            if line.startswith("│") and line.split("│")[1].strip() in ("w", "f", "d")}
    # the spec chose w's and f's algorithm; d's (4 channels x 3 taps: runs of 12 floats) is the cost model's
    # transposed patches (`ConvNd.model_algorithm`, TRANSPOSED_PATCHES_MAX_RUN)
    assert rows == {"w": "Conv2d (winograd, spec)", "f": "Conv2d (fft, spec)", "d": "Conv2d (im2col_t, model)"}
    data = json.loads(ok(invoke(spec, "--format", "json", "--no-tune")).stdout)
    assert {layer["name"]: layer["transform"] for layer in data["layers"]} == {"w": "winograd", "f": "fft", "d": None}
    assert {layer["name"]: (layer["algorithm"], layer["chosen_by"]) for layer in data["layers"]} == \
        {"w": ("winograd", "spec"), "f": ("fft", "spec"), "d": ("im2col_t", "model")}


def _small_npy(tmp_path: Path) -> Path:
    np.save(tmp_path / "small.npy", default_input([3, 32, 32]))
    return tmp_path / "small.npy"


# --------------------------------------------------------------------------- exit code 1

def test_wrong_shape_fails_with_exit_1(monkeypatch, tmp_path):
    linear = lookup("Linear")
    original = linear.forward
    monkeypatch.setattr(linear, "forward", lambda self, inputs, prepared, counter:
                        original(self, inputs, prepared, counter)[:, :-1])
    result = ok(invoke(TINY), 1)
    row = next(line for line in result.stdout.splitlines() if line.startswith("│ linear_1"))
    assert re.search(r"│ 10\s*│ 9\s*│ ✗", row)
    assert "shapes 6/7 ✗   MACs 7/7 ✓" in result.stdout
    assert result.stdout.rstrip().endswith("PREDICTIONS FAILED")
    assert "tiny: built-in test image → batch 1 × 3×32×32 → 9" in result.stdout
    data = json.loads(ok(invoke(TINY, "--format", "json"), 1).stdout)
    assert data["ok"] is False
    bad = [layer for layer in data["layers"] if not layer["shape_ok"]]
    assert [(b["name"], b["predicted_shape"], b["actual_shape"]) for b in bad] == [("linear_1", [10], [9])]
    assert all(layer["macs_ok"] for layer in data["layers"])


def test_wrong_macs_fail_with_exit_1(monkeypatch):
    conv = lookup("Conv2d")
    original = conv.forward

    def forward(self, inputs, prepared, counter):
        counter.add(5)
        return original(self, inputs, prepared, counter)

    monkeypatch.setattr(conv, "forward", forward)
    result = ok(invoke(TINY), 1)
    assert "shapes 7/7 ✓   MACs 5/7 ✗" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.startswith("│ c2 "))
    assert re.search(r"589,824 │\s*589,829 │ ✗", row)


def test_nan_is_flagged_with_exit_1(monkeypatch):
    relu = lookup("ReLU")
    monkeypatch.setattr(relu, "apply", lambda self, x, prepared: x * np.nan)
    monkeypatch.setattr(relu, "apply_inplace", lambda self, x, prepared: x * np.nan)   # the in-place route too
    result = ok(invoke(TINY), 1)
    assert "first NaN/Inf at layer 'relu_1'" in result.stdout
    data = json.loads(ok(invoke(TINY, "--format", "json"), 1).stdout)
    assert data["first_nonfinite"] == "relu_1" and data["ok"] is False
    assert [layer["finite"] for layer in data["layers"]] == [True] + [False] * 6


# ----------------------------------------------------------------------------- option edge cases

def test_resize_applies_to_the_built_in_image_and_not_to_npy(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(SPECS / "tiny.yaml"), "--resize", "40x48", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["input"]["shape"] == [1, 3, 40, 48]
    np.save(tmp_path / "x.npy", np.zeros((3, 32, 32)))
    result = runner.invoke(app, ["run", str(SPECS / "tiny.yaml"), "--input", str(tmp_path / "x.npy"),
                                 "--resize", "40x48"])
    assert result.exit_code == 2
    assert result.stderr == "error: --resize applies to images; a .npy input keeps its own size\n"


def test_imagenet_normalisation_needs_rgb(tmp_path):
    spec = tmp_path / "gray.yaml"
    spec.write_text("input: [1, 8, 8]\nlayers: [{type: Identity}]\n")
    result = CliRunner().invoke(app, ["run", str(spec), "--normalize", "imagenet"])
    assert result.exit_code == 2
    assert "--normalize imagenet needs 3 input channels (RGB), the spec takes 1" in result.stderr


def test_an_empty_state_dict_reports_every_missing_key():
    import convcalc
    from convcalc.execution.network import Network
    from convcalc.execution.weights import WeightsError

    graph = convcalc.build_graph(convcalc.load_spec(SPECS / "tiny.yaml"))
    with pytest.raises(WeightsError, match=r"missing 6: conv2d_1.weight, conv2d_1.bias, c2.weight"):
        Network(graph, state={})


# --------------------------------------------------------------------------- from review: bad inputs, odd options

def _spec(tmp_path, text: str, name: str = "net.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


CONV = "input: [3, 8, 8]\nlayers:\n  - {name: c, type: Conv2d, out_channels: 4, kernel_size: 3}\n"


def test_bad_inputs_and_options_are_one_line_errors(tmp_path):
    spec = _spec(tmp_path, CONV)
    np.savez(tmp_path / "w.npz", **{"c.weight": np.zeros((4, 3, 3, 3)), "c.bias": np.zeros(4)})
    whole = (tmp_path / "w.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(whole[:300])
    flipped = bytearray(whole)
    flipped[200] ^= 0xFF                                    # inside c.weight's data: a CRC error on reading it
    (tmp_path / "crc.npz").write_bytes(bytes(flipped))
    np.savez(tmp_path / "complex.npz", **{"c.weight": np.zeros((4, 3, 3, 3), complex), "c.bias": np.zeros(4)})
    np.save(tmp_path / "complex.npy", np.zeros((3, 8, 8), complex))
    with_nan = np.random.default_rng(0).random((3, 8, 8))
    with_nan[0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", with_nan)
    assert error_line(invoke(spec, "--weights", tmp_path / "truncated.npz")).startswith(
        f"error: cannot read weights file {tmp_path / 'truncated.npz'}: File is not a zip file")
    assert "Bad CRC-32" in error_line(invoke(spec, "--weights", tmp_path / "crc.npz"))
    assert error_line(invoke(spec, "--weights", tmp_path / "complex.npz")) == \
        "error: weights: c.weight holds complex128 values, not real numbers\n"
    assert error_line(invoke(spec, "--input", tmp_path / "complex.npy")).endswith(
        "holds complex128 values, not real numbers\n")
    assert error_line(invoke(spec, "--input", tmp_path / "nan.npy")) == (
        "error: the input holds 1 NaN/Inf values; the run checks that no layer produces them, so it needs a finite"
        " input\n")
    assert error_line(invoke(spec, "--input", "")) == \
        "error: the input is an empty path; give a file, a directory or a glob pattern\n"
    assert error_line(invoke(spec, "--resize", "0x8")) == \
        "error: --resize '0x8' must be HxW (two positive integers), e.g. 224x224\n"
    assert error_line(invoke(spec, "--topk", 3)) == (
        "error: --topk ranks the classes of a classifier output [K] (or [K, 1, 1]); this network's output is"
        " [4, 6, 6]\n")
    assert invoke(spec, "--seed", -1).exit_code == 2                     # typer's own range message
    Image.new("1", (14000, 13000)).save(tmp_path / "bomb.png")           # past Pillow's decompression-bomb limit
    assert "exceeds limit" in error_line(invoke(spec, "--input", tmp_path / "bomb.png"))


def test_an_empty_npy_batch_runs(tmp_path):
    spec = _spec(tmp_path, CONV)
    np.save(tmp_path / "empty.npy", np.zeros((0, 3, 8, 8)))
    data = json.loads(ok(invoke(spec, "--input", tmp_path / "empty.npy", "--format", "json")).stdout)
    assert data["batch"] == 0 and data["output_shape"] == [0, 4, 6, 6] and data["ok"]


def test_maps_of_a_layer_whose_name_is_no_file_name(tmp_path):
    spec = _spec(tmp_path, "input: [3, 8, 8]\nlayers:\n  - {name: \"a/b\", type: Conv2d, out_channels: 2,"
                           " kernel_size: 3}\n")
    ok(invoke(spec, "--save-maps", tmp_path / "maps"))
    assert [p.name for p in (tmp_path / "maps").iterdir()] == ["000_a_b.png"]


def test_topk_of_a_nan_output_is_valid_json(tmp_path):
    """A NaN logit (from the weights here) gives a NaN probability: JSON has no NaN, so it is null."""
    spec = _spec(tmp_path, "input: [3, 8, 8]\nlayers:\n  - {type: Flatten}\n  - {name: fc, type: Linear,"
                           " out_features: 4}\n")
    weight = np.zeros((4, 192))
    weight[1, 0] = np.nan
    np.savez(tmp_path / "w.npz", **{"fc.weight": weight, "fc.bias": np.arange(4.0)})
    result = ok(invoke(spec, "--weights", tmp_path / "w.npz", "--topk", 4, "--format", "json"), 1)
    data = json.loads(result.stdout, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert {b["index"]: b["probability"] for b in data["topk"][0]}[1] is None
    text = ok(invoke(spec, "--weights", tmp_path / "w.npz", "--topk", 9), 1).stdout
    assert "top-4 of sample 0:" in text and "nan" in text                # at most the classes there are
