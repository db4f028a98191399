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


def _factories() -> dict[str, Callable[[int, int], object]]:
    from pyod.models.auto_encoder import AutoEncoder
    from pyod.models.deep_svdd import DeepSVDD
    from pyod.models.ecod import ECOD
    from pyod.models.iforest import IForest
    from pyod.models.knn import KNN
    from pyod.models.ocsvm import OCSVM

    return {
        "pyod_iforest": lambda seed, d: IForest(random_state=seed),
        "pyod_ocsvm": lambda seed, d: OCSVM(),
        "pyod_knn": lambda seed, d: KNN(),
        "pyod_ecod": lambda seed, d: ECOD(),
        "pyod_autoencoder": lambda seed, d: AutoEncoder(random_state=seed, verbose=0),
        "pyod_deepsvdd": lambda seed, d: DeepSVDD(n_features=d, hidden_neurons=[64, 32], epochs=150,
                                                  random_state=seed, verbose=0),
    }


BASELINES = ("pyod_iforest", "pyod_ocsvm", "pyod_knn", "pyod_ecod", "pyod_autoencoder", "pyod_deepsvdd")


def available() -> bool:
    """Whether PyOD (and PyTorch, for its deep detectors) can be imported."""
    try:
        import pyod  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def fit_score(name: str, x_train: np.ndarray, x_test: np.ndarray, seed: int) -> tuple[np.ndarray, float, float]:
    """Fit baseline ``name`` on x_train (n, d) with ``seed``; -> (test scores (m,), train s, score s).
    PyOD's scores are higher = more abnormal, as jaxad's."""
    factories = _factories()
    if name not in factories:
        raise KeyError(f"baseline={name!r}: expected one of {sorted(factories)}")
    if name in ("pyod_autoencoder", "pyod_deepsvdd"):
        import torch

        torch.manual_seed(seed)
    detector = factories[name](seed, x_train.shape[1])
    t0 = time.perf_counter()
    detector.fit(np.asarray(x_train, np.float32))
    train_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores = np.asarray(detector.decision_function(np.asarray(x_test, np.float32)), np.float64)
    return scores, train_seconds, time.perf_counter() - t0
