"""Splits and the dataset registry."""

import time

import numpy as np
import pytest

from jaxad.data import (DATASETS, DatasetNotFoundError, adbench_split, class_split, contaminated_split,
                        holdout_one_class_split, load_split, one_class_split)
from jaxad.data.builtin import blobs2d_arrays


def labelled(n=100, anomalies=20, d=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = np.zeros(n, int)
    y[:anomalies] = 1
    return x, y


def test_one_class_split_trains_on_normals_only():
    x, y = labelled()
    s = one_class_split("t", x, y, test_size=0.25, seed=0)
    assert s.y_train.sum() == 0 and len(s.x_train) == 60
    assert s.y_test.sum() == 20 and len(s.x_test) == 40
    # standard scaling fitted on train
    np.testing.assert_allclose(s.x_train.mean(0), 0, atol=1e-5)


def test_class_split_uses_given_classes():
    xtr, ctr = np.arange(10.0)[:, None], np.arange(10) % 3
    xte, cte = np.arange(9.0)[:, None], np.arange(9) % 3
    s = class_split("t", xtr, ctr, xte, cte, normal_classes=[0], anomaly_classes=[1])
    assert set(s.x_train[:, 0]) == {0.0, 3.0, 6.0, 9.0}
    assert len(s.x_test) == 6 and s.y_test.sum() == 3
    everything = class_split("t", xtr, ctr, xte, cte, normal_classes=[0])
    assert len(everything.x_test) == 9 and everything.y_test.sum() == 6


def test_contaminated_split_is_transductive_with_ratio():
    x, y = labelled(n=200, anomalies=50)
    s = contaminated_split("t", x, y, contamination=0.1, seed=0)
    assert s.x_train is s.x_test
    assert abs(s.y_train.mean() - 0.1) < 0.01


def test_adbench_split_stratified_minmax_and_subsample():
    x, y = labelled(n=1000, anomalies=100)
    s = adbench_split("t", x, y, seed=1)
    assert len(s.x_train) == 700 and len(s.x_test) == 300
    assert s.y_train.mean() == pytest.approx(0.1) and s.y_test.mean() == pytest.approx(0.1)
    assert s.x_train.min() == pytest.approx(0) and s.x_train.max() == pytest.approx(1)
    small = adbench_split("t", x, y, seed=1, max_rows=500)
    assert len(small.x_train) + len(small.x_test) == 500
    again = adbench_split("t", x, y, seed=1)
    np.testing.assert_array_equal(again.x_test, s.x_test)


def test_holdout_split_matches_tutorial_recipe():
    x, y = labelled(n=50, anomalies=10)
    s = holdout_one_class_split("t", x, y, test_size=0.2, random_state=21, scaling="global_minmax")
    assert len(s.x_test) == 10 and s.y_train.sum() == 0
    assert s.x_train.min() >= 0.0


def test_blobs2d_is_the_notebook_data():
    x_train, x_test, x_out = blobs2d_arrays(42)
    rng = np.random.RandomState(42)
    X = 0.3 * rng.randn(5000, 2)
    np.testing.assert_array_equal(x_train[:5000], X + 2)
    assert x_test.shape == (400, 2) and x_out.shape == (200, 2)
    assert x_out.min() >= -4 and x_out.max() <= 4
    s = load_split("blobs2d")
    assert s.x_train.shape == (10000, 2) and s.x_test.shape == (600, 2) and s.y_test.sum() == 200


@pytest.mark.parametrize("name", ["blobs2d", "digits", "breast_cancer", "wine"])
def test_builtin_sets_need_no_files(name, monkeypatch):
    monkeypatch.delenv("JAXAD_DATA_DIR", raising=False)
    s = load_split(name)
    assert s.y_train.sum() == 0 and 0 < s.y_test.sum() < len(s.y_test)
    assert s.x_train.dtype == np.float32


def test_registry_errors():
    with pytest.raises(KeyError, match="dataset='mnist': unknown"):
        load_split("mnist")
    with pytest.raises(KeyError, match="normal_klass"):
        load_split("digits", normal_klass=3)
    with pytest.raises(ValueError, match="normal_class=42"):
        load_split("digits", normal_class=42)


@pytest.mark.parametrize("name", ["fashion_mnist", "ecg5000", "adbench/5_campaign"])
def test_absent_files_fail_fast_with_instructions(name, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXAD_CACHE_DIR", str(tmp_path / "cache"))
    start = time.perf_counter()
    with pytest.raises(DatasetNotFoundError) as err:
        load_split(name, data_dir=tmp_path)
    assert time.perf_counter() - start < 1.0
    assert str(tmp_path) in str(err.value)
    monkeypatch.delenv("JAXAD_DATA_DIR", raising=False)
    with pytest.raises(DatasetNotFoundError, match="JAXAD_DATA_DIR"):
        load_split(name)


def test_registry_lists_the_foundation_sets():
    assert {"blobs2d", "digits", "breast_cancer", "wine", "fashion_mnist", "ecg5000"} <= set(DATASETS)


@pytest.mark.data
def test_real_ecg_split_matches_tutorial(shared_data_dir):
    s = load_split("ecg5000", data_dir=shared_data_dir, source="files")
    assert s.x_test.shape == (1000, 140)
    assert s.x_train.shape[1] == 140 and s.y_train.sum() == 0
    # the tutorial's test split has 1000 rows; normal rows are label 1 in the file -> y = 0 here
    assert 300 < s.y_test.sum() < 500
    via_tfds = load_split("ecg5000", data_dir=shared_data_dir, source="tfds")
    np.testing.assert_array_equal(via_tfds.x_test, s.x_test)


@pytest.mark.data
def test_real_fashion_mnist_german_task(shared_data_dir):
    s = load_split("fashion_mnist", data_dir=shared_data_dir, source="files", normal_class=0, anomaly_classes=(1,))
    assert s.x_train.shape == (6000, 28, 28, 1) and s.x_test.shape == (2000, 28, 28, 1)
    assert s.y_test.sum() == 1000 and 0.0 <= s.x_train.min() and s.x_train.max() <= 1.0
