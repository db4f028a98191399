"""Input checks that run before anything is compiled or trained."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def as_float_array(X, *, name: str = "X", ndims: Sequence[int] = (2,)) -> np.ndarray:
    """X (numpy, pandas or nested lists) as a float32 array, or ValueError naming ``name``.

    Rejects what ``check_array`` rejects. A float32 array comes back as it is (no copy); other
    dtypes are converted once, to float32 directly."""
    return check_array(X, name=name, ndims=ndims).astype(np.float32, copy=False)


def check_array(X, *, name: str = "X", ndims: Sequence[int] = (2,)) -> np.ndarray:
    """X (numpy, pandas or nested lists) as a numeric numpy array in its own dtype, or
    ValueError naming ``name``.

    Rejects: non-numeric values (object, strings, complex), a rank not in ``ndims``, no rows or no
    features, NaN / inf, and finite values too large for float32 (they would become inf on the
    device). The value checks run over blocks of rows, so a large X is never copied whole (no
    float64 or boolean mask of its full size)."""
    if hasattr(X, "to_numpy") and hasattr(X, "dtypes"):  # pandas DataFrame / Series
        from pandas.api.types import is_bool_dtype, is_complex_dtype, is_numeric_dtype

        dtypes = X.dtypes.items() if hasattr(X.dtypes, "items") else [(getattr(X, "name", 0), X.dtypes)]
        non_numeric = [c for c, t in dtypes if not (is_numeric_dtype(t) or is_bool_dtype(t)) or is_complex_dtype(t)]
        if non_numeric:
            raise ValueError(f"{name}: expected real numeric columns only; non-numeric or complex: {non_numeric[:5]}")
        X = X.to_numpy(dtype=np.float64)
    try:
        arr = np.asarray(X)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"{name}: expected a rectangular numeric array ({err})") from None
    if np.iscomplexobj(arr):
        raise ValueError(f"{name}: expected real numbers, got complex dtype {arr.dtype}")
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) \
            or np.issubdtype(arr.dtype, np.timedelta64):
        raise ValueError(f"{name}: expected numeric values, got dtype {arr.dtype}")
    if arr.ndim not in ndims:
        shapes = " or ".join({2: "2-D (n_samples, n_features)", 4: "4-D (n, height, width, channels)"}.get(d, f"{d}-D") for d in ndims)
        raise ValueError(f"{name}: expected a {shapes} array, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.size == 0:
        raise ValueError(f"{name}: expected at least one sample and one feature, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating):
        _check_float_values(arr, name)
    return arr


# Values per block of the row-wise checks: 8 MB of float64 temporaries at most.
CHECK_BLOCK_VALUES = 1 << 20


def row_blocks(n_rows: int, row_size: int, block_values: int = CHECK_BLOCK_VALUES):
    """(start, stop) of consecutive row blocks of about ``block_values`` values each."""
    rows = max(1, block_values // max(1, row_size))
    return ((start, min(start + rows, n_rows)) for start in range(0, n_rows, rows))


def _check_float_values(arr: np.ndarray, name: str) -> None:
    """NaN / inf anywhere, or (for dtypes wider than float32) magnitudes beyond float32's range."""
    wider = np.finfo(arr.dtype).max > np.finfo(np.float32).max
    bad = 0
    too_big = False
    for start, stop in row_blocks(len(arr), int(np.prod(arr.shape[1:]))):
        block = arr[start:stop]
        finite = np.isfinite(block)
        bad += int(block.size - np.count_nonzero(finite))
        if wider and not too_big:
            too_big = bool(np.any(np.abs(np.where(finite, block, 0)) > np.finfo(np.float32).max))
    if bad:
        raise ValueError(f"{name}: contains {bad} NaN or infinite value(s); impute or drop them first")
    if too_big:
        raise ValueError(f"{name}: values beyond float32's range ({np.finfo(np.float32).max:.3g}); rescale first")


def check_contamination(contamination) -> float:
    """PyOD's rule: contamination in (0, 0.5]."""
    ok = isinstance(contamination, int | float | np.floating) and not isinstance(contamination, bool)
    if not ok or not 0.0 < float(contamination) <= 0.5:
        raise ValueError(f"contamination={contamination!r}: expected a number in (0, 0.5]")
    return float(contamination)


def check_labels(y, n: int, *, name: str = "y") -> np.ndarray:
    """Binary labels (1 = anomaly) of length n, as int64."""
    arr = np.asarray(y).reshape(-1)
    if arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} labels, got {arr.shape[0]}")
    if not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name}: expected binary labels 0 (normal) / 1 (anomaly), got values {np.unique(arr)[:5]}")
    return arr.astype(np.int64)
