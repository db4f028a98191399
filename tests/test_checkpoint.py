"""Checkpoints (orbax): a fitted Detector saves and loads with bit-identical scores, for every
method; a training run checkpoints every epoch and, interrupted (an exception, or SIGKILL of
its process), resumes from the last checkpoint to the results of an uninterrupted run, bit for
bit; the driver's --checkpoint-dir does the same from the command line."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from conftest import tiny_setup
from experiments import run
from jaxad import Detector, checkpoint, train
from jaxad.methods import METHODS, get_method, resolve_config

TESTS = Path(__file__).resolve().parent


class Interrupt(Exception):
    pass


def stop_at(stop_epoch: int):
    """An on_epoch callback interrupting the run at ``stop_epoch`` (0-based); fit calls it before
    that epoch's checkpoint, so the last checkpoint holds ``stop_epoch`` epochs."""

    def callback(epoch, metrics):
        if epoch == stop_epoch:
            raise Interrupt

    return callback


def saved_epochs(directory: Path) -> list[int]:
    """The complete checkpoints (orbax renames a step's folder to its number once written)."""
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit()) if directory.is_dir() else []


@pytest.mark.parametrize("name", sorted(METHODS))
def test_detector_save_and_load_give_bit_identical_scores(name, tmp_path):
    overrides, x = tiny_setup(name)
    det = Detector(name, contamination=0.1, seed=3, **overrides).fit(x)
    x_new = tiny_setup(name, n=40, seed=1)[1]
    path = det.save(tmp_path / "detector")
    assert sorted(p.name for p in path.iterdir()) == ["arrays.npz", "detector.json", "states"]
    back = Detector.load(path)
    np.testing.assert_array_equal(back.decision_function(x_new), det.decision_function(x_new))
    np.testing.assert_array_equal(back.decision_scores_, det.decision_scores_)
    np.testing.assert_array_equal(back.labels_, det.labels_)
    np.testing.assert_array_equal(back.predict_proba(x_new), det.predict_proba(x_new))
    assert back.threshold_ == det.threshold_ and back.get_params() == det.get_params()
    assert back.config_ == det.config_ and back.scale_ == det.scale_
    assert back.history_.keys() == det.history_.keys()
    for a, b in zip(jax.tree.leaves(back.fit_result_.states), jax.tree.leaves(det.fit_result_.states)):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_detector_save_replaces_a_folder_and_load_rejects_other_folders(tmp_path):
    overrides, x = tiny_setup("ae")
    first = Detector("ae", seed=0, **overrides).fit(x)
    second = Detector("ae", seed=1, **overrides).fit(x)
    first.save(tmp_path / "d")
    second.save(tmp_path / "d")  # atomically replaced: no leftovers beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
    np.testing.assert_array_equal(Detector.load(tmp_path / "d").decision_function(x), second.decision_function(x))
    with pytest.raises(FileNotFoundError, match="no saved Detector"):
        Detector.load(tmp_path)
    with pytest.raises(RuntimeError, match="not fitted"):
        Detector("ae").save(tmp_path / "e")


@pytest.mark.parametrize("name", sorted(METHODS))
def test_interrupted_fit_resumes_to_the_uninterrupted_result(name, tmp_path):
    overrides, x = tiny_setup(name)  # 2 epochs: interrupted in the second, after the first's checkpoint
    config = resolve_config(name, overrides)
    whole = train.fit(name, config, x, seeds=(0, 1), progress=False)
    with pytest.raises(Interrupt):
        train.fit(name, config, x, seeds=(0, 1), progress=False, checkpoint_dir=tmp_path, on_epoch=stop_at(1))
    resumed = train.fit(name, config, x, seeds=(0, 1), progress=False, checkpoint_dir=tmp_path)
    # conv methods on CPU train seeds one after another: the second never started, so it starts afresh
    one_by_one = get_method(name).cpu_host_loop and jax.default_backend() == "cpu"
    assert resumed.start_epoch == (0 if one_by_one else 1)
    np.testing.assert_array_equal(train.fit_result_scores(resumed, x), train.fit_result_scores(whole, x))
    assert resumed.history.keys() == whole.history.keys()
    for key in whole.history:
        np.testing.assert_array_equal(resumed.history[key], whole.history[key])
    np.testing.assert_array_equal(resumed.epochs_run, whole.epochs_run)


def test_stopping_rule_state_is_restored(tmp_path):
    # never improves by 1e9: each seed stops after patience + 1 = 2 epochs. A rule restarted
    # from scratch on resume would wait 2 more epochs.
    overrides, x = tiny_setup("ae", epochs=6, patience=1, min_delta=1e9)
    config = resolve_config("ae", overrides)
    whole = train.fit("ae", config, x, seeds=(0, 1), progress=False)
    assert whole.epochs_run.tolist() == [2, 2]
    with pytest.raises(Interrupt):
        train.fit("ae", config, x, seeds=(0, 1), progress=False, checkpoint_dir=tmp_path, on_epoch=stop_at(1))
    resumed = train.fit("ae", config, x, seeds=(0, 1), progress=False, checkpoint_dir=tmp_path)
    assert resumed.start_epoch == 1 and resumed.epochs_run.tolist() == [2, 2]
    np.testing.assert_array_equal(resumed.history["loss"], whole.history["loss"])
    np.testing.assert_array_equal(train.fit_result_scores(resumed, x), train.fit_result_scores(whole, x))
    # a finished run resumes to its end without training
    again = train.fit("ae", config, x, seeds=(0, 1), progress=False, checkpoint_dir=tmp_path)
    assert again.start_epoch == 2 and again.epochs_run.tolist() == [2, 2]


def test_checkpoint_every_k_epochs_and_the_last(tmp_path):
    overrides, x = tiny_setup("ae", epochs=5)
    train.fit("ae", resolve_config("ae", overrides), x, progress=False, checkpoint_dir=tmp_path, checkpoint_every=2)
    assert saved_epochs(tmp_path) == [4, 5]  # saved at 2, 4 and 5; the two latest kept
    progress = json.loads((tmp_path / "5" / "progress" / "metadata").read_text())
    assert checkpoint.decode_json(progress)["epochs_done"] == 5
    with pytest.raises(ValueError, match="checkpoint_every=0"):
        train.fit("ae", resolve_config("ae", overrides), x, progress=False, checkpoint_dir=tmp_path / "b",
                  checkpoint_every=0)


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    overrides, x = tiny_setup("ae")
    config = resolve_config("ae", overrides)
    train.fit("ae", config, x, progress=False, checkpoint_dir=tmp_path)
    for other_x, other_config, seeds in [(x + 1, config, (0,)), (x, {**config, "lr": 0.01}, (0,)), (x, config, (1,))]:
        with pytest.raises(ValueError, match="checkpoint_dir=.*another run"):
            train.fit("ae", other_config, other_x, seeds=seeds, progress=False, checkpoint_dir=tmp_path)


KILLED_RUN = f"""
import sys, time
import numpy as np
sys.path.insert(0, {str(TESTS)!r})
from conftest import tiny_setup
from jaxad import train
from jaxad.methods import resolve_config
overrides, x = tiny_setup("ae", n=256, epochs=12)
slow = (lambda epoch, metrics: time.sleep(0.1)) if sys.argv[3] == "slow" else None
result = train.fit("ae", resolve_config("ae", overrides), x, seeds=(0, 1), progress=False,
                   checkpoint_dir=sys.argv[1], on_epoch=slow)
np.save(sys.argv[2], train.fit_result_scores(result, x))
print("resumed at epoch", result.start_epoch)
"""


def test_sigkilled_run_resumes_to_the_uninterrupted_result(tmp_path):
    ckpt, scores = tmp_path / "ckpt", tmp_path / "scores.npy"
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(TESTS.parent))
    command = [sys.executable, "-c", KILLED_RUN, str(ckpt), str(scores)]
    victim = subprocess.Popen(command + ["slow"], cwd=TESTS.parent, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not saved_epochs(ckpt) and victim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert victim.poll() is None, f"the run ended before it could be killed: {victim.communicate()[1][-2000:]}"
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.kill()
        victim.communicate()
    assert victim.returncode == -signal.SIGKILL and not scores.exists()
    killed_at = saved_epochs(ckpt)[-1]
    assert 1 <= killed_at < 12

    proc = subprocess.run(command + ["fast"], cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed_at = int(proc.stdout.split("resumed at epoch")[1])
    assert resumed_at >= killed_at
    overrides, x = tiny_setup("ae", n=256, epochs=12)
    whole = train.fit("ae", resolve_config("ae", overrides), x, seeds=(0, 1), progress=False)
    np.testing.assert_array_equal(np.load(scores), train.fit_result_scores(whole, x))


def test_driver_checkpoint_dir_resumes(tmp_path):
    args = ["ae", "wine", "--seeds", "2", "--no-progress", "epochs=3", "hidden=(8, 4)",
            "--checkpoint-dir", str(tmp_path / "ckpt")]
    assert run.main(args + ["--out", str(tmp_path / "a")]) == 0
    assert saved_epochs(tmp_path / "ckpt") == [2, 3]
    assert run.main(args + ["--out", str(tmp_path / "b")]) == 0
    first, second = (json.loads(next((tmp_path / d).glob("*.json")).read_text()) for d in "ab")
    assert first["resumed_at_epoch"] == 0 and second["resumed_at_epoch"] == 3
    assert second["metrics"] == first["metrics"] and second["final_loss"] == first["final_loss"]
