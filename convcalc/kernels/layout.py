"""The executor's array conventions.

Owns the conversions between PyTorch's channels-first layout (N, C, *S) and the executor's channels-last storage
(N, *S, C) (`to_storage`, `to_logical`; vectors (N, F) stay as they are), and `is_real`, which dtypes can hold the
network's float values. Used by the executor, the layer units, the gradient proof and the tests.
"""

from __future__ import annotations

from .._numpy import np


def to_storage(x: np.ndarray) -> np.ndarray:
    """(N, C, *S) -> the executor's channels-last (N, *S, C); vectors (N, F) stay as they are."""
    return np.ascontiguousarray(np.moveaxis(x, 1, -1)) if x.ndim > 2 else x


def to_logical(x: np.ndarray) -> np.ndarray:
    """The executor's channels-last (N, *S, C) -> PyTorch's (N, C, *S)."""
    return np.moveaxis(x, -1, 1) if x.ndim > 2 else x


def is_real(dtype: np.dtype) -> bool:
    """Whether arrays of ``dtype`` can become the network's float values: numbers, and not complex ones."""
    return np.issubdtype(dtype, np.number) and not np.issubdtype(dtype, np.complexfloating)
