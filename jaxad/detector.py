"""The PyOD / scikit-learn face of jaxad: ``Detector(method, **config).fit(X)``.

Follows PyOD's ``BaseDetector`` contract: after ``fit``, ``decision_scores_`` are the training
scores (higher = more abnormal), ``threshold_`` their 100 * (1 - contamination) percentile and
``labels_`` = ``decision_scores_ > threshold_``; ``predict`` applies the same strict ``>``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import erf

from jaxad import ensemble, train
from jaxad.methods import get_method, resolve_config
from jaxad.validation import check_array, check_contamination, row_blocks

SCALERS = ("auto", "standard", "minmax", None)
# Largest |value| trained on without scaling: float32 squares overflow past 1.8e19, and losses sum
# squared errors over features while Adam squares the gradients, so keep four orders of margin.
UNSCALED_MAX = 1e15


class Detector:
    """A jaxad method behind PyOD's detector API.

    Parameters: ``method`` (a name in ``jaxad.METHODS``), ``contamination`` in (0, 0.5]
    (PyOD's default 0.1), ``seed``, ``scale`` fitted on the training data: 'standard' (as PyOD's
    ``preprocessing=True``), 'minmax', None, or 'auto' (default: 'standard' for tables, None for
    images, which the image methods expect in [0, 1]), ``progress`` (tqdm bar over epochs),
    ``ensemble`` (default 1: one network; K > 1 trains K networks, seeds seed * K .. seed * K +
    K - 1, as one vmapped program and scores with the mean of their standardised scores,
    ``jaxad.ensemble``), and any key of the method's config (``Detector("ae", epochs=20,
    hidden=(32, 16))``).

    Scaling statistics are computed in float64 over blocks of rows, and ``decision_function``
    scales and scores a chunk of rows at a time, so memory beyond X stays bounded. A fitted
    detector saves to a folder and loads back with bit-identical scores (``save`` / ``load``).
    """

    def __init__(self, method: str = "ae", contamination: float = 0.1, seed: int = 0,
                 scale: str | None = "auto", progress: bool = False, ensemble: int = 1, **config: Any):
        self.method = method
        self.contamination = contamination
        self.seed = seed
        self.scale = scale
        self.progress = progress
        self.ensemble = ensemble
        self.config = config

    # ---- scikit-learn parameter protocol (config keys are first-class parameters)
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"method": self.method, "contamination": self.contamination, "seed": self.seed,
                "scale": self.scale, "progress": self.progress, "ensemble": self.ensemble, **self.config}

    def set_params(self, **params: Any) -> "Detector":
        for key, value in params.items():
            if key in ("method", "contamination", "seed", "scale", "progress", "ensemble"):
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
        ensemble.check_members(self.ensemble)
        return method, resolve_config(method, self.config)

    def _fit_scaler(self, X: np.ndarray) -> None:
        """Per-feature shift and scale of the training rows, computed in float64 over blocks of
        rows (no float64 copy of X): 'standard' mean and std, 'minmax' min and max - min; a
        constant feature gets scale 1."""
        self.scale_ = ("standard" if X.ndim == 2 else None) if self.scale == "auto" else self.scale
        flat = X.reshape(len(X), -1)
        blocks = [flat[start:stop] for start, stop in row_blocks(*flat.shape)]
        if self.scale_ == "standard":
            mean = sum(b.sum(axis=0, dtype=np.float64) for b in blocks) / len(flat)
            std = np.sqrt(sum(np.square(b - mean).sum(axis=0) for b in blocks) / len(flat))
            self._shift, self._scale = mean, np.where(std > 0, std, 1.0)
        elif self.scale_ == "minmax":
            lo = np.min([b.min(axis=0) for b in blocks], axis=0).astype(np.float64)
            span = np.max([b.max(axis=0) for b in blocks], axis=0).astype(np.float64) - lo
            self._shift, self._scale = lo, np.where(span > 0, span, 1.0)
        else:
            self._shift, self._scale = 0.0, 1.0

    def _transform(self, X: np.ndarray) -> np.ndarray:
        """Rows of X scaled (in float64) and as float32. A scaled value beyond float32's range
        (X far outside the training data) is a ValueError naming X, not an inf on the device."""
        if self.scale_ is None:
            return np.asarray(X, dtype=np.float32)
        flat = X.reshape(len(X), -1) - self._shift  # float64, as the shift: no int wrap, no float16 overflow
        flat /= self._scale
        with np.errstate(over="ignore"):  # reported just below
            out = flat.reshape(X.shape).astype(np.float32)
        if not np.isfinite(out).all():
            raise ValueError(f"X: scaled by the training data's statistics (scale={self.scale_!r}), values reach "
                             f"{np.abs(flat).max():.3g}, beyond float32's range: X lies far outside the "
                             "training data")
        return out

    def _transform_all(self, X: np.ndarray) -> np.ndarray:
        """``_transform`` of every row into one float32 array, a block of rows at a time."""
        if self.scale_ is None:
            return np.asarray(X, dtype=np.float32)
        out = np.empty(X.shape, np.float32)
        for start, stop in row_blocks(len(X), int(np.prod(X.shape[1:]))):
            out[start:stop] = self._transform(X[start:stop])
        return out

    def fit(self, X, y=None) -> "Detector":
        """Fit on X (n, features) or, for image methods, (n, H, W, C); y is ignored
        (unsupervised, as in PyOD)."""
        method, config = self._check_settings()
        X = check_array(X, name="X", ndims=method.input_ndims)
        method.validate(config, X.shape)
        self.n_features_in_ = int(np.prod(X.shape[1:]))
        self._input_shape = X.shape[1:]
        self._fit_scaler(X)
        if self.scale_ is None:
            _check_unscaled_range(X)
        Xs = self._transform_all(X)
        seeds = ensemble.member_seeds(int(self.seed), int(self.ensemble))
        self.fit_result_ = train.fit(method, config, Xs, seeds=seeds, progress=self.progress)
        self.config_ = config
        self.history_ = _member_history(self.fit_result_.history)
        member_scores = train.fit_result_scores(self.fit_result_, Xs)
        self._member_stats = ensemble.training_stats(member_scores)
        self.decision_scores_ = self._combined(member_scores)
        self.threshold_ = float(np.percentile(self.decision_scores_, 100 * (1 - self.contamination)))
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        return self

    def _combined(self, member_scores: np.ndarray) -> np.ndarray:
        """(members, n) scores -> (n,): the one network's scores, or the ensemble's."""
        if len(member_scores) == 1:
            return member_scores[0].astype(np.float64)
        return ensemble.combine(member_scores, *self._member_stats)

    def _check_fitted(self) -> None:
        if not hasattr(self, "fit_result_"):
            raise RuntimeError("this Detector is not fitted yet: call fit(X) first")

    def _checked(self, X) -> np.ndarray:
        """X validated against the fit, unscaled and uncopied (scaling runs a chunk at a time)."""
        self._check_fitted()
        X = check_array(X, name="X", ndims=(len(self._input_shape) + 1,))
        if X.shape[1:] != self._input_shape:
            raise ValueError(f"X: expected samples of shape {self._input_shape} as in fit, "
                             f"got {X.shape[1:]}")
        return X

    # ---- PyOD's prediction API
    def decision_function(self, X) -> np.ndarray:
        """Anomaly scores (n,), higher = more abnormal. X is scaled and scored a chunk of rows
        at a time (``train.score``), so memory beyond X itself stays bounded."""
        X = self._checked(X)
        try:
            scores = train.score(self.fit_result_.method, self.fit_result_.states, X, transform=self._transform)
        except train.DivergenceError:
            raise ValueError("X: some scores are not finite: X lies far outside the training data's range "
                             "(the fitted model's training scores were finite); no scores are returned") from None
        return self._combined(scores)

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

    # ---- saving and loading
    def save(self, path) -> Path:
        """Write the fitted detector to the folder ``path``, replacing it atomically if it exists:
        ``detector.json`` (the parameters, the resolved config, the scaling kind, threshold_,
        the input shape, seeds, epochs run and timings), ``arrays.npz`` (the scaler statistics,
        decision_scores_, the ensemble members' training-score means and stds, and the training
        history) and ``states/`` (the train states, written by orbax). ``Detector.load(path)``
        gives back a detector with bit-identical scores."""
        from jaxad import __version__, checkpoint

        self._check_fitted()
        result = self.fit_result_
        meta = {"format": checkpoint.FORMAT_VERSION, "jaxad_version": __version__, "params": self.get_params(),
                "config": self.config_, "scale_": self.scale_, "threshold_": self.threshold_,
                "input_shape": tuple(int(d) for d in self._input_shape), "seeds": result.seeds,
                "epochs_run": result.epochs_run, "sharding": result.sharding,
                "seconds": {k: getattr(result, k) for k in ("init_seconds", "compile_seconds", "loop_seconds",
                                                            "train_seconds")}}
        arrays = {"shift": np.asarray(self._shift), "scale": np.asarray(self._scale),
                  "decision_scores": self.decision_scores_, "member_mean": self._member_stats[0],
                  "member_std": self._member_stats[1],
                  **{f"history.{k}": v for k, v in result.history.items()}}

        def write(folder: Path) -> None:
            (folder / "detector.json").write_text(json.dumps(checkpoint.encode_json(meta), indent=1))
            np.savez(folder / "arrays.npz", **arrays)
            checkpoint.save_states(folder / "states", result.states)

        return checkpoint.replace_folder(path, write)

    @classmethod
    def load(cls, path) -> "Detector":
        """A detector saved by ``save``: fitted, with the same parameters, threshold and states."""
        from jaxad import checkpoint

        folder = Path(path)
        if not (folder / "detector.json").is_file():
            raise FileNotFoundError(f"path={str(path)!r}: no saved Detector there (detector.json missing)")
        meta = checkpoint.decode_json(json.loads((folder / "detector.json").read_text()))
        det = cls(**meta["params"])
        method, config = get_method(det.method), meta["config"]
        like = checkpoint.abstract_states(method, config, meta["input_shape"], len(meta["seeds"]))
        states = checkpoint.restore_states(folder / "states", like)
        with np.load(folder / "arrays.npz") as arrays:
            history = {k.split(".", 1)[1]: arrays[k] for k in arrays.files if k.startswith("history.")}
            det._shift, det._scale = (0.0, 1.0) if meta["scale_"] is None else (arrays["shift"], arrays["scale"])
            det.decision_scores_ = arrays["decision_scores"]
            # detectors saved before ensembles hold one network and no member statistics
            det._member_stats = ((arrays["member_mean"], arrays["member_std"]) if "member_mean" in arrays.files
                                 else (np.zeros(1), np.ones(1)))
        det.fit_result_ = train.FitResult(method=method, config=dict(config), seeds=tuple(meta["seeds"]),
                                          states=states, history=history, epochs_run=np.asarray(meta["epochs_run"]),
                                          sharding=meta["sharding"], **meta["seconds"])
        det.config_, det.scale_, det.threshold_ = dict(config), meta["scale_"], float(meta["threshold_"])
        det.history_ = _member_history(history)
        det.labels_ = (det.decision_scores_ > det.threshold_).astype(int)
        det._input_shape = tuple(meta["input_shape"])
        det.n_features_in_ = int(np.prod(det._input_shape))
        return det


def _member_history(history: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The fit's per-epoch history {name: (epochs, members)} as ``history_``: (epochs,) arrays
    for one network, (epochs, members) for an ensemble."""
    return {k: v[:, 0] if v.shape[1] == 1 else v for k, v in history.items()}


def _check_unscaled_range(X: np.ndarray) -> None:
    """ValueError naming X when unscaled training values exceed ``UNSCALED_MAX``."""
    flat = X.reshape(len(X), -1)
    largest = max(float(np.max(np.abs(flat[a:b].astype(np.float64)))) for a, b in row_blocks(*flat.shape))
    if largest > UNSCALED_MAX:
        raise ValueError(f"X: values up to {largest:.3g} and no scaling (scale='auto' leaves images as they are): "
                         "training would overflow float32; rescale X (images to [0, 1]) or pass "
                         "scale='minmax' or 'standard'")
