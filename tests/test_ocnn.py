"""OC-NN: losses by hand, r as the nu-quantile, the convergence stop rule, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxad
from jaxad import Detector, losses, train
from jaxad.methods import ocnn, resolve_config


def test_ocnn_loss_by_hand():
    y_hat = jnp.array([0.5, 2.0, 1.0, 3.0])
    w = jnp.array([1.0, 1.0, 1.0, 0.0])  # the last row is padding
    # hinge at r = 1.5: [1.0, 0, 0.5, (0)] -> mean over real rows 0.5; / nu 0.5 -> 1.0
    # weight term: 0.5 * 4.0
    np.testing.assert_allclose(losses.ocnn_hinge(y_hat, 1.5), [1.0, 0.0, 0.5, 0.0])
    np.testing.assert_allclose(losses.ocnn_loss(y_hat, jnp.float32(1.5), 0.5, w, jnp.float32(4.0)), 3.0)


def test_squared_weight_norm_counts_kernels_not_biases():
    params = {"Dense_0": {"kernel": jnp.array([[1.0, 2.0]]), "bias": jnp.array([10.0, 10.0])},
              "output": {"kernel": jnp.array([[3.0]]), "bias": jnp.array([5.0])}}
    assert float(losses.squared_weight_norm(params)) == 1.0 + 4.0 + 9.0


def test_nu_quantile():
    assert float(losses.nu_quantile(jnp.arange(11.0), 0.1)) == pytest.approx(1.0)


def test_r_is_the_nu_quantile_of_the_training_outputs_after_each_epoch():
    x = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)
    config = resolve_config("ocnn", {"nu": 0.2, "epochs": 2, "delta": 0.0})
    result = train.fit("ocnn", config, x, seeds=(0, 1), progress=False)
    for i in range(2):
        state = jax.tree.map(lambda a, i=i: a[i], result.states)
        y_hat = np.asarray(ocnn.outputs(state, jnp.asarray(x)))
        np.testing.assert_allclose(float(state.extra["r"]), np.quantile(y_hat, 0.2), rtol=1e-5)
        # a share nu of the training points is flagged (score = r - y_hat > 0)
        assert abs(np.mean(np.asarray(ocnn.score(state, jnp.asarray(x))) > 0) - 0.2) <= 0.01
    assert set(result.history) >= {"loss", "r", "delta_r"}


def test_stop_rule_fires_after_steps_small_changes_in_a_row():
    rule = ocnn.RadiusConverged(delta=0.025, steps=3)
    sequence = [0.5, 0.01, 0.02, 0.3, 0.01, 0.0, 0.02, 0.01]
    fired = [bool(rule(e, {"delta_r": np.array([d])})[0]) for e, d in enumerate(sequence)]
    assert fired == [False, False, False, False, False, False, True, True]


def test_training_stops_once_r_converges():
    x = np.random.default_rng(0).normal(size=(100, 2)).astype(np.float32)
    result = train.fit("ocnn", resolve_config("ocnn", {"epochs": 40, "delta": 1e9, "steps": 3}), x,
                       progress=False)
    assert result.epochs_run.tolist() == [3]


@pytest.mark.parametrize("kwargs, message", [
    ({"nu": 0.0}, r"nu=0.0: expected a number in \(0.0, 1.0\)"),
    ({"nu": 1.0}, "nu=1.0"),
    ({"delta": -0.1}, "delta=-0.1"),
    ({"steps": 0}, "steps=0"),
    ({"fourier_dim": -1}, "fourier_dim=-1"),
    ({"fourier_gamma": 0.0}, "fourier_gamma=0.0"),
    ({"fourier_dim": 0, "hidden": ()}, "needs at least one hidden layer"),
    ({"standardize": "yes"}, "standardize='yes'"),
])
def test_bad_settings_raise_before_training(kwargs, message, monkeypatch):
    monkeypatch.setattr(jaxad.train, "fit", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    with pytest.raises(ValueError, match=message):
        Detector("ocnn", **kwargs).fit(np.zeros((10, 2)))


def test_random_fourier_features_approximate_the_rbf_kernel():
    from jaxad.models.ocnn import RandomFourierFeatures

    x = jax.random.normal(jax.random.PRNGKey(1), (6, 3))
    layer = RandomFourierFeatures(dim=20_000, gamma=0.5)
    variables = layer.init(jax.random.PRNGKey(0), x)
    assert set(variables) == {"constants"}  # fixed: nothing for the optimizer or the penalty
    phi = layer.apply(variables, x)
    kernel = np.exp(-0.5 * np.sum((np.asarray(x)[:, None] - np.asarray(x)[None]) ** 2, -1))
    np.testing.assert_allclose(np.asarray(phi @ phi.T), kernel, atol=0.03)


def test_setup_standardises_tables_and_sets_gamma_scale_and_training_leaves_the_features_fixed():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(300, 4)).astype(np.float32)
    config = resolve_config("ocnn", {"fourier_dim": 64})
    state = ocnn.setup(ocnn.init(jax.random.PRNGKey(0), config, jnp.asarray(x[:2])), jnp.asarray(x))
    np.testing.assert_allclose(state.extra["inputs"]["mean"], x.mean(0), rtol=1e-5)
    # standardised inputs have variance 1, so gamma = 1 / (F * 1) and scale = sqrt(2 / F)
    np.testing.assert_allclose(state.model_state["constants"]["fourier"]["scale"], np.sqrt(2 / 4), rtol=1e-4)
    assert set(state.params) == {"output"} and "bias" not in state.params["output"]
    stepped, _ = ocnn.train_step(state, {"x": jnp.asarray(x[:64]), "w": jnp.ones(64)})
    assert not np.allclose(stepped.params["output"]["kernel"], state.params["output"]["kernel"])
    for a, b in zip(jax.tree.leaves(stepped.model_state), jax.tree.leaves(state.model_state), strict=True):
        np.testing.assert_array_equal(a, b)
    # images (rank 4) keep their pixels under standardize="auto"
    images = jnp.asarray(np.random.default_rng(1).uniform(size=(20, 4, 4, 1)), jnp.float32)
    img_state = ocnn.setup(ocnn.init(jax.random.PRNGKey(0), config, images[:2]), images)
    np.testing.assert_array_equal(img_state.extra["inputs"]["mean"], 0.0)


def test_notebook_task_quality_floor():
    """The seed notebook's 2-D task (blobs2d preset: nu 0.1, 256 Fourier features), 20 epochs."""
    from jaxad.data import load_split

    split = load_split("blobs2d")
    config = resolve_config("ocnn", {"epochs": 20}, preset="blobs2d")
    result = train.fit("ocnn", config, split.x_train, seeds=(0,), progress=False)
    scores = train.fit_result_scores(result, split.x_test)[0]
    flagged = scores > 0
    assert jaxad.metrics.auroc(split.y_test, scores) >= 0.97
    assert abs(flagged[split.y_test == 0].mean() - 0.1) <= 0.05
    assert flagged[split.y_test == 1].mean() >= 0.9
