"""fit(bucket=True): tables padded to shared shapes, so that datasets share compiled programs."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxad import train
from jaxad.methods import get_method, resolve_config
from jaxad.methods import ae
from jaxad.methods.base import feature_stats
from jaxad.models import pad_output_layer
from tests.test_engine import PROBE, probe_config, rows

PADDED_PROBE = dataclasses.replace(PROBE, name="padded_probe", pad_features=lambda state, n_features: state)


def test_bucket_shapes():
    assert [train.bucket_width(d) for d in (1, 16, 17, 64, 65, 256, 1555, 4096, 5000)] == [
        16, 16, 64, 64, 256, 256, 4096, 4096, 8192]
    assert [train.bucket_count(n, 256) for n in (1, 218, 256, 257)] == [256, 256, 256, 512]
    assert train.bucket_count(7000, 8192) == 8192 and train.bucket_count(9000, 8192) == 16384
    idx, w = train.bucket_batches(np.ones((2, 3, 4), np.int32), np.ones((3, 4), np.float32), 4)
    assert idx.shape == (2, 256, 4) and w.shape == (256, 4)
    assert w[:3].sum() == 12 and w[3:].sum() == 0 and idx[:, 3:].sum() == 0
    # a table smaller than one batch: its one batch padded to the batch size, with weight 0
    idx, w = train.bucket_batches(np.ones((2, 1, 3), np.int32), np.ones((1, 3), np.float32), 8)
    assert idx.shape == (2, 256, 8) and w[0].tolist() == [1.0] * 3 + [0.0] * 5


@pytest.mark.parametrize("drop_last", [False, True])
def test_empty_batches_are_skipped_so_a_bucketed_epoch_trains_as_the_plain_one(drop_last):
    cfg = probe_config(n=10, batch_size=4, epochs=3, drop_last=drop_last)
    plain = train.fit(PROBE, cfg, rows(10), seeds=(0, 1), progress=False)
    padded = train.fit(PADDED_PROBE, cfg, rows(10), seeds=(0, 1), progress=False, bucket=True)
    # the same rows in the same batches: padding batches run no step and count no rows
    for key in ("counts", "batches", "total"):
        np.testing.assert_array_equal(padded.states.extra[key], plain.states.extra[key])
    np.testing.assert_array_equal(padded.states.step, plain.states.step)
    np.testing.assert_allclose(padded.history["loss"], plain.history["loss"], rtol=1e-6)
    assert padded.input_width == 16 and plain.input_width is None


def _narrow_as_padded(narrow, padded_template, d: int):
    """The narrow state's network embedded in the padded shapes: what pad_features promises to
    be equivalent to, with the narrow network's own draws."""
    width = padded_template.extra["inputs"]["mean"].shape[0]
    params = _embed_narrow(narrow.params, width, d, [("encoder", "Dense_0")], [("decoder", "Dense_1")])
    inputs = {"mean": jnp.pad(narrow.extra["inputs"]["mean"], (0, width - d)),
              "std": jnp.pad(narrow.extra["inputs"]["std"], (0, width - d), constant_values=1.0)}
    return padded_template.replace(params=params, opt_state=padded_template.tx.init(params), rng=narrow.rng,
                                   model_state=narrow.model_state,
                                   extra={**padded_template.extra, "inputs": inputs})


@pytest.mark.parametrize("output_activation", ["linear", "tanh"])
def test_padded_ae_trains_and_scores_as_the_narrow_network(output_activation):
    d, width = 5, 16
    cfg = resolve_config("ae", {"hidden": (8, 4), "output_activation": output_activation})
    x = np.random.default_rng(0).normal(size=(64, d)).astype(np.float32) * 3 + 1
    xp = np.pad(x, ((0, 0), (0, width - d)))
    narrow = ae.setup(ae.init(jax.random.PRNGKey(0), cfg, x[:2]), x)
    template = ae.pad_features(ae.init(jax.random.PRNGKey(1), cfg, xp[:2]), d)
    padded = _narrow_as_padded(narrow, template, d)
    w = jnp.ones(32).at[-3:].set(0.0)
    step = jax.jit(ae.train_step)
    for i in range(5):
        narrow, m_n = step(narrow, {"x": x[i * 8:i * 8 + 32], "w": w})
        padded, m_p = step(padded, {"x": xp[i * 8:i * 8 + 32], "w": w})
        np.testing.assert_allclose(m_p["loss"], m_n["loss"], rtol=1e-5)
    out = padded.params["decoder"]["Dense_1"]
    # the padding's output weights never move: zero error, zero gradient, zero decay
    assert not np.asarray(out["kernel"])[:, d:].any() and not np.asarray(out["bias"])[d:].any()
    np.testing.assert_allclose(out["kernel"][:, :d], narrow.params["decoder"]["Dense_1"]["kernel"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ae.score(padded, xp), ae.score(narrow, x), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("initializer, factor", [("pyod", 2.0), ("torch", 2.0), ("keras", np.sqrt((16 + 8) / (4 + 8)))])
def test_pad_features_rescales_the_first_layer_to_the_real_fan_in(initializer, factor):
    cfg = resolve_config("ae", {"hidden": (8, 4), "initializer": initializer})
    raw = ae.init(jax.random.PRNGKey(0), cfg, np.zeros((2, 16), np.float32))
    state = ae.pad_features(raw, 4)
    kernel, raw_kernel = np.asarray(state.params["encoder"]["Dense_0"]["kernel"]), raw.params["encoder"]["Dense_0"]["kernel"]
    np.testing.assert_allclose(kernel[:4], np.asarray(raw_kernel)[:4] * factor, rtol=1e-6)
    assert not kernel[4:].any()
    np.testing.assert_allclose(state.params["encoder"]["Dense_0"]["bias"],
                               np.asarray(raw.params["encoder"]["Dense_0"]["bias"]) * factor, rtol=1e-6)
    assert float(state.extra["n_features"]) == 4.0
    # the real columns' first-layer draws are the narrow network's own (threefry draws by position)
    narrow = ae.init(jax.random.PRNGKey(0), cfg, np.zeros((2, 4), np.float32))
    np.testing.assert_allclose(kernel[:4], narrow.params["encoder"]["Dense_0"]["kernel"], rtol=1e-5)


def test_bucketed_fits_of_different_widths_share_their_programs():
    cfg = resolve_config("ae", {"epochs": 2})
    rng = np.random.default_rng(0)
    first = train.fit("ae", cfg, rng.normal(size=(200, 5)).astype(np.float32), seeds=(0, 1), progress=False, bucket=True)
    kept = dict(train._KEPT_PROGRAMS)
    x = rng.normal(size=(300, 9)).astype(np.float32)
    second = train.fit("ae", cfg, x, seeds=(0, 1), progress=False, bucket=True)
    assert train._KEPT_PROGRAMS.keys() == kept.keys()  # no new program for width 9 and 300 rows
    assert first.input_width == second.input_width == 16
    scores = train.fit_result_scores(second, x)
    assert scores.shape == (2, 300) and np.isfinite(scores).all()
    again = train.fit("ae", cfg, x, seeds=(0, 1), progress=False, bucket=True)  # same seed, same result
    np.testing.assert_array_equal(train.fit_result_scores(again, x), scores)
    # a state of the shared program still scores its own width: the padding is added per chunk
    assert train.fit_result_scores(second, x[:7]).shape == (2, 7)
    # a different width bucket is a different program
    train.fit("ae", cfg, rng.normal(size=(50, 20)).astype(np.float32), seeds=(0, 1), progress=False, bucket=True)
    assert len(train._KEPT_PROGRAMS) > len(kept)


def test_bucket_refuses_what_it_cannot_pad():
    x = np.zeros((20, 3), np.float32)
    with pytest.raises(ValueError, match="bucket=True: method 'conv_ae' cannot pad"):
        train.fit("conv_ae", resolve_config("conv_ae", {}), x, progress=False, bucket=True)
    with pytest.raises(ValueError, match="pretrain_epochs > 0"):
        train.fit("deep_svdd", resolve_config("deep_svdd", {"pretrain_epochs": 1}), x, progress=False, bucket=True)
    with pytest.raises(ValueError, match="output activation that maps 0 to 0, got 'sigmoid'"):
        train.fit("rsrae", resolve_config("rsrae", {"output_activation": "sigmoid"}), x, progress=False, bucket=True)
    with pytest.raises(ValueError, match=r"bucket=True: expected one table \(n, d\)"):
        train.fit("ae", resolve_config("ae", {}), np.zeros((20, 4, 4, 1), np.float32), progress=False, bucket=True)
    sigmoid = resolve_config("ae", {"output_activation": "sigmoid", "standardize": False})
    with pytest.raises(ValueError, match="output_activation that maps 0 to 0"):
        train.fit("ae", sigmoid, x, progress=False, bucket=True)
    with pytest.raises(ValueError, match="extra epoch-end hooks"):
        train.fit(get_method("ae"), resolve_config("ae", {}), x, progress=False, bucket=True,
                  hooks=[lambda state, x: (state, {})])


def test_feature_stats_of_zero_padding_leave_it_zero():
    stats = feature_stats(jnp.pad(jnp.arange(6.0).reshape(3, 2), ((0, 0), (0, 2))))
    assert stats["mean"][2:].tolist() == [0.0, 0.0] and stats["std"][2:].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("method, overrides", [
    ("ocnn", {}),  # Fourier features: gamma 'scale' over the real columns, r over the real rows
    ("ocnn", {"fourier_dim": 0, "hidden": (8,)}),
    ("deep_svdd", {"objective": "soft-boundary", "warm_up_epochs": 1}),  # R over the real rows
])
def test_bucketed_fits_that_pad_only_inputs_equal_the_plain_fit(method, overrides):
    """Padding only the input side keeps every random draw (threefry draws by position), so the
    bucketed fit is the plain one to float rounding, epoch-end quantiles included."""
    rng = np.random.default_rng(0)
    x = rng.random((300, 9)).astype(np.float32)
    cfg = resolve_config(method, {"epochs": 3, **overrides})
    plain = train.fit(method, cfg, x, seeds=(0, 1), progress=False)
    padded = train.fit(method, cfg, x, seeds=(0, 1), progress=False, bucket=True)
    assert padded.input_width == 16 and float(padded.states.extra["n_rows"][0]) == 300
    for key, values in plain.history.items():
        np.testing.assert_allclose(padded.history[key], values, rtol=2e-4, atol=1e-6, err_msg=key)
    np.testing.assert_allclose(train.fit_result_scores(padded, x), train.fit_result_scores(plain, x),
                               rtol=2e-4, atol=1e-6)


def _embed_narrow(narrow_params, width: int, d: int, inputs, outputs):
    """Narrow params with the layers at ``inputs`` (kernel rows) and ``outputs`` (kernel columns
    and bias) zero-padded from d to width: the network pad_features promises to train as."""
    params = jax.tree.map(lambda a: a, narrow_params)
    for group, name in inputs:
        layer = params[group][name]
        params[group][name] = {**layer, "kernel": jnp.pad(layer["kernel"], ((0, width - d), (0, 0)))}
    for group, name in outputs:
        layer = params[group][name]
        params[group][name] = {"kernel": jnp.pad(layer["kernel"], ((0, 0), (0, width - d))),
                               "bias": jnp.pad(layer["bias"], (0, width - d))}
    return params


@pytest.mark.parametrize("method, inputs, outputs", [
    ("rsrae_plus", [("encoder", "Dense_0")], [("decoder", "Dense_0")]),
    ("efficient_gan", [("encoder", "Dense_0"), ("discriminator", "x_dense")], [("generator", "Dense_2")]),
])
def test_padded_networks_train_and_score_as_the_narrow_network(method, inputs, outputs):
    d, width = 5, 16
    m = get_method(method)
    cfg = resolve_config(method, {})
    x = np.random.default_rng(0).random((64, d)).astype(np.float32)
    xp = np.pad(x, ((0, 0), (0, width - d)))
    narrow = m.init(jax.random.PRNGKey(0), cfg, x[:2])
    narrow = m.setup(narrow, x) if m.setup else narrow
    template = m.pad_features(m.init(jax.random.PRNGKey(1), cfg, xp[:2]), d)
    params = _embed_narrow(narrow.params, width, d, inputs, outputs)
    extra = dict(narrow.extra)
    if "ema" in extra:
        extra["ema"] = _embed_narrow(narrow.extra["ema"], width, d, inputs, outputs)
    padded = template.replace(params=params, opt_state=template.tx.init(params), rng=narrow.rng,
                              model_state=narrow.model_state, extra=extra)
    w = jnp.ones(32).at[-3:].set(0.0)
    step = jax.jit(m.train_step)
    for i in range(4):
        narrow, m_n = step(narrow, {"x": x[i * 8:i * 8 + 32], "w": w})
        padded, m_p = step(padded, {"x": xp[i * 8:i * 8 + 32], "w": w})
        for key in m_n:
            np.testing.assert_allclose(m_p[key], m_n[key], rtol=2e-4, atol=1e-6, err_msg=key)
    group, name = outputs[0]
    out = padded.params[group][name]
    # the padding's output weights never move: zero error, zero gradient
    assert not np.asarray(out["kernel"])[:, d:].any() and not np.asarray(out["bias"])[d:].any()
    np.testing.assert_allclose(m.score(padded, xp), m.score(narrow, x), rtol=2e-4, atol=1e-6)


def test_pad_output_layer_rescales_glorot_to_the_real_fan_out():
    layer = {"kernel": jnp.ones((8, 16)), "bias": jnp.ones(16)}
    keras = pad_output_layer(layer, 4, "keras")
    np.testing.assert_allclose(keras["kernel"][:, :4], np.sqrt((8 + 16) / (8 + 4)), rtol=1e-6)
    assert not np.asarray(keras["kernel"])[:, 4:].any() and np.asarray(keras["bias"]).tolist() == [1.0] * 4 + [0.0] * 12
    # fan-in initializers do not depend on the outputs
    np.testing.assert_array_equal(pad_output_layer(layer, 4, "torch")["kernel"][:, :4], 1.0)


def test_padded_validation_rows_are_the_validation_rows():
    from jaxad.methods import efficient_gan as eg

    for n, rows in [(1, 5), (3, 10), (10, 10), (57, 10), (1000, 7), (9999, 1000)]:
        idx, weights = eg.padded_validation_rows(jnp.asarray(n, jnp.int32), rows)
        kept = np.asarray(idx)[np.asarray(weights) > 0]
        np.testing.assert_array_equal(kept, eg.validation_rows(n, rows))
