"""PyOD detectors as benchmark baselines, on the very splits jaxad's methods get.

Needs the benchmark extra (``pip install 'jaxad[bench]'``: PyOD and a CPU PyTorch). Each
baseline is PyOD's own default except where a jaxad counterpart fixes the comparison: the deep
detectors get jaxad's layer sizes and epochs, so that "jaxad vs PyOD" compares implementations,
not settings.

==================  ===========================================================================
name                PyOD detector
==================  ===========================================================================
pyod_iforest        ``IForest(random_state=seed)`` (100 trees)
pyod_ocsvm          ``OCSVM()`` (RBF kernel, gamma 'auto', nu 0.5; deterministic)
pyod_knn            ``KNN()`` (k = 5, largest distance; deterministic)
pyod_ecod           ``ECOD()`` (parameter-free; deterministic)
pyod_autoencoder    ``AutoEncoder(random_state=seed)``: hidden (64, 32), 10 epochs, batch 32 -
                    PyOD's defaults, which are jaxad ``ae``'s defaults
pyod_deepsvdd       ``DeepSVDD(hidden_neurons=[64, 32], epochs=150, random_state=seed)``: jaxad
                    ``deep_svdd``'s widths and epochs; PyOD's lr 1e-4, weight decay 5e-7, batch
                    32, dropout 0.2, sigmoid output
==================  ===========================================================================
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

# jaxad method -> its PyOD counterpart, for the "at least PyOD's mean AUROC, 10x faster" checks.
COUNTERPARTS = {"ae": "pyod_autoencoder", "deep_svdd": "pyod_deepsvdd"}


def _factory(name: str) -> Callable[[int, int], object]:
    """(seed, n_features) -> an unfitted PyOD detector. Imports only what ``name`` needs, so the
    classical baselines run without PyTorch."""
    if name == "pyod_iforest":
        from pyod.models.iforest import IForest
        return lambda seed, d: IForest(random_state=seed)
    if name == "pyod_ocsvm":
        from pyod.models.ocsvm import OCSVM
        return lambda seed, d: OCSVM()
    if name == "pyod_knn":
        from pyod.models.knn import KNN
        return lambda seed, d: KNN()
    if name == "pyod_ecod":
        from pyod.models.ecod import ECOD
        return lambda seed, d: ECOD()
    if name == "pyod_autoencoder":
        from pyod.models.auto_encoder import AutoEncoder
        return lambda seed, d: AutoEncoder(random_state=seed, verbose=0)
    if name == "pyod_deepsvdd":
        from pyod.models.deep_svdd import DeepSVDD
        return lambda seed, d: DeepSVDD(n_features=d, hidden_neurons=[64, 32], epochs=150,
                                        random_state=seed, verbose=0)
    raise KeyError(f"baseline={name!r}: expected one of {list(BASELINES)}")


BASELINES = ("pyod_iforest", "pyod_ocsvm", "pyod_knn", "pyod_ecod", "pyod_autoencoder", "pyod_deepsvdd")
# PyOD's deep detectors are PyTorch models; the others need PyOD alone.
TORCH_BASELINES = ("pyod_autoencoder", "pyod_deepsvdd")


def available(names=BASELINES) -> bool:
    """Whether PyOD (and PyTorch, where one of ``names`` is a deep detector) can be imported."""
    try:
        import pyod  # noqa: F401
        if set(names) & set(TORCH_BASELINES):
            import torch  # noqa: F401
    except ImportError:
        return False
    return True


def fit_score(name: str, x_train: np.ndarray, x_test: np.ndarray, seed: int) -> tuple[np.ndarray, float, float]:
    """Fit baseline ``name`` on x_train (n, d) with ``seed``; -> (test scores (m,), train s, score s).
    PyOD's scores are higher = more abnormal, as jaxad's."""
    make = _factory(name)
    if name in TORCH_BASELINES:
        import torch

        torch.manual_seed(seed)
    detector = make(seed, x_train.shape[1])
    t0 = time.perf_counter()
    detector.fit(np.asarray(x_train, np.float32))
    train_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores = np.asarray(detector.decision_function(np.asarray(x_test, np.float32)), np.float64)
    return scores, train_seconds, time.perf_counter() - t0
