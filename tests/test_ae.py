"""The dense autoencoder's input standardisation (PyOD's preprocessing=True)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxad import losses, train
from jaxad.methods import ae, resolve_config


def test_tables_are_standardised_and_scored_in_that_space_images_and_presets_are_not():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(64, 4)) * [1.0, 10.0, 100.0, 0.1] + [5.0, -3.0, 0.0, 1.0]).astype(np.float32)
    config = resolve_config("ae", {"hidden": (3,)})
    assert config["standardize"] == "auto"
    state = ae.setup(ae.init(jax.random.PRNGKey(0), config, jnp.asarray(x[:2])), jnp.asarray(x))
    np.testing.assert_allclose(state.extra["inputs"]["mean"], x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(state.extra["inputs"]["std"], x.std(0), rtol=1e-5)
    z = (x - x.mean(0)) / x.std(0)
    recon = ae.reconstruct(state, jnp.asarray(x))  # in x's own units
    np.testing.assert_allclose(ae.score(state, jnp.asarray(x)),
                               losses.reconstruction_error(z, (recon - x.mean(0)) / x.std(0), "mse"),
                               rtol=1e-4, atol=1e-6)
    # images keep their pixels under "auto"; the tutorial presets never standardise
    images = jnp.asarray(rng.random((8, 4, 4, 1)), jnp.float32)
    img_state = ae.setup(ae.init(jax.random.PRNGKey(0), config, images[:2]), images)
    np.testing.assert_array_equal(img_state.extra["inputs"]["std"], np.ones((4, 4, 1)))
    for preset in ae.PRESETS:
        assert resolve_config("ae", preset=preset)["standardize"] is False


def test_standardising_with_a_sigmoid_output_or_bce_is_refused_before_training():
    for overrides in ({"loss": "bce"}, {"output_activation": "sigmoid"}):
        with pytest.raises(ValueError, match="standardize='auto'"):
            ae.validate(resolve_config("ae", overrides), (10, 4))
    ae.validate(resolve_config("ae", {"loss": "bce", "standardize": False}), (10, 4))
    ae.validate(resolve_config("ae", {"loss": "bce"}), (10, 4, 4, 1))  # images: not standardised


def test_a_far_column_no_longer_dominates_the_score():
    """Anomalies in a small-scale column are found although another column is 1000x larger."""
    rng = np.random.default_rng(1)
    n, m = 400, 20
    x = np.c_[rng.normal(size=n + m) * 1000.0, rng.normal(size=(n + m, 3))].astype(np.float32)
    x[n:, 1:] *= 6.0  # scattered far from the normal rows, in no shared direction
    y = np.r_[np.zeros(n), np.ones(m)]
    config = resolve_config("ae", {"epochs": 30, "hidden": (2,), "batch_norm": False, "dropout": 0.0})
    scores = {}
    for setting in (True, False):
        result = train.fit("ae", {**config, "standardize": setting}, x, progress=False)
        s = train.score("ae", result.states, x)[0]
        scores[setting] = np.mean(s[y == 1] > np.quantile(s[y == 0], 0.95))
    # measured: 0.80 of the anomalies above the normals' 95th percentile standardised, 0.10 raw
    assert scores[True] > 0.7 and scores[False] < 0.3, scores


def test_batch_norm_running_statistics_move_as_pytorchs_and_pyod_drops_the_last_batch():
    # PyOD's AutoEncoder: BatchNorm1d(momentum=0.1) and DataLoader(drop_last=True)
    assert ae.DEFAULTS["bn_momentum"] == 0.9 and ae.DEFAULTS["drop_last"] is True
    model = ae.build_model(ae.DEFAULTS)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(16, 5)), jnp.float32)
    variables = model.init(jax.random.PRNGKey(0), x, train=False)
    _, updated = model.apply(variables, x, train=True, rngs={"dropout": jax.random.PRNGKey(1)},
                             mutable=["batch_stats"])
    first = variables["params"]["encoder"]["Dense_0"]
    pre = x @ first["kernel"] + first["bias"]  # the first batch norm's input
    running = updated["batch_stats"]["encoder"]["BatchNorm_0"]
    # one step from the initial (mean 0, var 1): 0.9 * old + 0.1 * batch statistic, the variance
    # unbiased (ddof=1) as PyTorch's BatchNorm1d keeps it
    assert ae.DEFAULTS["bn_unbiased_var"] is True
    np.testing.assert_allclose(running["mean"], 0.1 * pre.mean(axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(running["var"], 0.9 + 0.1 * pre.var(axis=0, ddof=1), rtol=1e-4)
