"""Anomaly-detection splits: what a method trains on and what it is tested on.

Labels in an ``ADSplit`` are anomaly labels: 1 = anomaly, 0 = normal. ``y_train`` exists for
bookkeeping (the contaminated and ADBench protocols have anomalies in the training pool) and
never reaches a method: training is unsupervised.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

SCALINGS = ("minmax", "global_minmax", "standard", None)


@dataclasses.dataclass
class ADSplit:
    """x_train (n_train, ...) float32, y_train (n_train,), x_test (n_test, ...), y_test (n_test,)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if len(x) != len(y):
                raise ValueError(f"x_{part} has {len(x)} rows but y_{part} has {len(y)}")

    def summary(self) -> str:
        return (f"{self.name}: train {self.x_train.shape} ({int(self.y_train.sum())} anomalies), "
                f"test {self.x_test.shape} ({int(self.y_test.sum())} anomalies)")


def fit_scaler(x_train: np.ndarray, scaling: str | None):
    """(shift, scale) fitted on the training rows; features are the flattened trailing axes.

    'minmax' per feature (ADBench), 'global_minmax' one min and max over all values
    (TensorFlow's ECG tutorial), 'standard' per-feature z-score. Constant features keep scale 1."""
    if scaling not in SCALINGS:
        raise ValueError(f"scaling={scaling!r}: expected one of {SCALINGS}")
    flat = x_train.reshape(len(x_train), -1).astype(np.float64)
    if scaling is None:
        return 0.0, 1.0
    if scaling == "global_minmax":
        lo, hi = flat.min(), flat.max()
        return lo, (hi - lo) if hi > lo else 1.0
    if scaling == "minmax":
        lo = flat.min(axis=0)
        span = flat.max(axis=0) - lo
        return lo, np.where(span > 0, span, 1.0)
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def apply_scaler(x: np.ndarray, shift, scale) -> np.ndarray:
    flat = (x.reshape(len(x), -1).astype(np.float64) - shift) / scale
    return flat.reshape(x.shape).astype(np.float32)


def _scaled(name, x_train, y_train, x_test, y_test, scaling, info) -> ADSplit:
    shift, scale = fit_scaler(x_train, scaling)
    return ADSplit(name, apply_scaler(x_train, shift, scale), np.asarray(y_train, np.int64),
                   apply_scaler(x_test, shift, scale), np.asarray(y_test, np.int64),
                   {**info, "scaling": scaling})


def one_class_split(name: str, x: np.ndarray, is_anomaly: np.ndarray, *, test_size: float = 0.3,
                    seed: int = 0, scaling: str | None = "standard") -> ADSplit:
    """Train on a share (1 - test_size) of the normal rows; test on the other normal rows and
    every anomaly. Scaling is fitted on the training rows."""
    is_anomaly = np.asarray(is_anomaly).astype(bool)
    normal = np.flatnonzero(~is_anomaly)
    rng = np.random.default_rng(seed)
    normal = rng.permutation(normal)
    n_test = int(round(test_size * len(normal)))
    train_idx, test_idx = normal[n_test:], np.concatenate([normal[:n_test], np.flatnonzero(is_anomaly)])
    return _scaled(name, x[train_idx], np.zeros(len(train_idx)), x[test_idx], is_anomaly[test_idx],
                   scaling, {"protocol": "one_class", "test_size": test_size, "split_seed": seed})


def class_split(name: str, x_train: np.ndarray, c_train: np.ndarray, x_test: np.ndarray,
                c_test: np.ndarray, *, normal_classes: Sequence[int],
                anomaly_classes: Sequence[int] | None = None, scaling: str | None = None) -> ADSplit:
    """One-class task over a dataset with its own train/test split and class labels: train on
    the train rows of ``normal_classes``; test on the test rows of the normal and anomaly
    classes (None = every other class)."""
    normal = np.asarray(list(normal_classes))
    train_mask = np.isin(c_train, normal)
    if anomaly_classes is None:
        test_mask = np.ones(len(c_test), bool)
    else:
        test_mask = np.isin(c_test, np.concatenate([normal, np.asarray(list(anomaly_classes))]))
    y_test = ~np.isin(c_test[test_mask], normal)
    return _scaled(name, x_train[train_mask], np.zeros(int(train_mask.sum())), x_test[test_mask],
                   y_test, scaling, {"protocol": "class_split", "normal_classes": normal.tolist(),
                                     "anomaly_classes": None if anomaly_classes is None else list(anomaly_classes)})


def holdout_one_class_split(name: str, x: np.ndarray, is_anomaly: np.ndarray, *, test_size: float,
                            random_state: int, scaling: str | None) -> ADSplit:
    """TensorFlow's ECG tutorial: ``train_test_split(test_size, random_state)`` over all rows,
    scaling fitted on all training rows, then training on the normal training rows only;
    the test part keeps both classes."""
    x_tr, x_te, a_tr, a_te = train_test_split(x, np.asarray(is_anomaly).astype(bool),
                                              test_size=test_size, random_state=random_state)
    shift, scale = fit_scaler(x_tr, scaling)
    x_tr, x_te = apply_scaler(x_tr, shift, scale), apply_scaler(x_te, shift, scale)
    return ADSplit(name, x_tr[~a_tr], np.zeros(int((~a_tr).sum()), np.int64), x_te, a_te.astype(np.int64),
                   {"protocol": "holdout_one_class", "test_size": test_size,
                    "random_state": random_state, "scaling": scaling})


def contaminated_split(name: str, x: np.ndarray, is_anomaly: np.ndarray, *, contamination: float,
                       seed: int = 0, scaling: str | None = "standard") -> ADSplit:
    """Transductive setting: one pool of all normal rows plus enough anomalies for a share
    ``contamination``; the method fits and scores that same pool."""
    if not 0.0 < contamination < 1.0:
        raise ValueError(f"contamination={contamination!r}: expected a number in (0, 1)")
    is_anomaly = np.asarray(is_anomaly).astype(bool)
    normal, anomalous = np.flatnonzero(~is_anomaly), np.flatnonzero(is_anomaly)
    n_anom = min(len(anomalous), int(round(contamination * len(normal) / (1 - contamination))))
    rng = np.random.default_rng(seed)
    pool = rng.permutation(np.concatenate([normal, rng.choice(anomalous, n_anom, replace=False)]))
    shift, scale = fit_scaler(x[pool], scaling)
    xs = apply_scaler(x[pool], shift, scale)
    y = is_anomaly[pool].astype(np.int64)
    return ADSplit(name, xs, y, xs, y, {"protocol": "contaminated", "contamination": n_anom / len(pool),
                                         "split_seed": seed, "scaling": scaling})


def adbench_split(name: str, x: np.ndarray, y: np.ndarray, *, seed: int = 0, test_size: float = 0.3,
                  max_rows: int | None = None) -> ADSplit:
    """ADBench's protocol (Han et al., NeurIPS 2022): optional stratified subsample to
    ``max_rows``, a stratified 70/30 split, MinMax scaling fitted on train. The training part
    keeps its anomalies: the setting is unsupervised, labels never reach training."""
    y = np.asarray(y).astype(np.int64)
    if max_rows is not None and len(x) > max_rows:
        keep, _ = train_test_split(np.arange(len(x)), train_size=max_rows, stratify=y, random_state=seed)
        x, y = x[np.sort(keep)], y[np.sort(keep)]
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, stratify=y, random_state=seed)
    return _scaled(name, x_tr, y_tr, x_te, y_te, "minmax",
                   {"protocol": "adbench", "split_seed": seed, "test_size": test_size, "max_rows": max_rows})
