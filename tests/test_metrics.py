"""Metrics and threshold rules."""

import warnings

import numpy as np
import pytest

from jaxad import metrics as M


def test_auroc_and_ap_perfect_and_reversed():
    y = np.array([0, 0, 1, 1])
    assert M.auroc(y, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert M.auroc(y, [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert M.average_precision(y, [0.1, 0.2, 0.8, 0.9]) == 1.0


def test_one_class_gives_nan_with_warning_not_a_crash():
    with pytest.warns(RuntimeWarning, match="one class"):
        assert np.isnan(M.auroc([0, 0, 0], [0.1, 0.2, 0.3]))
    with pytest.warns(RuntimeWarning, match="one class"):
        assert np.isnan(M.average_precision([1, 1], [0.1, 0.2]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = M.evaluate([0, 0], [0.1, 0.9], 0.5)
    assert np.isnan(out["auroc"]) and np.isnan(out["recall"])  # no anomalies to recall


def test_thresholds():
    s = np.arange(101, dtype=float)
    assert M.threshold_contamination(s, 0.1) == 90.0
    assert M.threshold_mean_std([1.0, 3.0], k=1.0) == 3.0
    assert M.threshold("fixed", value=0.5) == 0.5
    assert M.threshold("top_fraction", test_scores=s, contamination=0.2) == 80.0
    with pytest.raises(ValueError, match="rule='median'"):
        M.threshold("median", train_scores=s)


def test_classification_metrics_by_hand():
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.9, 0.8, 0.3])
    out = M.classification_metrics(y, s, 0.5)  # flags rows 2 and 3
    # one of three normals flagged (row 2), one of two anomalies (row 3)
    assert out == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "accuracy": 0.6,
                                 "normal_flagged": 1 / 3, "anomaly_flagged": 0.5})
    normal = M.classification_metrics(y, s, 0.5, positive="normal")
    # predicted normal: rows 0, 1, 4 (two truly normal); normals: rows 0, 1, 2
    assert normal["precision"] == pytest.approx(2 / 3) and normal["recall"] == pytest.approx(2 / 3)
    # the flagged shares do not depend on which class is called positive
    assert normal["normal_flagged"] == out["normal_flagged"] and normal["anomaly_flagged"] == 0.5


def test_strict_greater_than_threshold():
    out = M.classification_metrics([0, 1], [0.5, 0.6], 0.5)
    assert out["precision"] == 1.0  # a score equal to the threshold is not flagged


def test_summarize_mean_std_per_seed():
    out = M.summarize([{"auroc": 0.8}, {"auroc": 1.0}, {"auroc": float("nan")}])
    assert out["auroc"]["mean"] == pytest.approx(0.9)
    assert out["auroc"]["std"] == pytest.approx(0.1)
    assert len(out["auroc"]["per_seed"]) == 3
