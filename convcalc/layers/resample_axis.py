"""`ResampleAxis`: how `Upsample` (F.interpolate) resamples one spatial axis of length ``i`` to ``o``, with ATen's
CPU index and weight rules (``UpSample.h``, ``UpSampleKernel.cpp``, ``UpSampleBicubic2d.cpp``, adaptive pooling),
its vector-Jacobian product, and what its units read (the receptive field, built in ``resample_reads``).

* coordinate scale ``c``: ``1/scale_factor`` when a scale_factor is given and ``recompute_scale_factor`` is not
  true, else ``i/o``; with ``align_corners`` (linear and cubic modes) ``(i-1)/(o-1)`` (0 when o = 1);
* 'nearest': ``src = min(floor(u * c), i-1)`` and 'nearest-exact': ``src = min(floor((u + 0.5) * c), i-1)``, both
  with ``c`` in float32 as ATen computes it. ATen's 2-D 'nearest' kernel alone copies an axis with o = i and takes
  u // 2 where o = 2i, whatever the scale factor;
* linear modes: ``x = c*(u + 0.5) - 0.5`` clamped at 0 (align_corners=False) or ``x = c*u``; taps
  ``i0 = min(floor(x), i-1)``, ``i1 = i0 + (i0 < i-1)``, weight ``λ = clamp(x - i0, 0, 1)``. An axis whose output
  length equals its input length is copied (ATen's shortcut, whatever the scale factor);
* 'bicubic' (Keys' cubic convolution with A = -0.75, as OpenCV): ``x`` as the linear modes' but never clamped,
  ``i0 = min(floor(x), i-1)``, ``t = clamp(x - i0, 0, 1)``; taps ``i0-1 .. i0+2``, each clamped into ``[0, i-1]``
  (``upsample_get_value_bounded``), weights ``W(t+1), W(t), W(1-t), W(2-t)`` with ``W(s) = (A+2)s³ - (A+3)s² + 1``
  for ``s <= 1`` and ``A s³ - 5A s² + 8A s - 4A`` for ``1 < s < 2``. No copy where o = i (a scale factor other than
  1 still resamples), but torch's backward copies the gradient where o = i on both axes (`Upsample.backward`);
* 'area': adaptive average pooling to the output size (F.interpolate calls ``adaptive_avg_pool``): bin u covers
  ``[floor(u*i/o), ceil((u+1)*i/o))``; the scale factor only sizes the output.

``floor`` is ATen's ``floorf`` (of the float32 value) in the linear and cubic modes.
"""

from __future__ import annotations

from fractions import Fraction

from .._numpy import np

from ..kernels import adaptive_mean_transpose, adaptive_taps, scatter_add_axis
from ..algebra import Reads, limits
from .resample_reads import cubic_reads, fitted_scale, resample_reads

MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "bicubic", "area")
LINEAR_RANK = {"linear": 1, "bilinear": 2, "trilinear": 3}    # spatial axes each linear mode needs
MODE_RANK = {**LINEAR_RANK, "bicubic": 2}                     # ... and every mode that needs one
ALIGNABLE = (*LINEAR_RANK, "bicubic")                          # the modes that take align_corners
CUBIC_A = -0.75                                                # ATen's (OpenCV's) A without antialias


def exact(value: float) -> Fraction:
    """A scale factor as the decimal it was written as (2.1 -> 21/10), for exact receptive-field arithmetic."""
    return Fraction(repr(value))


def cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    """get_cubic_upsample_coefficients: the weights of taps i0-1 .. i0+2 for the fraction ``t`` past i0."""
    a = CUBIC_A

    def near(s):        # cubic_convolution1, |s| <= 1
        return ((a + 2) * s - (a + 3)) * s * s + 1

    def far(s):         # cubic_convolution2, 1 < |s| < 2
        return ((a * s - 5 * a) * s + 8 * a) * s - 4 * a

    return [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]


class ResampleAxis:
    """How one spatial axis of length ``i`` is resampled to ``o``: ATen's index and weight rules."""

    def __init__(self, mode: str, i: int, o: int, factor: float | None, align_corners: bool, dims: int):
        self.mode, self.i, self.o, self.factor, self.align_corners = mode, i, o, factor, align_corners
        self.linear = mode in LINEAR_RANK
        self.cubic = mode == "bicubic"
        self.area = mode == "area"
        # ATen's 2-D 'nearest' kernel (nearest_idx) copies when o == i and takes u >> 1 when o == 2i, whatever
        # the scale factor; the 1-D and 3-D kernels and 'nearest-exact' always use the scale
        self.shortcut = mode == "nearest" and dims == 2 and o in (i, 2 * i)

    # ---- ATen's numbers (executor)
    def nearest_indices(self) -> np.ndarray:
        """Source index of every output position (float32 scale, as nearest_neighbor_compute_source_index)."""
        if self.shortcut:
            return np.arange(self.o) * self.i // self.o
        if self.factor is not None:
            scale = np.float32(1.0 / self.factor)
        else:
            scale = np.float32(self.i) / np.float32(self.o)
        u = np.arange(self.o)
        if self.mode == "nearest":
            src = np.floor(u.astype(np.float32) * scale)
        else:   # nearest-exact: floorf of the double (u + 0.5) * scale
            src = np.floor(((u + 0.5) * np.float64(scale)).astype(np.float32))
        return np.minimum(src.astype(np.int64), self.i - 1)

    def source(self, u: np.ndarray) -> np.ndarray:
        """The sample position x of outputs ``u`` (linear and cubic modes; area_pixel_compute_source_index), before
        the linear modes' clamp at 0."""
        i, o = self.i, self.o
        if self.align_corners:
            return ((i - 1) / (o - 1) if o > 1 else 0.0) * u
        scale = 1.0 / self.factor if self.factor is not None else i / o
        return scale * (u + 0.5) - 0.5

    def linear_taps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(i0, i1, λ) per output position: out = (1-λ)·x[i0] + λ·x[i1] (compute_source_index_and_lambda)."""
        i, o = self.i, self.o
        u = np.arange(o)
        if o == i:                                   # ATen copies (any scale factor)
            return u, u, np.zeros(o)
        src = self.source(u)
        if not self.align_corners:
            src = np.maximum(src, 0.0)
        i0 = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), i - 1)   # floorf, as guard_index_and_lambda
        i1 = i0 + (i0 < i - 1)
        lam = np.clip(src - i0, 0.0, 1.0)
        return i0, i1, lam

    def cubic_taps(self, u: np.ndarray | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(indices, weights), four of each per output position: out = Σ_j w_j·x[index_j] (the indices clamped
        into the axis; HelperInterpCubic.compute_indices_weights)."""
        u = np.arange(self.o) if u is None else u
        src = self.source(u)
        i0 = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), self.i - 1)
        t = np.clip(src - i0, 0.0, 1.0)
        indices = [np.clip(i0 + j - 1, 0, self.i - 1) for j in range(4)]
        return indices, cubic_weights(t)

    def _weighted(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(index, weight) pairs per tap: out = Σ w·x[index] (linear, cubic)."""
        if self.linear:
            i0, i1, lam = self.linear_taps()
            return [(i0, 1 - lam), (i1, lam)]
        return list(zip(*self.cubic_taps()))

    def _area(self, x: np.ndarray, axis: int) -> np.ndarray:
        """Adaptive average pooling along ``axis``: each bin's sum over its count, as ATen (one gather of the bins'
        taps, o·K <= i + 2o values per line)."""
        index, valid = adaptive_taps(self.i, self.o)                  # (o, K): bin u's taps
        gathered = np.take(x, index.ravel(), axis=axis)
        gathered = gathered.reshape(*x.shape[:axis], *index.shape, *x.shape[axis + 1:])   # (..., o, K, ...)
        shape = [1] * gathered.ndim
        shape[axis], shape[axis + 1] = index.shape
        total = (gathered * valid.reshape(shape).astype(x.dtype)).sum(axis=axis + 1)
        counts = valid.sum(axis=1).reshape([self.o if a == axis else 1 for a in range(x.ndim)])
        return total / counts.astype(x.dtype)

    def apply(self, x: np.ndarray, axis: int) -> np.ndarray:
        if not (self.linear or self.cubic or self.area):
            return np.take(x, self.nearest_indices(), axis=axis)
        if (self.linear or self.area) and self.o == self.i:
            return x.copy()                                           # ATen copies (a bin of one pixel each)
        if self.area:
            return self._area(x, axis)
        shape = [1] * x.ndim
        shape[axis] = self.o
        result = None
        for index, weight in self._weighted():
            term = np.take(x, index, axis=axis) * weight.reshape(shape).astype(x.dtype)
            result = term if result is None else result + term
        return result

    def apply_backward(self, grad: np.ndarray, axis: int, magnitude: bool = False) -> np.ndarray:
        """The VJP of `apply` along ``axis``: each output's gradient added to the input pixels it read, weighted as
        it read them (ATen's upsample backward kernels use the same indices and weights as the forward ones).
        ``magnitude``: by the weights' absolute values (a dependency mask: cubic weights can be negative)."""
        if not (self.linear or self.cubic or self.area):
            if self.mode == "nearest" and self.o in (self.i, 2 * self.i):
                # ATen's nearest backward kernel (cpu_upsample_nearest_backward, every rank) indexes with
                # nearest_idx, whose shortcut (copy where o = i, u // 2 where o = 2i) only the 2-D FORWARD kernel
                # shares: for 1-D and 3-D with a scale factor torch's gradient then goes elsewhere than the value came
                # from (scale_factor 2.1 on 2 pixels: forward reads [0, 0, 0, 1], backward adds to [0, 0, 1, 1])
                return scatter_add_axis(grad, np.arange(self.o) * self.i // self.o, axis, self.i)
            return scatter_add_axis(grad, self.nearest_indices(), axis, self.i)
        if (self.linear or self.area) and self.o == self.i:
            return grad.copy()
        if self.area:                          # each bin's gradient spread evenly over its taps
            sizes = list(grad.shape[1:-1])
            sizes[axis - 1] = self.i
            return adaptive_mean_transpose(grad, sizes)
        shape = [1] * grad.ndim
        shape[axis] = self.o
        result = None
        for index, weight in self._weighted():
            weight = np.abs(weight) if magnitude else weight
            term = scatter_add_axis(grad * weight.reshape(shape).astype(grad.dtype), index, axis, self.i)
            result = term if result is None else result + term
        return result

    def copies(self) -> bool:
        """Whether the output has the input's length and (cubic) samples it at x = u, a coordinate scale of 1:
        bicubic has no copy shortcut, a scale factor other than 1 resamples an axis of the same length."""
        if self.o != self.i:
            return False
        return not self.cubic or self.align_corners or self.factor is None or 1.0 / self.factor == 1.0

    # ---- receptive field (exact)
    def scale_and_fit(self) -> tuple[Fraction, str]:
        """The coordinate scale c of the receptive field, and where it comes from: "exact" (the sizes, or the
        scale factor's decimal), "fitted" (the simplest scale whose exact rule reads what every real unit reads,
        for a factor whose decimal has a period past `limits.MAX_SCALE_DENOMINATOR`), or "table" (no simple
        scale does: the real units' reads are a table, c only their average). See `resample_reads`. 'area' reads
        adaptive bins: c = i/o."""
        if (self.linear or self.cubic) and self.align_corners:
            return (Fraction(self.i - 1, self.o - 1) if self.o > 1 else Fraction(0)), "exact"
        if self.shortcut or self.factor is None or self.area:
            return Fraction(self.i, self.o), "exact"
        decimal = 1 / exact(self.factor)
        if decimal.denominator <= limits.MAX_SCALE_DENOMINATOR:
            return decimal, "exact"
        fitted = None if self.cubic else fitted_scale(self, decimal)
        if fitted is not None:
            return fitted, "fitted"
        return decimal.limit_denominator(max(self.o, 1)), "table"

    def coordinate_scale(self) -> Fraction:
        return self.scale_and_fit()[0]

    def reads(self) -> Reads:
        """Which input units each output unit reads, on the unclipped axis (period q for a coordinate scale
        c = p/q): linear the two around x = c*(u + 1/2) - 1/2 (x = c*u with align_corners), one where x falls on
        a pixel, in exact fractions; cubic the four floor(x)-1 .. floor(x)+2 (one where x falls on a pixel: the
        other weights are 0; a read past a border is the border pixel, which the clipped reads already hold);
        area its adaptive bin; nearest one: for the real units exactly the pixel ATen's kernels read, with
        their float32 scale (`nearest_indices`, as the executor), which can differ from floor(u*c) (or
        floor((u + 1/2)*c)) by one where a sample falls on a pixel boundary (x2.3 on 31: unit 69 reads 29, not
        30 = 69/2.3); past the output, on the extension, the exact rule. The period is then q*ceil(o/q), so the
        stride stays exactly c (or q where the exact rule gives every real unit's pixel and the table would be
        long). (ATen's 1-D float64 kernel computes in double and reads 30 there: convcalc follows the float32
        kernels, PyTorch's default dtype.) Built in runs: `resample_reads`, `cubic_reads`, `Reads.bins`."""
        if self.area:
            return Reads.bins(self.i, self.o)
        if self.cubic:
            return cubic_reads(self)
        return resample_reads(self)


__all__ = ["ALIGNABLE", "CUBIC_A", "LINEAR_RANK", "MODES", "MODE_RANK", "ResampleAxis", "cubic_weights", "exact"]
