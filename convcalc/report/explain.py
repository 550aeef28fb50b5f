"""`convcalc explain`: a conv's matrix C (`convcalc.proof.toeplitz.ConvMatrix`) as text, JSON and a PNG picture.

The text shows C with one block of columns per input row (per channel and leading axes: `x[c,h,:]`) and one block
of rows per output row, so the doubly block-Toeplitz structure shows; an entry is the weight that multiplies the
input unit of its column for the output unit of its row (`w01`: kernel row 0, column 1; with several kernels `a01`,
`b01`, ... named in a legend) or its number, zeros as `·`. `matrix_text_width` tells the CLI how wide that is.
"""

from __future__ import annotations

import string
from typing import Any, Sequence

import numpy as np
from rich.cells import cell_len
from rich.console import Group
from rich.text import Text

from ..algebra.shapes import prod
from ..proof.toeplitz import Check, ConvMatrix
from .fit import hanging
from .drawing import colormap

ZERO = "·"
VECTOR_SHOWN = 24          # entries of x, y, C·x printed before the rest is elided


# --------------------------------------------------------------------------- entries and labels

def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def _index_text(index: Sequence[int], sizes: Sequence[int]) -> str:
    """Kernel tap indices as digits (`01`) when every extent is at most 10, else comma-separated (`0,12`)."""
    return "".join(map(str, index)) if all(n <= 10 for n in sizes) else ",".join(map(str, index))


def kernel_names(study: ConvMatrix) -> tuple[str, ...] | None:
    """The symbol of each kernel (weight[a, b] in PyTorch's order): 'w' alone, else 'a', 'b', ...; None past 26."""
    kernels = prod(study.weight.shape[:2])
    if kernels == 1:
        return ("w",)
    return tuple(string.ascii_lowercase[:kernels]) if kernels <= 26 else None


def tap_symbol(study: ConvMatrix, flat: int, names: Sequence[str]) -> str:
    """The symbol of weight element ``flat`` (its flat index in PyTorch's weight layout)."""
    shape = study.weight.shape
    index = np.unravel_index(flat, shape)
    kernel = int(index[0]) * shape[1] + int(index[1])
    return names[kernel] + _index_text([int(i) for i in index[2:]], shape[2:])


def entries(study: ConvMatrix, numbers: bool) -> list[list[str]]:
    """Every entry of the matrix as printed: a weight symbol (or a sum of them) or a number; zeros as '·'."""
    names = kernel_names(study)
    symbolic = not numbers and study.sources is not None and names is not None
    rows = []
    for r, row in enumerate(study.matrix):
        texts = []
        for c, value in enumerate(row):
            if symbolic and (r, c) in study.sources:
                texts.append("+".join(tap_symbol(study, flat, names) for flat in study.sources[(r, c)]))
            else:
                texts.append(ZERO if value == 0 else _number(value))
        rows.append(texts)
    return rows


def unit_label(letter: str, shape: Sequence[int], flat: int) -> str:
    """`x[1,2]` for unit ``flat`` of a [C, *S] tensor unrolled channels first (the channel left out when C is 1)."""
    index = [int(i) for i in np.unravel_index(flat, shape)]
    return f"{letter}[{','.join(map(str, index[1:] if shape[0] == 1 else index))}]"


def _block_label(letter: str, shape: Sequence[int], flat: int) -> str:
    index = [int(i) for i in np.unravel_index(flat, shape)][:-1]
    shown = index[1:] if shape[0] == 1 else index
    return f"{letter}[{','.join([*map(str, shown), ':'])}]"


def matrix_lines(study: ConvMatrix, numbers: bool = False, width: int | None = None) -> list[str]:
    """The matrix as lines of text: a header naming each block of input units, then the rows. ``width``: the
    blocks of columns that fit in it side by side, then the next blocks under them (a blank line between); a block
    wider than ``width`` alone is still printed whole."""
    in_shape, out_shape = (study.in_shape, study.out_shape)
    cells = entries(study, numbers)
    last_in, last_out = in_shape[-1], out_shape[-1]
    entry = max([len(str(last_in - 1))] + [len(text) for row in cells for text in row])
    labels = [unit_label("y", out_shape, r) for r in range(len(cells))]
    left = max(len(label) for label in labels)
    blocks = prod(in_shape) // last_in
    block_width = last_in * (entry + 1) + 1
    per_part = blocks if width is None else max(1, (width - left - 1) // (block_width + 1))
    lines: list[str] = []
    for first in range(0, blocks, per_part):
        shown = range(first, min(blocks, first + per_part))
        if lines:
            lines.append("")
        head = [" " * left + " ", " " * left + " ", "─" * left + "─"]
        for block in shown:
            head[0] += "│" + (" " + _block_label("x", in_shape, block * last_in)).ljust(block_width)[:block_width]
            head[1] += "│" + "".join(str(i).rjust(entry + 1) for i in range(last_in)) + " "
            head[2] += "┼" + "─" * block_width
        lines += head
        for r, row in enumerate(cells):
            if r and r % last_out == 0:
                lines.append(head[2])
            text = labels[r].ljust(left) + " "
            for block in shown:
                text += "│" + "".join(t.rjust(entry + 1) for t in row[block * last_in:(block + 1) * last_in]) + " "
            lines.append(text.rstrip())
    return [line.rstrip() for line in lines]


def matrix_text_width(study: ConvMatrix, numbers: bool = False) -> int:
    return max(len(line) for line in matrix_lines(study, numbers))


# --------------------------------------------------------------------------- the text report

def _vector(values: np.ndarray) -> str:
    flat = [_number(v) for v in np.ravel(values)]
    shown = flat if len(flat) <= VECTOR_SHOWN else flat[:VECTOR_SHOWN] + [f"… ({len(flat)} in all)"]
    return "[" + ", ".join(shown) + "]"


def _kernel_lines(study: ConvMatrix, weight: np.ndarray, numbers: bool, flipped: bool = False) -> list[str]:
    """Each kernel's taps, one kernel row a line (1-D: one line; 3-D: slices one after another)."""
    names = kernel_names(study)
    shape = weight.shape
    lines = []
    for kernel in range(prod(shape[:2])):
        a, b = divmod(kernel, shape[1])
        taps = weight[a, b]
        if names is not None and len(names) > 1:
            lines.append(f"  {names[kernel]} = weight[{a}, {b}]:")
        rows = taps.reshape(-1, shape[-1])
        for r, row in enumerate(rows):
            cells = []
            for c, value in enumerate(row):
                index = np.unravel_index(r * shape[-1] + c, shape[2:])
                source = tuple(k - 1 - i for k, i in zip(shape[2:], index)) if flipped else index
                symbol = (names[kernel] + _index_text([int(i) for i in source], shape[2:])) if names else ""
                cells.append(_number(value) if numbers or not symbol else f"{symbol}={_number(value)}")
            lines.append("    " + "  ".join(cell.rjust(3) for cell in cells))
    return lines


def _para(text: str, width: int | None, indent: int | None = None, style: str = "") -> Text:
    """A paragraph wrapped between words into ``width`` columns, the lines after the first indented as its own
    leading blanks (or ``indent``), so that a sentence never breaks into an unindented stub."""
    if indent is None:
        indent = len(text) - len(text.lstrip(" "))
    return Text(hanging(text, width, indent), style=style)


def _check_line(check: Check, width: int | None = None) -> Text:
    if check.ok is None:
        line = _para(f"  – {check.statement}: {check.note}", width, 4)
        line.stylize("dim", 2, 3)
        return line
    mark, style = ("✓", "green") if check.ok else ("✗", "bold red")
    body = hanging(f"  {mark} {check.statement}", width, 4)
    tail = f"max |difference| = {_number(check.max_diff)}"       # kept on one line
    last = body.split("\n")[-1]
    if width is None or cell_len(last) + 3 + len(tail) <= width:
        body += "   " + tail
    else:
        body += "\n    " + tail
    line = Text(body)
    line.stylize(style, 2, 3)
    line.stylize("dim", len(body) - len(tail))
    return line


def _arguments_text(study: ConvMatrix) -> str:
    parts = []
    for name, value in study.arguments.items():
        if isinstance(value, tuple) and not (value and isinstance(value[0], tuple)) and len(set(value)) == 1:
            value = value[0]
        parts.append(f"{name}={list(value) if isinstance(value, tuple) else value}")
    return ", ".join(parts)


def explain_text(study: ConvMatrix, numbers: bool = False, show_matrix: bool = True,
                 width: int | None = None, prose: int | None = None) -> Group:
    """The whole report: the layer, its kernel, C, the vectors, the checks and the true-convolution relation.
    ``width``: the matrix in blocks of columns that fit it, and the prose wrapped into it (else into ``prose``)."""
    matrix_width, width = width, width if width is not None else prose
    transposed = study.kind.startswith("convtranspose")
    name = "Cᵀ" if transposed else "C"
    n_out, n_in = study.matrix.shape
    origin = "given" if study.weight_given else f"seeded integers 1..9, seed {study.seed}"
    out = [Text(f"{study.layer_type}({_arguments_text(study)}): input {'×'.join(map(str, study.in_shape))}"
                f" → output {'×'.join(map(str, study.out_shape))}", style="bold"),
           Text(f"kernel ({origin}; weight [{', '.join(map(str, study.weight.shape))}]):")]
    out += [Text(line) for line in _kernel_lines(study, study.weight, numbers)]
    nonzero = int(np.count_nonzero(study.matrix))
    out += [_para(f"{name}: {n_out} × {n_in} ({nonzero} of {study.matrix.size} entries nonzero): row i is output unit"
                  f" y_i, column j input unit x_j, both unrolled channels first (x.flatten()); column j is the"
                  f" {study.layer_type} unit's forward of the one-hot input e_j.", width)]
    if transposed:
        out.append(_para("It is the transpose of the matrix C of the conv with the same arguments (from this output"
                         " back to this input).", width))
    if show_matrix:
        lines = matrix_lines(study, numbers, matrix_width)
        widest = max(len(line) for line in lines)
        if matrix_width is not None and widest > matrix_width:
            out.append(_para(f"(C is {widest} columns wide even one block of columns at a time, wider than {width}:"
                             " --wide prints it whole, --png FILE draws it)", width, 1, style="dim"))
        else:
            if matrix_width is not None and widest < matrix_text_width(study, numbers):
                out.append(_para(f"(C in blocks of columns that fit {width} columns; --wide prints it side by"
                                 " side)", width, 1, style="dim"))
            out += [Text(line, no_wrap=True, overflow="ignore") for line in lines]
    else:
        out.append(_para("(the matrix is too large to print here: --png FILE draws it, --format json lists it)",
                         width, 1, style="dim"))
    vectors = [("x (seeded integers)", study.x), (f"{study.layer_type}(x)", study.y),
               (f"{name}·x", study.matrix @ study.x.ravel())]
    if study.transposed_output is not None:
        vectors += [("y (seeded integers)", study.cotangent),
                    (f"ConvTranspose{len(study.in_shape) - 1}d(y)", study.transposed_output),
                    ("Cᵀ·y", study.matrix.T @ study.cotangent.ravel())]
    pad = max(len(label) for label, _ in vectors)
    out += [_para(f"{label.ljust(pad)} = {_vector(values)}", width, pad + 3) for label, values in vectors]
    out += [
            Text("checks (both sides computed by convcalc's layer units):")]
    out += [_check_line(check, width) for check in study.checks]
    if study.true_convolution is not None:
        out += _true_convolution_lines(study, numbers, width)
    elif transposed:
        out.append(_para("A transposed conv is the input gradient of the conv; as a direct conv, it correlates the"
                         " zero-stuffed input with the flipped kernel, in and out channels swapped.", width))
    return Group(*out)


def _true_convolution_lines(study: ConvMatrix, numbers: bool, width: int | None = None) -> list[Text]:
    true = study.true_convolution
    dims = len(study.in_shape) - 1
    flip = "w[" + ", ".join(["::-1"] * dims) + "]"
    scipy = {1: "numpy.convolve(x, w, 'valid')", 2: "scipy.signal.convolve2d(x, w, mode='valid')"}.get(
        dims, "scipy.signal.convolve(x, w, mode='valid')")
    correlate = {1: "numpy.correlate(x, w, 'valid')", 2: "scipy.signal.correlate2d(x, w, mode='valid')"}.get(
        dims, "scipy.signal.correlate(x, w, mode='valid')")
    lines = [Text("convolution vs cross-correlation:", style="bold"),
             _para(f"  {study.layer_type} cross-correlates: y[i] = Σ_m w[m]·x[i·s − p + m·d]. A true convolution"
                   " flips the kernel:", width),
             _para(f"  (w ∗ x)[i] = Σ_m w[k−1−m]·x[i·s − p + m·d], the cross-correlation with flip(w) = {flip}:",
                   width)]
    lines += [Text(line) for line in _kernel_lines(study, true.flipped, numbers, flipped=True)]
    lines += [_para(f"  true convolution of x (flip_kernel: true) = {_vector(true.true_conv)}", width, 46),
              _para(f"  cross-correlation of x with flip(w)       = {_vector(true.correlated_flipped)}", width, 46),
              _check_line(true.check, width),
              *(_para(line, width, 2) for line in _scipy_lines(study, scipy, correlate))]
    return lines


def _scipy_lines(study: ConvMatrix, scipy: str, correlate: str) -> list[str]:
    """How NumPy's or SciPy's 'valid' convolve and correlate give the example shown: as they are with stride 1,
    padding 0, dilation 1 and one channel; else on the padded input, summed over input channels, subsampled by
    the stride, with the dilated kernel, as this example needs."""
    args = study.arguments
    stride, padding, dilation = (args.get(k) for k in ("stride", "padding", "dilation"))
    channels_in, channels_out, groups = study.in_shape[0], study.out_shape[0], args.get("groups", 1)

    def ones(value) -> bool:
        return isinstance(value, tuple) and all(v == 1 for v in value)

    unpadded = isinstance(padding, tuple) and all(v == 0 for v in padding)
    if ones(stride) and ones(dilation) and unpadded and channels_in == channels_out == 1:
        return [f"  With stride 1, padding 0, dilation 1 and one channel, {scipy} is this true convolution, and"
                f" {correlate} the cross-correlation {study.layer_type} computes."]

    def one(value):
        return value[0] if isinstance(value, tuple) and len(set(value)) == 1 else list(value)

    x = "x[c]" if channels_in > 1 else "x"
    if isinstance(padding, str):
        x = f"{x} padded as padding='{padding}' does"
    elif not unpadded:
        x = f"numpy.pad({x}, {one(padding)})"
    w = "w[o, c]" if channels_out > 1 else "w[0, c]" if channels_in > 1 else "w"
    if not ones(dilation):
        w = f"{w} dilated ({one(dilation)} − 1 zeros between taps)"
    step = "" if ones(stride) else "[" + ", ".join(f"::{s}" for s in stride) + "]"
    total = "Σ_c " if channels_in > 1 else ""
    which = "y[o] = " if channels_out > 1 else "y = "
    group = f" (c over output channel o's group of {channels_in // groups})" if groups > 1 else ""
    shown = lambda name: name.replace("(x, w", f"({x}, {w}", 1) + step   # noqa: E731
    return [(f"  Here (stride {one(stride)}, padding {padding if isinstance(padding, str) else one(padding)},"
                 f" dilation {one(dilation)}, {channels_in} input and {channels_out} output channel"
                 f"{'s' if channels_out > 1 else ''}): {which}{total}{shown(correlate)} is the cross-correlation"
                 f" {study.layer_type} computes{group}, and {total}{shown(scipy)} its true convolution.")]


# --------------------------------------------------------------------------- JSON

def _plain(values: np.ndarray) -> Any:
    """Nested lists, integral values as ints."""
    array = np.asarray(values)
    if array.size and np.all(np.mod(array, 1) == 0) and np.max(np.abs(array)) < 2 ** 53:
        return array.astype(np.int64).tolist()
    return array.tolist()


def _check_json(check: Check) -> dict[str, Any]:
    return {"name": check.name, "statement": check.statement, "max_abs_diff": check.max_diff, "ok": check.ok,
            "note": check.note or None}


def explain_json(study: ConvMatrix) -> dict[str, Any]:
    """The report as data (``schema_version`` 1): the matrix as nested lists (rows: output units), the checks."""
    true = study.true_convolution
    arguments = {name: (list(map(list, value)) if value and isinstance(value[0], tuple) else list(value))
                 if isinstance(value, tuple) else value for name, value in study.arguments.items()}
    return {
        "schema_version": 1,
        "kind": study.kind,
        "layer_type": study.layer_type,
        "arguments": arguments,
        "input_shape": list(study.in_shape),
        "output_shape": list(study.out_shape),
        "weight": _plain(study.weight),
        "weight_source": "given" if study.weight_given else "seeded",
        "seed": study.seed,
        "matrix": {"name": "C^T" if study.kind.startswith("convtranspose") else "C",
                   "rows": study.matrix.shape[0], "columns": study.matrix.shape[1],
                   "nonzeros": int(np.count_nonzero(study.matrix)),
                   "order": "rows: output units, columns: input units, both unrolled channels first (.flatten())",
                   "values": _plain(study.matrix)},
        "x": _plain(study.x.ravel()),
        "y": _plain(study.y.ravel()),
        "cotangent": _plain(study.cotangent.ravel()),
        "transposed_of_cotangent": None if study.transposed_output is None else _plain(study.transposed_output.ravel()),
        "checks": [_check_json(check) for check in study.checks],
        "true_convolution": None if true is None else {
            "flipped_weight": _plain(true.flipped), "true_convolution": _plain(true.true_conv.ravel()),
            "cross_correlation_with_flipped": _plain(true.correlated_flipped.ravel()),
            "check": _check_json(true.check)},
        "ok": study.ok,
    }


# --------------------------------------------------------------------------- the PNG picture

TITLE_HEIGHT = 24
CAPTION_HEIGHT = 24
GAP = 24


def _panel(matrix: np.ndarray, taps: np.ndarray | None, cell: int, row_blocks: tuple[int, int],
           col_blocks: tuple[int, int]) -> np.ndarray:
    """One matrix as cells of ``cell`` pixels: zeros white, nonzeros coloured by their kernel tap (dark without
    ``taps``), a light grid between cells (cells of 4 pixels or more), grey lines between blocks (a map's rows) and
    black ones between channels: ``row_blocks``/``col_blocks`` = (units per block, units per channel)."""
    rows, cols = matrix.shape
    if taps is None:
        colours = np.where((matrix != 0)[..., None], np.uint8(48), np.uint8(255)).astype(np.uint8)
    else:
        scaled = 0.15 + 0.7 * taps / max(1, int(taps.max()))
        colours = np.where((taps >= 0)[..., None], colormap(scaled), np.uint8(255)).astype(np.uint8)
    picture = np.full((rows * cell + 1, cols * cell + 1, 3), 255, dtype=np.uint8)
    picture[:rows * cell, :cols * cell] = np.repeat(np.repeat(colours, cell, axis=0), cell, axis=1)
    if cell >= 4:
        picture[::cell, :] = np.minimum(picture[::cell, :], 210)
        picture[:, ::cell] = np.minimum(picture[:, ::cell], 210)
    picture[::cell * row_blocks[0], :] = 90
    picture[:, ::cell * col_blocks[0]] = 90
    thick = 2 if cell >= 4 else 1
    for offset in range(thick):
        picture[offset::cell * row_blocks[1], :] = 0
        picture[:, offset::cell * col_blocks[1]] = 0
    picture[-1, :] = picture[:, -1] = 0
    return picture


def _tap_grid(study: ConvMatrix) -> np.ndarray | None:
    """Per entry, the spatial kernel tap of its (first) weight, -1 for zeros; None without `sources`."""
    if study.sources is None:
        return None
    grid = np.full(study.matrix.shape, -1, dtype=np.int64)
    taps = prod(study.weight.shape[2:])
    for (r, c), flats in study.sources.items():
        grid[r, c] = flats[0] % taps
    return grid


def matrix_picture(study: ConvMatrix, transpose: bool = False) -> np.ndarray:
    """The sparsity pattern of the matrix (and, with ``transpose``, of its transpose beside it) as RGB uint8, each
    entry a square of cells scaled so that the longer side is about 512 pixels, titled, with a caption saying what
    the colours and lines mean."""
    from PIL import Image, ImageDraw, ImageFont

    rows, cols = study.matrix.shape
    cell = max(1, min(24, -(-512 // max(rows, cols))))
    taps = _tap_grid(study)
    outputs = (study.out_shape[-1], prod(study.out_shape[1:]))
    inputs = (study.in_shape[-1], prod(study.in_shape[1:]))
    name, other = ("C^T", "C") if study.kind.startswith("convtranspose") else ("C", "C^T")
    panels = [(f"{name}: {rows} x {cols} (rows: outputs, columns: inputs)",
               _panel(study.matrix, taps, cell, outputs, inputs))]
    if transpose:
        panels.append((f"{other} = transpose: {cols} x {rows}",
                       _panel(study.matrix.T, None if taps is None else taps.T, cell, inputs, outputs)))
    font = ImageFont.load_default(size=14)
    widths = [max(panel.shape[1], int(font.getlength(title)) + 4) for title, panel in panels]
    caption = _caption(study, taps is not None)
    panels_height = max(panel.shape[0] for _, panel in panels)
    height = TITLE_HEIGHT + panels_height + CAPTION_HEIGHT
    width = max(sum(widths) + GAP * (len(panels) + 1), int(font.getlength(caption)) + 2 * GAP)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    left = GAP
    for (title, panel), width in zip(panels, widths):
        draw.text((left, 4), title, fill=(0, 0, 0), font=font)
        canvas.paste(Image.fromarray(panel), (left, TITLE_HEIGHT))
        left += width + GAP
    draw.text((GAP, TITLE_HEIGHT + panels_height + 5), caption, fill=(90, 90, 90), font=font)
    return np.asarray(canvas)


def _caption(study: ConvMatrix, coloured: bool) -> str:
    lines = "grey lines: rows of a map; black: channels"
    if not coloured:
        return f"dark: nonzero; white: 0; {lines}"
    names = kernel_names(study) or ("w",)
    taps = study.weight.shape[2:]
    first = names[0] + _index_text([0] * len(taps), taps)
    last = names[0] + _index_text([k - 1 for k in taps], taps)
    every = ", alike in every kernel" if len(names) > 1 else ""
    return f"colour: the kernel tap, {first} (dark) to {last} (light){every}; white: 0; {lines}"
