"""The PyOD-style Detector: contract, scikit-learn protocol, bad input."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import jaxad
from jaxad import Detector

FAST = {"epochs": 3, "hidden": (8, 4)}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(300, 5))
    outliers = rng.normal(size=(30, 5)) * 4 + 6
    return normal, outliers


@pytest.fixture(scope="module")
def fitted(data):
    return Detector("ae", contamination=0.1, **FAST).fit(data[0])


def test_pyod_contract(fitted, data):
    normal, outliers = data
    d = fitted
    assert d.decision_scores_.shape == (300,)
    assert d.threshold_ == pytest.approx(np.percentile(d.decision_scores_, 90))
    np.testing.assert_array_equal(d.labels_, (d.decision_scores_ > d.threshold_).astype(int))
    assert 0.05 <= d.labels_.mean() <= 0.11
    test = np.vstack([normal[:50], outliers])
    scores = d.decision_function(test)
    assert scores[50:].mean() > scores[:50].mean()  # higher = more abnormal
    np.testing.assert_array_equal(d.predict(test), (scores > d.threshold_).astype(int))
    assert d.predict(outliers).mean() > 0.9
    proba = d.predict_proba(test)
    assert proba.shape == (80, 2) and np.allclose(proba.sum(1), 1) and proba.min() >= 0
    unify = d.predict_proba(test, method="unify")
    assert unify[50:, 1].mean() > unify[:50, 1].mean()
    assert set(d.history_) >= {"loss"} and len(d.history_["loss"]) == 3


def test_pandas_input_equals_numpy(fitted, data):
    frame = pd.DataFrame(data[0], columns=list("abcde"))
    np.testing.assert_allclose(fitted.decision_function(frame), fitted.decision_function(data[0]), rtol=1e-6)


def test_sklearn_params_and_clone(fitted):
    params = fitted.get_params()
    assert params["method"] == "ae" and params["epochs"] == 3 and params["hidden"] == (8, 4)
    c = clone(fitted)
    assert c.get_params() == params and not hasattr(c, "decision_scores_")
    c.set_params(epochs=1, contamination=0.2)
    assert c.get_params()["epochs"] == 1 and c.contamination == 0.2
    assert "Detector(method='ae'" in repr(c)


def test_same_seed_same_scores_different_seed_differs(data):
    a = Detector("ae", seed=3, **FAST).fit(data[0]).decision_scores_
    b = Detector("ae", seed=3, **FAST).fit(data[0]).decision_scores_
    c = Detector("ae", seed=4, **FAST).fit(data[0]).decision_scores_
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_predict_and_unfitted_error(data):
    with pytest.raises(RuntimeError, match="not fitted"):
        Detector("ae").decision_function(data[0])
    labels = Detector("ae", **FAST).fit_predict(data[0])
    assert labels.shape == (300,)


def test_image_input_for_dense_ae():
    x = np.random.default_rng(0).random((40, 6, 6, 1)).astype(np.float32)
    d = Detector("ae", scale=None, epochs=1, hidden=(8,)).fit(x)
    assert d.decision_function(x).shape == (40,)


def test_auto_scale_standardises_tables_and_leaves_images_alone():
    assert Detector("ae", epochs=1, hidden=(4,)).fit(GOOD).scale_ == "standard"
    images = np.random.default_rng(0).random((16, 8, 8, 1)).astype(np.float32)
    d = Detector("conv_ae", epochs=1).fit(images)
    assert d.scale_ is None and d.decision_function(images).shape == (16,)


# ---------------------------------------------------------------- bad input, before training
GOOD = np.random.default_rng(0).normal(size=(20, 3))


def _nan():
    x = GOOD.copy()
    x[3, 1] = np.nan
    return x


def _inf():
    x = GOOD.copy()
    x[0, 0] = np.inf
    return x


@pytest.mark.parametrize("X, message", [
    (GOOD[0], "expected a 2-D"),
    (GOOD[None], "expected a 2-D"),
    (np.zeros((0, 3)), "at least one sample"),
    (np.zeros((5, 0)), "at least one sample"),
    (_nan(), "NaN or infinite"),
    (_inf(), "NaN or infinite"),
    (np.array([["a", "b"], ["c", "d"]]), "numeric"),
    (pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}), "non-numeric"),
    ([[1.0, 2.0], [3.0]], "rectangular|numeric"),
    (GOOD * 1e300, "float32"),
])
def test_bad_X_raises_value_error_naming_X(X, message, monkeypatch):
    def no_training(*a, **k):
        raise AssertionError("training started on bad input")

    monkeypatch.setattr(jaxad.train, "fit", no_training)
    with pytest.raises(ValueError, match=message) as err:
        Detector("ae").fit(X)
    assert str(err.value).startswith("X")


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"contamination": 0.0}, ValueError, r"contamination=0.0: expected a number in \(0, 0.5\]"),
    ({"contamination": 0.6}, ValueError, "contamination=0.6"),
    ({"contamination": "a lot"}, ValueError, "contamination='a lot'"),
    ({"method": "svm"}, KeyError, "method='svm': unknown method"),
    ({"hiden": (3,)}, KeyError, "hiden"),
    ({"hidden": ()}, ValueError, "hidden=()"),
    ({"hidden": (8, -1)}, ValueError, "hidden="),
    ({"loss": "huber"}, ValueError, "loss='huber'"),
    ({"activation": "swishy"}, ValueError, "activation='swishy'"),
    ({"epochs": 0}, ValueError, "epochs=0"),
    ({"batch_size": 2.5}, ValueError, "batch_size=2.5"),
    ({"dropout": 1.0}, ValueError, "dropout=1.0"),
    ({"lr": -1.0}, ValueError, "lr=-1.0"),
    ({"scale": "robust"}, ValueError, "scale='robust'"),
    ({"seed": "one"}, ValueError, "seed='one'"),
])
def test_bad_settings_raise_before_training(kwargs, exc, message, monkeypatch):
    def no_training(*a, **k):
        raise AssertionError("training started with bad settings")

    monkeypatch.setattr(jaxad.train, "fit", no_training)
    with pytest.raises(exc, match=message):
        Detector(**kwargs).fit(GOOD)


def test_feature_count_mismatch_at_predict(fitted):
    with pytest.raises(ValueError, match=r"X: expected samples of shape \(5,\) as in fit, got \(4,\)"):
        fitted.decision_function(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        fitted.predict(np.full((2, 5), np.nan))
