"""Input checks that run before anything is compiled or trained."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def as_float_array(X, *, name: str = "X", ndims: Sequence[int] = (2,)) -> np.ndarray:
    """X (numpy, pandas or nested lists) as a float32 array, or ValueError naming ``name``.

    Rejects: non-numeric values, a rank not in ``ndims``, no rows or no features, NaN / inf,
    and finite values too large for float32 (they would become inf on the device)."""
    if hasattr(X, "to_numpy") and hasattr(X, "dtypes"):  # pandas DataFrame / Series
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        dtypes = X.dtypes.items() if hasattr(X.dtypes, "items") else [(getattr(X, "name", 0), X.dtypes)]
        non_numeric = [c for c, t in dtypes if not (is_numeric_dtype(t) or is_bool_dtype(t))]
        if non_numeric:
            raise ValueError(f"{name}: expected numeric columns only; non-numeric: {non_numeric[:5]}")
        X = X.to_numpy(dtype=np.float64)
    try:
        arr = np.asarray(X)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"{name}: expected a rectangular numeric array ({err})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"{name}: expected numeric values, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name}: expected real numbers, got complex dtype {arr.dtype}")
    if arr.ndim not in ndims:
        shapes = " or ".join({2: "2-D (n_samples, n_features)", 4: "4-D (n, height, width, channels)"}.get(d, f"{d}-D") for d in ndims)
        raise ValueError(f"{name}: expected a {shapes} array, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.size == 0:
        raise ValueError(f"{name}: expected at least one sample and one feature, got shape {arr.shape}")
    arr64 = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr64).all():
        bad = int(np.size(arr64) - np.isfinite(arr64).sum())
        raise ValueError(f"{name}: contains {bad} NaN or infinite value(s); impute or drop them first")
    if np.abs(arr64).max() > np.finfo(np.float32).max:
        raise ValueError(f"{name}: values beyond float32's range ({np.finfo(np.float32).max:.3g}); rescale first")
    return arr64.astype(np.float32)


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
