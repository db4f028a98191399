"""Seed ensembles (jaxad.ensemble): the combination by hand, the Detector's ensemble=K, the
experiment record, and the benchmark's ``<method>_ens<K>`` names."""

import json

import numpy as np
import pytest

import jaxad
from experiments import benchmark
from experiments.run import run_experiment
from jaxad import Detector, ensemble

FAST = {"epochs": 3, "hidden": (8, 4)}


def test_member_seeds_are_disjoint_blocks_and_one_member_is_the_seed():
    assert ensemble.member_seeds(0, 1) == (0,) and ensemble.member_seeds(7, 1) == (7,)
    assert ensemble.member_seeds(0, 3) == (0, 1, 2) and ensemble.member_seeds(2, 3) == (6, 7, 8)


def test_standardised_average_by_hand():
    train = np.array([[1.0, 3.0], [2.0, 2.0]])  # member 0: mean 2, std 1; member 1: constant -> std 1
    mean, std = ensemble.training_stats(train)
    np.testing.assert_array_equal(mean, [2.0, 2.0])
    np.testing.assert_array_equal(std, [1.0, 1.0])
    scores = np.array([[1.0, 3.0, 5.0], [2.0, 2.0, 4.0]])
    # z-scores: member 0 -> -1, 1, 3; member 1 -> 0, 0, 2; mean -> -0.5, 0.5, 2.5
    np.testing.assert_allclose(ensemble.combine(scores, mean, std), [-0.5, 0.5, 2.5])
    # a member on a 100x scale weighs the same as the other once standardised
    wide = scores * [[100.0], [1.0]]
    np.testing.assert_allclose(ensemble.combine(wide, *ensemble.training_stats(train * [[100.0], [1.0]])),
                               [-0.5, 0.5, 2.5])


def test_combine_seeds_groups_consecutive_members():
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(4, 6)), rng.normal(size=(4, 5))
    train_out, test_out = ensemble.combine_seeds(train, test, 2)
    assert train_out.shape == (2, 6) and test_out.shape == (2, 5)
    stats = ensemble.training_stats(train[2:])
    np.testing.assert_allclose(test_out[1], ensemble.combine(test[2:], *stats))
    np.testing.assert_allclose(train_out[1].mean(), 0.0, atol=1e-12)  # standardised on those rows
    same = ensemble.combine_seeds(train, test, 1)
    assert same[0] is train or np.array_equal(same[0], train)
    with pytest.raises(ValueError, match="multiple of members=3"):
        ensemble.combine_seeds(train, test, 3)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "5"])
def test_bad_member_counts_are_named(bad):
    with pytest.raises(ValueError, match=f"ensemble={bad!r}: expected an integer >= 1"):
        ensemble.check_members(bad)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(300, 5)), rng.normal(size=(30, 5)) * 4 + 6


def test_detector_ensemble_averages_its_members_standardised_scores(data, tmp_path):
    normal, outliers = data
    det = Detector("ae", seed=1, ensemble=3, **FAST).fit(normal)
    assert det.fit_result_.seeds == (3, 4, 5)
    assert det.history_["loss"].shape == (3, 3)  # (epochs, members)
    members = [Detector("ae", seed=s, **FAST).fit(normal) for s in (3, 4, 5)]
    member_train = np.stack([m.decision_scores_ for m in members])
    # the vmapped members are the single networks of their seeds (to float32 noise)
    np.testing.assert_allclose(det.decision_scores_,
                               ensemble.combine(member_train, *ensemble.training_stats(member_train)),
                               rtol=1e-4, atol=1e-4)
    test = np.vstack([normal[:50], outliers])
    scores = det.decision_function(test)
    assert scores[50:].min() > scores[:50].max()  # higher = more abnormal
    assert det.threshold_ == pytest.approx(np.percentile(det.decision_scores_, 90))
    assert det.get_params()["ensemble"] == 3
    back = Detector.load(det.save(tmp_path / "ens"))
    np.testing.assert_array_equal(back.decision_function(test), scores)
    assert back.ensemble == 3 and back.history_["loss"].shape == (3, 3)


def test_detector_refuses_a_bad_ensemble_before_training(monkeypatch):
    def no_training(*a, **k):
        raise AssertionError("training started with bad settings")

    monkeypatch.setattr(jaxad.train, "fit", no_training)
    with pytest.raises(ValueError, match="ensemble=0: expected an integer >= 1"):
        Detector("ae", ensemble=0).fit(np.zeros((20, 3)))


def test_experiment_record_of_an_ensemble():
    record = run_experiment("deep_svdd", "wine", seeds=2, ensemble=3, overrides={"epochs": 2}, progress=False)
    assert record["ensemble"] == 3 and record["seeds"] == [0, 1]
    assert len(record["epochs_run"]) == 6  # 2 seeds x 3 members, one vmapped program
    assert len(record["metrics"]["auroc"]["per_seed"]) == 2
    assert record["metrics"]["auroc"]["mean"] > 0.7
    with pytest.raises(ValueError, match="ensemble=0"):
        run_experiment("deep_svdd", "wine", seeds=2, ensemble=0)


def test_benchmark_method_names():
    assert benchmark.parse_method("ae") == ("ae", 1)
    assert benchmark.parse_method("pyod_iforest") == ("pyod_iforest", 1)
    assert benchmark.parse_method("deep_svdd_ens5") == ("deep_svdd", 5)
    assert benchmark.parse_method("rsrae_plus_ens12") == ("rsrae_plus", 12)
    for name in ("ae_ens1", "ae_ens0", "svm_ens3", "pyod_iforest_ens3", "ae_ens", "ae_ensx"):
        assert benchmark.parse_method(name) is None, name
    assert all(benchmark.parse_method(m) for m in benchmark.DEFAULT_ENSEMBLES)


def test_benchmark_runs_an_ensemble_cell_and_keeps_it_in_later_tables(tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["--suite", "builtin", "--datasets", "wine", "--seeds", "2", "--out", str(out)]
    assert benchmark.main(argv + ["--methods", "deep_svdd_ens2"]) == 0
    cell = json.loads(benchmark.cell_path(out, "wine", "deep_svdd_ens2").read_text())
    assert cell["method"] == "deep_svdd_ens2" and cell["ensemble"] == 2 and len(cell["epochs_run"]) == 4
    assert cell["input_width"] is not None  # bucketed as deep_svdd's own cells
    assert cell["metrics"]["auroc"]["mean"] > 0.8
    # another method into the same folder: the ensemble's cell stays in the table, untouched
    stamp = benchmark.cell_path(out, "wine", "deep_svdd_ens2").stat().st_mtime_ns
    capsys.readouterr()
    assert benchmark.main(argv + ["--methods", "ae"]) == 0
    assert "finished cells of ['deep_svdd_ens2']" in capsys.readouterr().out
    assert "| dataset | ae | deep_svdd_ens2 |" in (out / "table.md").read_text()
    assert benchmark.cell_path(out, "wine", "deep_svdd_ens2").stat().st_mtime_ns == stamp
    assert benchmark.main(argv + ["--methods", "ae_ens1"]) == 2
    assert "ae_ens1" in capsys.readouterr().err and not benchmark.cell_path(out, "wine", "ae_ens1").exists()
