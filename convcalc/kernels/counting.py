"""Counting the multiply-accumulates the executor really runs.

Owns `MacCounter`, handed to every kernel that multiply-accumulates: it counts each product from the dimensions
of the product actually run (never from the analyzer), so that `convcalc run` can prove the MAC figures, and keeps
apart the products computed on discarded padding-grid positions and those run in a transform domain (FFT, Winograd).
`MacCounter.matmul_into` adds a product into its output through the BLAS binding (``blas.gemm_accumulate``).
"""

from __future__ import annotations

from .._numpy import np

from .blas import gemm_accumulate


class MacCounter:
    """Counts multiply-accumulates from the shapes of the products that really ran."""

    def __init__(self) -> None:
        self.total = 0
        self.discarded = 0   # computed on padding-grid positions that are no output (see conv_flat), not in total
        self.transform_macs = 0   # multiply-accumulates run in a transform domain, not in total: the complex
                                  # products of FFT spectra (conv_fft) or Winograd's tile GEMMs (conv_winograd)
        self.transform = ""       # 'fft' or 'winograd' when one ran

    def matmul(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None,
               ones_column: bool = False) -> np.ndarray:
        """a @ b, counting prod(batch dims of the result) x rows x K x cols. With ``ones_column`` a's last column
        holds ones and b's last row a bias (`with_ones_column`): the product adds the bias, which is no
        multiply-accumulate of the layer's, so K counts a's other columns only."""
        k = a.shape[-1] - ones_column
        result = np.matmul(a, b, out=out)
        self.total += result.size * k
        return result

    def matmul_into(self, a: np.ndarray, b: np.ndarray, into: np.ndarray, ones_column: bool = False) -> np.ndarray:
        """``into += a @ b`` (``into``: 2-D, a's rows by b's columns), counted as `matmul` counts: in the GEMM
        itself where NumPy's BLAS can be called so (`blas.gemm_accumulate`), else as a product and an add."""
        if not gemm_accumulate(a, b, into):
            into += np.matmul(a, b)
        self.total += into.size * (a.shape[-1] - ones_column)
        return into

    def add(self, count: int) -> None:
        self.total += int(count)
