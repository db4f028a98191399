"""The training engine: every sample every epoch, seeds as one program, stopping, NaN guard,
hooks, sharding over forced host devices."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxad
from jaxad import train
from jaxad.methods import Method, TrainState, resolve_config
from jaxad.methods.base import FrozenConfig

# ---------------------------------------------------------------- a probe method
# Sample i is the row [i]; the probe counts how often (with what weight) it sees each row.


def _probe_init(rng, config, example):
    n = config["n"]
    return TrainState(step=jnp.zeros((), jnp.int32), params={"w": jnp.zeros(())}, model_state={},
                      opt_state=(), rng=rng, extra={"counts": jnp.zeros(n), "batches": jnp.zeros(()), "total": jnp.zeros(())},
                      apply_fn=None, tx=None, config=FrozenConfig(config))


def _probe_step(state, batch):
    idx = batch["x"][:, 0].astype(jnp.int32)
    counts = state.extra["counts"].at[idx].add(batch["w"])
    extra = {**state.extra, "counts": counts, "batches": state.extra["batches"] + 1,
             "total": state.extra["total"] + jnp.sum(batch["x"][:, 0] * batch["w"])}
    loss = jnp.where(state.config["nan_at"] == state.step, jnp.nan, 1.0 / (1.0 + state.step))
    return state.replace(step=state.step + 1, extra=extra), {"loss": loss}


def _probe_score(state, x):
    return x[:, 0]


PROBE = Method(name="probe", init=_probe_init, train_step=_probe_step, score=_probe_score,
               defaults={"epochs": 1, "batch_size": 4, "patience": 0, "min_delta": 0.0, "n": 10,
                         "nan_at": -1})


def probe_config(**kw):
    return {**PROBE.defaults, **kw}


def rows(n):
    return np.arange(n, dtype=np.float32)[:, None]


@pytest.mark.parametrize("loop", ["scan", "host"])
@pytest.mark.parametrize("n, batch_size", [(10, 4), (10, 5), (7, 32), (1, 3)])
def test_every_sample_seen_once_per_epoch(n, batch_size, loop):
    cfg = probe_config(n=n, batch_size=batch_size, epochs=3)
    result = train.fit(PROBE, cfg, rows(n), seeds=(0, 1), progress=False, loop=loop)
    counts = np.asarray(result.states.extra["counts"])
    np.testing.assert_array_equal(counts, np.full((2, n), 3.0))
    # the last partial batch is one more batch per epoch, never dropped
    assert np.asarray(result.states.extra["batches"]).tolist() == [3 * -(-n // min(batch_size, n))] * 2


def test_data_per_seed_gives_each_member_its_own_data():
    x = np.stack([rows(6), rows(6) + 100.0])  # (2 members, 6 rows, 1)
    result = train.fit(PROBE, probe_config(n=106, epochs=2), x, seeds=(0, 0), data_per_seed=True,
                       progress=False)
    totals = np.asarray(result.states.extra["total"])
    np.testing.assert_allclose(totals, [2 * 15.0, 2 * (15.0 + 600.0)])
    with pytest.raises(ValueError, match="data_per_seed=True expected shape"):
        train.fit(PROBE, probe_config(), rows(6), seeds=(0, 1), data_per_seed=True, progress=False)


def test_same_seed_same_model_and_different_seeds_differ():
    a = train.fit("ae", resolve_config("ae", {"epochs": 2}), np.random.default_rng(0).normal(size=(50, 3)),
                  seeds=(0, 1), progress=False)
    b = train.fit("ae", resolve_config("ae", {"epochs": 2}), np.random.default_rng(0).normal(size=(50, 3)),
                  seeds=(0, 1), progress=False)
    for la, lb in zip(jax.tree.leaves(a.states.params), jax.tree.leaves(b.states.params)):
        np.testing.assert_array_equal(la, lb)  # same seeds: bit-identical
    first = jax.tree.leaves(a.states.params)[0]
    assert not np.allclose(first[0], first[1])  # different seeds: different models


def test_hooks_run_after_each_epoch_and_report_metrics():
    def count_epochs(state, x):
        extra = dict(state.extra, epochs=state.extra.get("epochs", 0.0) + 1.0)
        return state.replace(extra=extra), {"x_mean": jnp.mean(x)}

    def init_with_epochs(rng, config, example):
        s = _probe_init(rng, config, example)
        return s.replace(extra={**s.extra, "epochs": jnp.zeros(())})

    method = Method(name="probe", init=init_with_epochs, train_step=_probe_step, score=_probe_score,
                    defaults=PROBE.defaults, epoch_end=count_epochs)
    result = train.fit(method, probe_config(epochs=4), rows(10), progress=False)
    assert float(result.states.extra["epochs"][0]) == 4.0
    np.testing.assert_allclose(result.history["x_mean"][:, 0], 4.5)


@pytest.mark.parametrize("loop", ["scan", "host"])
def test_drop_last_leaves_out_the_partial_batch_of_each_shuffle(loop):
    # PyTorch's DataLoader(drop_last=True), which PyOD trains with: 10 rows in batches of 4 are
    # 2 full batches per epoch; 2 rows (different ones each epoch) sit the epoch out
    cfg = probe_config(n=10, batch_size=4, epochs=5, drop_last=True)
    result = train.fit(PROBE, cfg, rows(10), seeds=(0, 1), progress=False, loop=loop)
    counts = np.asarray(result.states.extra["counts"])
    np.testing.assert_array_equal(counts.sum(axis=1), [5 * 8.0] * 2)
    assert counts.max() <= 5 and counts.min() < 5  # rows left out vary with the shuffle
    assert np.asarray(result.states.extra["batches"]).tolist() == [10, 10]
    # the epoch loss is the mean over the 8 rows trained on: batches 1 and 1/2
    np.testing.assert_allclose(result.history["loss"][0, 0], (4 * 1 + 4 * 0.5) / 8, rtol=1e-6)
    idx, w = train.epoch_batches(train.epoch_orders((0,), 0, 3), 4, drop_last=True)
    assert idx.shape == (1, 1, 3) and w.tolist() == [[1, 1, 1]]  # fewer rows than a batch: one batch
    with pytest.raises(ValueError, match="drop_last='yes': expected True or False"):
        jaxad.Detector("ae", drop_last="yes").fit(np.zeros((8, 2), np.float32))


@pytest.mark.parametrize("loop", ["scan", "host"])
def test_epoch_metrics_are_weighted_means_over_real_rows(loop):
    result = train.fit(PROBE, probe_config(epochs=1, batch_size=4), rows(10), progress=False, loop=loop)
    # losses per batch 1, 1/2, 1/3 with 4, 4, 2 real rows
    expected = (4 * 1 + 4 * 0.5 + 2 / 3) / 10
    np.testing.assert_allclose(result.history["loss"][0, 0], expected, rtol=1e-6)


def test_nan_loss_stops_with_method_epoch_and_value():
    with pytest.raises(train.DivergenceError, match=r"probe: training diverged at epoch 2/5: loss = nan"):
        train.fit(PROBE, probe_config(epochs=5, nan_at=4), rows(10), progress=False)


def test_huge_learning_rate_diverges_with_message():
    x = np.random.default_rng(0).normal(size=(64, 4)) * 1e3
    cfg = resolve_config("ae", {"lr": 1e12, "epochs": 20, "batch_norm": False, "dropout": 0.0})
    with pytest.raises(train.DivergenceError, match="ae: training diverged at epoch"):
        train.fit("ae", cfg, x, progress=False)


def test_early_stopping_freezes_each_seed_independently():
    stop_after = {0: 2, 1: 4}

    def rule(epoch, metrics):
        return np.array([epoch + 1 >= stop_after[0], epoch + 1 >= stop_after[1]])

    result = train.fit(PROBE, probe_config(epochs=10), rows(10), seeds=(0, 1), stoppers=[rule], progress=False)
    assert result.epochs_run.tolist() == [2, 4]
    # the stopped seed's state stopped changing: it saw every row exactly twice
    np.testing.assert_array_equal(np.asarray(result.states.extra["counts"])[0], np.full(10, 2.0))
    np.testing.assert_array_equal(np.asarray(result.states.extra["counts"])[1], np.full(10, 4.0))
    assert np.isnan(result.history["loss"][2:, 0]).all()


def test_early_stopping_rule_patience():
    rule = train.EarlyStopping("loss", patience=2, min_delta=0.1)
    seq = [1.0, 0.5, 0.45, 0.44, 0.1]
    stops = [bool(rule(e, {"loss": np.array([v])})[0]) for e, v in enumerate(seq)]
    assert stops == [False, False, False, True, False]


def test_patience_in_config_stops_training():
    cfg = probe_config(epochs=50, patience=1, min_delta=10.0)  # never improves by 10
    result = train.fit(PROBE, cfg, rows(10), progress=False)
    assert result.epochs_run.tolist() == [2]


def test_scores_are_chunked_with_identical_results():
    result = train.fit("ae", resolve_config("ae", {"epochs": 1}), np.random.default_rng(1).normal(size=(100, 3)),
                       seeds=(0, 1), progress=False)
    x = np.random.default_rng(2).normal(size=(37, 3))
    whole = train.fit_result_scores(result, x)
    chunked = train.fit_result_scores(result, x, chunk_size=8)
    assert whole.shape == (2, 37)
    np.testing.assert_allclose(chunked, whole, rtol=1e-6)
    one_row = train.fit_result_scores(result, x[:1])  # padded to 256 rows of copies
    np.testing.assert_allclose(one_row, whole[:, :1], rtol=1e-6)
    assert train.fit_result_scores(result, x[:0]).shape == (2, 0)


def test_score_rows_bucket_small_inputs_to_powers_of_two():
    assert train.score_rows(37, 8) == 8  # larger than the chunk: chunks of 8
    assert train.score_rows(5, 8) == 8
    assert train.score_rows(37, 65536) == 256  # a train and a test split of a small set share one
    assert train.score_rows(150, 65536) == 256
    assert train.score_rows(257, 65536) == 512
    assert train.score_rows(3000, 4096) == 4096
    assert train.score_rows(7000, 4096) == 4096


def test_bad_shard_and_seeds():
    with pytest.raises(ValueError, match="shard='rows'"):
        train.fit(PROBE, probe_config(), rows(10), shard="rows", progress=False)
    with pytest.raises(ValueError, match="seeds"):
        train.fit(PROBE, probe_config(), rows(10), seeds=(), progress=False)


SHARD_SCRIPT = textwrap.dedent("""
    import json, numpy as np, jax
    from jaxad import train
    from jaxad.methods import resolve_config
    assert len(jax.devices()) == 8, jax.devices()
    x = np.random.default_rng(0).normal(size=(256, 6)).astype(np.float32)
    cfg = resolve_config("ae", {"epochs": 3, "batch_size": 64, "batch_norm": False, "dropout": 0.0})
    out = {}
    for shard, seeds in [("none", range(8)), ("seeds", range(8)), ("batch", range(3))]:
        r = train.fit("ae", cfg, x, seeds=seeds, shard=shard, progress=False)
        leaf = jax.tree.leaves(r.states.params)[0]
        out[shard] = {"kind": r.sharding, "devices": len(leaf.sharding.device_set),
                      "scores": train.fit_result_scores(r, x).tolist()}
    print(json.dumps(out))
""")


def test_sharding_over_eight_forced_cpu_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SHARD_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["none"]["kind"] == "none" and out["none"]["devices"] == 1
    assert out["seeds"]["kind"] == "seeds" and out["seeds"]["devices"] == 8
    assert out["batch"]["kind"] == "batch" and out["batch"]["devices"] == 8
    none, seeds, batch = (np.array(out[k]["scores"]) for k in ("none", "seeds", "batch"))
    # the same computation laid out differently: equal up to float32 reduction order
    np.testing.assert_allclose(seeds, none, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(batch, none[:3], rtol=1e-3, atol=1e-5)


def test_unoptimised_init_compile_is_deterministic_and_equal_to_rounding(monkeypatch):
    """The init program compiles at LLVM -O0 on CPU: always the same states, and the optimised
    compile's states to the last float32 bit or so (LLVM may fuse multiply-adds there)."""
    x = jnp.asarray(np.random.default_rng(0).normal(size=(8, 5)), jnp.float32)
    config = resolve_config("ae")
    fast = train.init_states(jaxad.get_method("ae"), config, x, (0, 1))
    again = train.init_states(jaxad.get_method("ae"), config, x, (0, 1))
    monkeypatch.setattr(train, "INIT_COMPILER_OPTIONS", None)
    default = train.init_states(jaxad.get_method("ae"), config, x, (0, 1))
    for a, b, c in zip(jax.tree.leaves(fast), jax.tree.leaves(again), jax.tree.leaves(default)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, rtol=1e-6, atol=1e-7)  # ~ float32 eps x init bound


def test_host_loop_matches_scan_and_stacks_sequential_seeds():
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    cfg = resolve_config("ae", {"epochs": 3, "batch_size": 16})
    scan = train.fit("ae", cfg, x, seeds=(0, 1), progress=False, loop="scan")
    host = train.fit("ae", cfg, x, seeds=(0, 1), progress=False, loop="host")
    assert host.sharding.startswith("none (seeds one after another)")
    assert host.history["loss"].shape == scan.history["loss"].shape == (3, 2)
    np.testing.assert_allclose(host.history["loss"], scan.history["loss"], rtol=1e-3)
    # two different compilations of the same steps: equal up to float32 drift over 9 steps
    np.testing.assert_allclose(train.fit_result_scores(host, x), train.fit_result_scores(scan, x), rtol=1e-2, atol=1e-4)


def test_sequential_seeds_merge_pads_shorter_histories():
    short = train.fit(PROBE, probe_config(epochs=2), rows(10), seeds=(0,), loop="host", progress=False)
    long = train.fit(PROBE, probe_config(epochs=4), rows(10), seeds=(1,), loop="host", progress=False)
    merged = train.merge_fit_results([short, long])
    assert merged.seeds == (0, 1) and merged.epochs_run.tolist() == [2, 4]
    assert merged.history["loss"].shape == (4, 2)
    assert np.isnan(merged.history["loss"][2:, 0]).all() and np.isfinite(merged.history["loss"][:, 1]).all()
    np.testing.assert_array_equal(np.asarray(merged.states.extra["counts"]), [np.full(10, 2.0), np.full(10, 4.0)])


def test_conv_methods_use_the_host_loop_on_cpu():
    x = np.random.default_rng(0).random((8, 4, 4, 1)).astype(np.float32)
    cfg = resolve_config("conv_ae", {"epochs": 1, "batch_size": 4})
    result = train.fit("conv_ae", cfg, x, seeds=(0, 1), progress=False)
    assert result.sharding.startswith("none (seeds one after another)")
    with pytest.raises(ValueError, match="loop='fast'"):
        train.fit("conv_ae", cfg, x, loop="fast", progress=False)


def test_method_setup_runs_once_on_the_training_data_and_stopping_rules_apply():
    def setup(state, x):  # e.g. Deep SVDD's centre: a statistic of the training data
        return state.replace(extra={**state.extra, "total": jnp.sum(x)})

    def stopping(config):
        return [lambda epoch, metrics: np.full(metrics["loss"].shape, epoch + 1 >= config["stop_at"])]

    method = Method(name="probe", init=_probe_init, train_step=_probe_step, score=_probe_score,
                    defaults={**PROBE.defaults, "stop_at": 3}, setup=setup, stopping=stopping)
    result = train.fit(method, {**method.defaults, "epochs": 10}, rows(10), seeds=(0, 1), progress=False)
    assert result.epochs_run.tolist() == [3, 3]
    # setup put sum(rows) = 45 in total before 3 epochs added 45 each
    np.testing.assert_allclose(np.asarray(result.states.extra["total"]), [45.0 * 4] * 2)
