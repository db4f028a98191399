"""Detection metrics and threshold rules. Scores: higher = more abnormal; labels: 1 = anomaly.

Every metric degrades to NaN with a ``RuntimeWarning`` when the labels hold one class only
(the RSRAE seed notebook crashed on exactly that) instead of raising.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
from sklearn import metrics as skm


def _one_class(y: np.ndarray, what: str) -> bool:
    if np.unique(y).size < 2:
        warnings.warn(f"{what} is undefined with one class only in the labels; returning NaN",
                      RuntimeWarning, stacklevel=3)
        return True
    return False


def auroc(y_true, scores) -> float:
    """Area under the ROC curve (1 = anomaly, higher score = more abnormal)."""
    y = np.asarray(y_true)
    return float("nan") if _one_class(y, "AUROC") else float(skm.roc_auc_score(y, scores))


def average_precision(y_true, scores) -> float:
    """Average precision with anomalies as the positive class."""
    y = np.asarray(y_true)
    return float("nan") if _one_class(y, "AP") else float(skm.average_precision_score(y, scores))


# ---------------------------------------------------------------- thresholds

def threshold_contamination(train_scores, contamination: float) -> float:
    """PyOD's rule: the 100 * (1 - contamination) percentile of the training scores."""
    return float(np.percentile(np.asarray(train_scores), 100.0 * (1.0 - contamination)))


def threshold_mean_std(train_scores, k: float = 1.0) -> float:
    """mean + k * std of the training scores: the seed tutorials' Gaussian rule (k = 1)."""
    s = np.asarray(train_scores, dtype=np.float64)
    return float(s.mean() + k * s.std())


def threshold_top_fraction(scores, fraction: float) -> float:
    """The score above which the top ``fraction`` of ``scores`` lie (Zenati et al.'s KDD rule,
    applied to the test scores)."""
    return float(np.percentile(np.asarray(scores), 100.0 * (1.0 - fraction)))


def threshold(rule: str, *, train_scores=None, test_scores=None, contamination: float = 0.1,
              k: float = 1.0, value: float | None = None) -> float:
    """Dispatch on ``rule``: 'contamination', 'mean_std', 'top_fraction' or 'fixed'."""
    if rule == "contamination":
        return threshold_contamination(train_scores, contamination)
    if rule == "mean_std":
        return threshold_mean_std(train_scores, k)
    if rule == "top_fraction":
        return threshold_top_fraction(test_scores, contamination)
    if rule == "fixed":
        if value is None:
            raise ValueError("threshold rule 'fixed' needs value=...")
        return float(value)
    raise ValueError(f"rule={rule!r}: expected 'contamination', 'mean_std', 'top_fraction' or 'fixed'")


# ---------------------------------------------------------------- at a threshold

def classification_metrics(y_true, scores, thresh: float, *, positive: str = "anomaly") -> dict[str, float]:
    """Precision, recall, F1 and accuracy of ``score > thresh`` (flagged = anomaly), and the
    shares of normal and of anomalous rows flagged (``normal_flagged`` is the false-positive
    rate, ``anomaly_flagged`` the detection rate, whatever ``positive`` is).

    ``positive='normal'`` scores the normal class as positive, as TensorFlow's ECG tutorial
    does (its "precision" is that of the rows it calls normal)."""
    if positive not in ("anomaly", "normal"):
        raise ValueError(f"positive={positive!r}: expected 'anomaly' or 'normal'")
    y = np.asarray(y_true).astype(int)
    pred = (np.asarray(scores) > thresh).astype(int)
    shares = {"normal_flagged": float(np.mean(pred[y == 0])) if np.any(y == 0) else float("nan"),
              "anomaly_flagged": float(np.mean(pred[y == 1])) if np.any(y == 1) else float("nan")}
    if positive == "normal":
        y, pred = 1 - y, 1 - pred
    tp = int(np.sum((pred == 1) & (y == 1)))
    fp = int(np.sum((pred == 1) & (y == 0)))
    fn = int(np.sum((pred == 0) & (y == 1)))
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    if tp + fp == 0 or tp + fn == 0:
        warnings.warn("precision/recall undefined (nothing predicted or no positives); NaN",
                      RuntimeWarning, stacklevel=2)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else float("nan")
    return {"precision": precision, "recall": recall, "f1": f1,
            "accuracy": float(np.mean(pred == y)), **shares}


def evaluate(y_true, scores, thresh: float | None = None, *, positive: str = "anomaly") -> dict[str, float]:
    """AUROC, AP and (when a threshold is given) the metrics at that threshold."""
    out = {"auroc": auroc(y_true, scores), "ap": average_precision(y_true, scores)}
    if thresh is not None:
        out.update(classification_metrics(y_true, scores, thresh, positive=positive))
    return out


def summarize(per_seed: list[Mapping[str, float]]) -> dict[str, dict]:
    """{metric: {"mean", "std", "per_seed"}} over seeds (NaNs ignored in mean/std)."""
    keys = list(per_seed[0]) if per_seed else []
    out = {}
    for k in keys:
        vals = np.array([m[k] for m in per_seed], dtype=np.float64)
        finite = vals[np.isfinite(vals)]
        out[k] = {
            "mean": float(finite.mean()) if finite.size else float("nan"),
            "std": float(finite.std()) if finite.size else float("nan"),
            "per_seed": [float(v) for v in vals],
        }
    return out
