"""The PyOD / scikit-learn face of jaxad: ``Detector(method, **config).fit(X)``.

Follows PyOD's ``BaseDetector`` contract: after ``fit``, ``decision_scores_`` are the training
scores (higher = more abnormal), ``threshold_`` their 100 * (1 - contamination) percentile and
``labels_`` = ``decision_scores_ > threshold_``; ``predict`` applies the same strict ``>``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import erf

from jaxad import train
from jaxad.methods import get_method, resolve_config
from jaxad.validation import as_float_array, check_contamination

SCALERS = ("auto", "standard", "minmax", None)


class Detector:
    """A jaxad method behind PyOD's detector API.

    Parameters: ``method`` (a name in ``jaxad.METHODS``), ``contamination`` in (0, 0.5]
    (PyOD's default 0.1), ``seed``, ``scale`` fitted on the training data: 'standard' (as PyOD's
    ``preprocessing=True``), 'minmax', None, or 'auto' (default: 'standard' for tables, None for
    images, which the image methods expect in [0, 1]), ``progress`` (tqdm bar over epochs), and any
    key of the method's config (``Detector("ae", epochs=20, hidden=(32, 16))``).
    """

    def __init__(self, method: str = "ae", contamination: float = 0.1, seed: int = 0,
                 scale: str | None = "auto", progress: bool = False, **config: Any):
        self.method = method
        self.contamination = contamination
        self.seed = seed
        self.scale = scale
        self.progress = progress
        self.config = config

    # ---- scikit-learn parameter protocol (config keys are first-class parameters)
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"method": self.method, "contamination": self.contamination, "seed": self.seed,
                "scale": self.scale, "progress": self.progress, **self.config}

    def set_params(self, **params: Any) -> "Detector":
        for key, value in params.items():
            if key in ("method", "contamination", "seed", "scale", "progress"):
                setattr(self, key, value)
            else:
                self.config[key] = value
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"Detector({args})"

    # ---- fitting
    def _check_settings(self):
        method = get_method(self.method)
        check_contamination(self.contamination)
        if self.scale not in SCALERS:
            raise ValueError(f"scale={self.scale!r}: expected one of {SCALERS}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise ValueError(f"seed={self.seed!r}: expected an integer")
        return method, resolve_config(method, self.config)

    def _fit_scaler(self, X: np.ndarray) -> None:
        flat = X.reshape(len(X), -1)
        self.scale_ = ("standard" if X.ndim == 2 else None) if self.scale == "auto" else self.scale
        if self.scale_ == "standard":
            self._shift = flat.mean(axis=0)
            self._scale = np.where(flat.std(axis=0) > 0, flat.std(axis=0), 1.0)
        elif self.scale_ == "minmax":
            self._shift = flat.min(axis=0)
            span = flat.max(axis=0) - self._shift
            self._scale = np.where(span > 0, span, 1.0)
        else:
            self._shift, self._scale = 0.0, 1.0

    def _transform(self, X: np.ndarray) -> np.ndarray:
        flat = (X.reshape(len(X), -1) - self._shift) / self._scale
        return flat.reshape(X.shape).astype(np.float32)

    def fit(self, X, y=None) -> "Detector":
        """Fit on X (n, features) or, for image methods, (n, H, W, C); y is ignored
        (unsupervised, as in PyOD)."""
        method, config = self._check_settings()
        X = as_float_array(X, name="X", ndims=method.input_ndims)
        method.validate(config, X.shape)
        self.n_features_in_ = int(np.prod(X.shape[1:]))
        self._input_shape = X.shape[1:]
        self._fit_scaler(X)
        Xs = self._transform(X)
        self.fit_result_ = train.fit(method, config, Xs, seeds=(int(self.seed),), progress=self.progress)
        self.config_ = config
        self.history_ = {k: v[:, 0] for k, v in self.fit_result_.history.items()}
        self.decision_scores_ = self._scores(Xs)
        self.threshold_ = float(np.percentile(self.decision_scores_, 100 * (1 - self.contamination)))
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        return self

    def _scores(self, Xs: np.ndarray) -> np.ndarray:
        return train.fit_result_scores(self.fit_result_, Xs)[0].astype(np.float64)

    def _checked(self, X) -> np.ndarray:
        if not hasattr(self, "fit_result_"):
            raise RuntimeError("this Detector is not fitted yet: call fit(X) first")
        X = as_float_array(X, name="X", ndims=(len(self._input_shape) + 1,))
        if X.shape[1:] != self._input_shape:
            raise ValueError(f"X: expected samples of shape {self._input_shape} as in fit, "
                             f"got {X.shape[1:]}")
        return self._transform(X)

    # ---- PyOD's prediction API
    def decision_function(self, X) -> np.ndarray:
        """Anomaly scores (n,), higher = more abnormal."""
        return self._scores(self._checked(X))

    def predict(self, X) -> np.ndarray:
        """0 = inlier, 1 = outlier (score > threshold_)."""
        return (self.decision_function(X) > self.threshold_).astype(int)

    def fit_predict(self, X, y=None) -> np.ndarray:
        return self.fit(X, y).labels_

    def predict_proba(self, X, method: str = "linear") -> np.ndarray:
        """(n, 2) [P(inlier), P(outlier)] as PyOD: 'linear' min-max scales the scores by the
        training scores' range (clipped to [0, 1]); 'unify' applies erf to standardised scores
        (Kriegel et al., "Interpreting and unifying outlier scores", SDM 2011)."""
        test = self.decision_function(X)
        train_scores = self.decision_scores_
        if method == "linear":
            span = train_scores.max() - train_scores.min()
            p = np.clip((test - train_scores.min()) / (span if span > 0 else 1.0), 0.0, 1.0)
        elif method == "unify":
            std = train_scores.std()
            p = np.clip(erf((test - train_scores.mean()) / ((std if std > 0 else 1.0) * np.sqrt(2))), 0.0, 1.0)
        else:
            raise ValueError(f"method={method!r}: expected 'linear' or 'unify'")
        return np.column_stack([1.0 - p, p])
