"""Bounded memory: training data over the device budget streams from host memory with the same
batches and the same results as on the device; scoring never copies its input whole.

(The figures for 10 million rows come from ``experiments/bench_memory.py``, not from a test.)
"""

import tracemalloc
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_setup
from jaxad import Detector, train
from jaxad.methods import Method, TrainState, resolve_config
from jaxad.methods.base import FrozenConfig


def fit_both(name, config, x, **kwargs):
    """The same fit with the data on the device and streamed through a budget of a quarter of
    it (200 rows in batches of 16: chunks of 2 batches and a last one of 3)."""
    on_device = train.fit(name, config, x, progress=False, **kwargs)
    streamed = train.fit(name, config, x, progress=False, device_budget_bytes=x.nbytes // 4, **kwargs)
    assert on_device.data_placement == "device" and streamed.data_placement == "streamed"
    return on_device, streamed


def assert_same_fit(a, b, x_score):
    np.testing.assert_array_equal(train.fit_result_scores(b, x_score), train.fit_result_scores(a, x_score))
    for leaf_a, leaf_b in zip(jax.tree.leaves(a.states), jax.tree.leaves(b.states)):
        np.testing.assert_array_equal(leaf_b, leaf_a)
    assert a.history.keys() == b.history.keys()
    for key in a.history:  # the epoch means are summed in another order: equal to rounding
        np.testing.assert_allclose(b.history[key], a.history[key], rtol=1e-6)
    np.testing.assert_array_equal(b.epochs_run, a.epochs_run)


@pytest.mark.parametrize("name, seeds", [("ae", (0,)), ("ae", (0, 1)), ("conv_ae", (0, 1)), ("deep_svdd", (0, 1)),
                                         ("rsrae_plus", (0,))])
def test_streamed_fit_equals_the_on_device_fit(name, seeds):
    overrides, x = tiny_setup(name, n=200, epochs=2)  # 13 batches of 16: chunks of 2 and a last of 3
    a, b = fit_both(name, resolve_config(name, overrides), x, seeds=seeds)
    assert_same_fit(a, b, x)


def test_streamed_fit_with_data_per_seed_and_early_stopping():
    overrides, x = tiny_setup("ae", n=200, epochs=4, patience=1, min_delta=0.05)
    data = np.stack([x, x[::-1] * 2])
    a, b = fit_both("ae", resolve_config("ae", overrides), data, seeds=(0, 0), data_per_seed=True)
    assert_same_fit(a, b, x)


def test_a_hook_reading_the_whole_training_set_keeps_it_on_the_device():
    overrides, x = tiny_setup("ocnn", n=64)  # OC-NN's radius is the quantile over all rows, each epoch
    with pytest.warns(RuntimeWarning, match="ocnn: the per-epoch hook reads the whole training set"):
        result = train.fit("ocnn", resolve_config("ocnn", overrides), x, progress=False, device_budget_bytes=100)
    assert result.data_placement == "device"


def test_device_budget_is_validated():
    overrides, x = tiny_setup("ae")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="device_budget_bytes"):
            train.fit("ae", resolve_config("ae", overrides), x, progress=False, device_budget_bytes=bad)


# ---------------------------------------------------------------- every sample once per epoch
# Row i of the data is the value i; the probe adds each row's batch weight to counts[i].

def _probe_init(rng, config, example):
    return TrainState(step=jnp.zeros((), jnp.int32), params={"w": jnp.zeros(())}, model_state={}, opt_state=(),
                      rng=rng, extra={"counts": jnp.zeros(config["n"])}, apply_fn=None, tx=None,
                      config=FrozenConfig(config))


def _probe_step(state, batch):
    counts = state.extra["counts"].at[batch["x"][:, 0].astype(jnp.int32)].add(batch["w"])
    return state.replace(step=state.step + 1, extra={"counts": counts}), {"loss": jnp.zeros(())}


PROBE = Method(name="probe", init=_probe_init, train_step=_probe_step, score=lambda state, x: x[:, 0],
               defaults={"epochs": 3, "batch_size": 3, "patience": 0, "min_delta": 0.0, "n": 10})


@pytest.mark.parametrize("loop", ["scan", "host"])
@pytest.mark.parametrize("n, batch_size, budget", [(50, 3, 199), (50, 3, 100), (11, 2, 43), (5, 8, 19)])
def test_streamed_epochs_see_every_sample_once(n, batch_size, budget, loop):
    # chunks of batches (scan): [4, 4, 4, 5], [2] * 7 + [3], [2, 2, 2], [1]
    x = np.arange(n, dtype=np.float32)[:, None]
    config = {**PROBE.defaults, "n": n, "batch_size": batch_size}
    result = train.fit(PROBE, config, x, seeds=(0, 1), progress=False, loop=loop, device_budget_bytes=budget)
    assert result.data_placement == "streamed"
    np.testing.assert_array_equal(np.asarray(result.states.extra["counts"]), np.full((2, n), 3.0))
    assert np.asarray(result.states.step).tolist() == [3 * -(-n // min(batch_size, n))] * 2


def test_chunk_sizes_never_end_in_a_lone_batch():
    assert train._chunk_sizes(13, 2) == [2, 2, 2, 2, 2, 3]
    assert train._chunk_sizes(11, 5) == [5, 6]
    assert train._chunk_sizes(12, 5) == [5, 5, 2]
    assert train._chunk_sizes(10, 5) == [5, 5]
    assert train._chunk_sizes(1, 2) == [1]
    assert train._chunk_sizes(4, 1) == [1, 1, 1, 1]


# ---------------------------------------------------------------- scoring without copies

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_decision_function_never_copies_its_input_whole(dtype):
    rng = np.random.default_rng(0)
    det = Detector("ae", epochs=1, hidden=(8, 4)).fit(rng.normal(size=(256, 30)))
    X = rng.normal(size=(1_000_000, 30)).astype(dtype)  # 120 or 240 MB
    det.decision_function(X[:10])  # compile outside the measurement
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            scores = det.decision_function(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert scores.shape == (1_000_000,) and np.isfinite(scores).all()
    # chunks of 65536 rows: ~16 MB of float64 temporaries and the 8 MB of float64 scores; a
    # float32 copy of X alone would be 120 MB
    assert peak < 48e6, f"peak of numpy allocations {peak / 1e6:.0f} MB while scoring {X.nbytes / 1e6:.0f} MB"
