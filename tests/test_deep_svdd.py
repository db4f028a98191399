"""Deep SVDD (Ruff et al. 2018): losses by hand, the centre's eps rule, bias-freeness, training,
soft-boundary radius, learning-rate milestones, seeds, pretraining and bad settings."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxad
from jaxad import losses, train
from jaxad.data import load_split
from jaxad.methods import base, deep_svdd, resolve_config
from jaxad.metrics import auroc


def first(states):
    """Seed 0's state out of a fit's stacked states."""
    return jax.tree.map(lambda a: a[0], states)


@pytest.fixture(scope="module")
def blob():
    rng = np.random.default_rng(0)
    return rng.normal(size=(120, 6)).astype(np.float32)


# ---------------------------------------------------------------- losses by hand

def test_distances_and_losses_by_hand():
    z = jnp.array([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]])
    c = jnp.array([1.0, 1.0])
    dist = losses.svdd_distances(z, c)
    np.testing.assert_allclose(dist, [1.0, 2.0, 8.0])
    w = jnp.array([1.0, 1.0, 0.0])  # the last row is padding
    np.testing.assert_allclose(losses.one_class_svdd_loss(dist, w), 1.5)
    # R = 1: R^2 = 1; excess max(0, d - 1) = 0, 1 (padding row ignored) -> 1 + (0 + 1) / 2 / 0.5 = 2
    np.testing.assert_allclose(losses.soft_boundary_svdd_loss(dist, jnp.array(1.0), 0.5, w), 2.0)
    np.testing.assert_allclose(losses.soft_boundary_svdd_loss(dist, jnp.array(1.0), 0.5, jnp.ones(3)),
                               1.0 + (0.0 + 1.0 + 7.0) / 3 / 0.5, rtol=1e-6)
    # no gradient flows into R (it is set by a quantile)
    grad_r = jax.grad(lambda r: losses.soft_boundary_svdd_loss(dist, r, 0.5, w))(jnp.array(1.0))
    assert float(grad_r) == 0.0


def test_radius_is_the_one_minus_nu_quantile_of_the_distances():
    dist = jnp.array([0.0, 1.0, 4.0, 9.0, 16.0])  # sqrt: 0, 1, 2, 3, 4
    np.testing.assert_allclose(losses.svdd_radius(dist, 0.25), 3.0)  # 0.75-quantile
    np.testing.assert_allclose(losses.svdd_radius(dist, 0.1), 3.6, rtol=1e-6)  # interpolated


def test_sum_squared_error_by_hand():
    x = jnp.array([[1.0, 2.0], [0.0, 0.0]])
    np.testing.assert_allclose(losses.sum_squared_error(x, jnp.zeros_like(x)), [5.0, 0.0])


def test_center_eps_rule_pushes_small_coordinates_and_exact_zeros_to_eps():
    z = jnp.array([[0.05, -0.05, 0.5, 0.0, -0.3], [0.05, -0.05, 0.7, 0.0, -0.3]])
    np.testing.assert_allclose(losses.svdd_center(z, 0.1), [0.1, -0.1, 0.6, 0.1, -0.3], rtol=1e-6)
    np.testing.assert_allclose(losses.svdd_center(jnp.zeros((4, 3)), 0.1), [0.1, 0.1, 0.1])


def test_setup_centre_from_the_training_data_and_an_all_zero_feature_map(blob):
    config = resolve_config("deep_svdd", {"hidden": (8, 4)})
    state = deep_svdd.init(jax.random.PRNGKey(0), config, jnp.asarray(blob[:2]))
    assert np.isnan(np.asarray(state.extra["c"])).all()  # until setup
    ready = deep_svdd.setup(state, jnp.asarray(blob))
    # phi sees the inputs standardised with the training data's statistics (standardize="auto")
    np.testing.assert_allclose(ready.extra["inputs"]["mean"], blob.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ready.extra["inputs"]["std"], blob.std(0), rtol=1e-5)
    expected = losses.svdd_center(deep_svdd.embed(ready, jnp.asarray(blob)), 0.1)
    np.testing.assert_allclose(ready.extra["c"], expected)
    assert (np.abs(np.asarray(ready.extra["c"])) >= 0.1 - 1e-7).all()
    # all-zero weights map everything to 0: the centre is +eps, never 0, and training stays finite
    dead = state.replace(params=jax.tree.map(jnp.zeros_like, state.params))
    dead = deep_svdd.setup(dead, jnp.asarray(blob))
    np.testing.assert_allclose(dead.extra["c"], np.full(4, 0.1))
    _, metrics = deep_svdd.train_step(dead, {"x": jnp.asarray(blob[:10]), "w": jnp.ones(10)})
    np.testing.assert_allclose(metrics["loss"], 4 * 0.01, rtol=1e-5)


def test_networks_have_no_bias_parameters(blob):
    config = resolve_config("deep_svdd", {"hidden": (16, 8, 4), "pretrain_epochs": 1})
    state = deep_svdd.init(jax.random.PRNGKey(0), config, jnp.asarray(blob[:2]))
    names = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(state.params)]
    assert len(names) == 3 and all(n.endswith("['kernel']") for n in names), names
    ae_params = deep_svdd.build_autoencoder(config).init(jax.random.PRNGKey(0), jnp.asarray(blob[:2]))["params"]
    ae_names = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(ae_params)]
    assert len(ae_names) == 6 and all(n.endswith("['kernel']") for n in ae_names), ae_names
    # the encoder is phi: same structure and shapes
    assert jax.tree.map(jnp.shape, ae_params["encoder"]) == jax.tree.map(jnp.shape, state.params)


# ---------------------------------------------------------------- training

def test_training_reduces_the_mean_distance(blob):
    config = resolve_config("deep_svdd", {"hidden": (16, 8), "epochs": 15, "lr": 1e-3, "batch_size": 32})
    result = train.fit("deep_svdd", config, blob, seeds=(0,), progress=False)
    state = first(result.states)
    before = deep_svdd.setup(deep_svdd.init(jax.random.PRNGKey(0), config, jnp.asarray(blob[:2])), jnp.asarray(blob))
    np.testing.assert_allclose(state.extra["c"], before.extra["c"], rtol=1e-5)
    d0 = float(jnp.mean(deep_svdd.distances(before, jnp.asarray(blob))))
    d1 = float(jnp.mean(deep_svdd.distances(state, jnp.asarray(blob))))
    assert d1 < 0.5 * d0, (d0, d1)
    assert result.history["loss"][-1, 0] < result.history["loss"][0, 0]


def test_quality_floor_breast_cancer_and_seeds():
    split = load_split("breast_cancer")
    config = resolve_config("deep_svdd", {"epochs": 5})
    a = train.fit("deep_svdd", config, split.x_train, seeds=(0, 1), progress=False)
    b = train.fit("deep_svdd", config, split.x_train, seeds=(0, 1), progress=False)
    scores_a = train.score("deep_svdd", a.states, split.x_test)
    scores_b = train.score("deep_svdd", b.states, split.x_test)
    for s in scores_a:
        assert auroc(split.y_test, s) > 0.8
    np.testing.assert_array_equal(scores_a, scores_b)  # same seeds: identical
    np.testing.assert_array_equal(a.states.extra["c"], b.states.extra["c"])
    c = np.asarray(a.states.extra["c"])
    assert not np.allclose(c[0], c[1])  # different seeds: different centres and scores
    assert not np.allclose(scores_a[0], scores_a[1])


def test_soft_boundary_radius_after_warm_up(blob):
    base = {"hidden": (8, 4), "objective": "soft-boundary", "nu": 0.2, "batch_size": 50, "lr": 1e-3}
    warm = train.fit("deep_svdd", resolve_config("deep_svdd", {**base, "epochs": 2, "warm_up_epochs": 5}),
                     blob, seeds=(0,), progress=False)
    assert float(warm.states.extra["R"][0]) == 0.0  # still warming up
    assert np.all(warm.history["R"] == 0.0)
    result = train.fit("deep_svdd", resolve_config("deep_svdd", {**base, "epochs": 3, "warm_up_epochs": 2}),
                       blob, seeds=(0,), progress=False)
    np.testing.assert_array_equal(result.history["R"][0], 0.0)
    assert result.history["R"][1, 0] > 0.0  # set after the 2nd epoch
    state = first(result.states)
    dist = np.asarray(deep_svdd.distances(state, jnp.asarray(blob)))
    R = float(state.extra["R"])
    np.testing.assert_allclose(R, np.quantile(np.sqrt(dist), 0.8), rtol=1e-5)
    # score = d^2 - R^2: about a share nu of the training rows lie outside (score > 0)
    scores = np.asarray(deep_svdd.score(state, jnp.asarray(blob)))
    np.testing.assert_allclose(scores, dist - R ** 2, rtol=1e-5, atol=1e-6)
    assert abs(np.mean(scores > 0) - 0.2) < 0.02


def test_learning_rate_drops_after_the_milestone(blob):
    config = resolve_config("deep_svdd", {"hidden": (8, 4), "epochs": 4, "lr": 1e-3, "lr_milestones": (2,)})
    result = train.fit("deep_svdd", config, blob, seeds=(0,), progress=False)
    np.testing.assert_allclose(result.history["lr"][:, 0], [1e-3, 1e-3, 1e-4, 1e-4], rtol=1e-6)
    np.testing.assert_allclose(deep_svdd.learning_rate(first(result.states)), 1e-4, rtol=1e-6)
    np.testing.assert_allclose(deep_svdd.milestone_lr(1e-4, (50, 100), jnp.array([0, 49, 50, 99, 100])),
                               [1e-4, 1e-4, 1e-5, 1e-5, 1e-6], rtol=1e-6)
    # the rate in the optimizer state is the one the step uses: 0 leaves the weights unchanged
    state = first(result.states)
    frozen = state.replace(opt_state=state.opt_state._replace(
        hyperparams={**state.opt_state.hyperparams, "learning_rate": jnp.zeros(())}))
    stepped, _ = deep_svdd.train_step(frozen, {"x": jnp.asarray(blob[:16]), "w": jnp.ones(16)})
    for a, b in zip(jax.tree.leaves(stepped.params), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(a, b)


def test_pretraining_lowers_the_reconstruction_loss_and_initialises_phi(blob):
    config = resolve_config("deep_svdd", {"hidden": (8, 4), "epochs": 1, "pretrain_epochs": 8,
                                          "ae_lr": 1e-2, "ae_batch_size": 32})
    result = train.fit("deep_svdd", config, blob, seeds=(0,), progress=False)
    curve = np.asarray(result.states.extra["pretrain_loss"][0])
    assert curve.shape == (8,) and curve[-1] < 0.8 * curve[0]
    state0 = deep_svdd.init(jax.random.PRNGKey(0), config, jnp.asarray(blob[:2]))
    stats = base.feature_stats(jnp.asarray(blob))
    pretrained, _ = deep_svdd.pretrain(state0, deep_svdd.standardized(jnp.asarray(blob), stats))
    # the centre was computed from the pretrained phi
    ready = deep_svdd.setup(state0, jnp.asarray(blob))
    for a, b in zip(jax.tree.leaves(ready.params), jax.tree.leaves(pretrained)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(jax.tree.leaves(pretrained)[0], jax.tree.leaves(state0.params)[0])
    np.testing.assert_allclose(
        ready.extra["c"], losses.svdd_center(deep_svdd.embed(ready, jnp.asarray(blob)), 0.1), rtol=1e-6)


def test_detector_with_images_flattens_them():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(40, 6, 6, 1)).astype(np.float32)
    det = jaxad.Detector("deep_svdd", epochs=2, hidden=(8, 4)).fit(images)
    assert det.decision_scores_.shape == (40,)
    assert det.decision_function(images[:5]).shape == (5,)


# ---------------------------------------------------------------- bad settings

GOOD = np.random.default_rng(1).normal(size=(20, 3))


@pytest.mark.parametrize("kwargs, message", [
    ({"nu": 0.0}, r"nu=0.0: expected a number in \(0.0, 1.0\)"),
    ({"nu": 1.0}, "nu=1.0"),
    ({"nu": 1.5}, "nu=1.5"),
    ({"objective": "hard"}, "objective='hard'"),
    ({"bias": True}, r"bias=True: Deep SVDD must be bias-free \(Ruff et al. 2018, Prop. 2"),
    ({"hidden": ()}, r"hidden=\(\)"),
    ({"lr_milestones": (50, 10)}, r"lr_milestones=\(50, 10\)"),
    ({"center_eps": 0.0}, "center_eps=0.0"),
    ({"warm_up_epochs": -1}, "warm_up_epochs=-1"),
    ({"pretrain_epochs": 1.5}, "pretrain_epochs=1.5"),
    ({"activation": "swishy"}, "activation='swishy'"),
    ({"lr": 0.0}, "lr=0.0"),
])
def test_bad_settings_raise_before_training(kwargs, message, monkeypatch):
    def no_training(*a, **k):
        raise AssertionError("training started with bad settings")

    monkeypatch.setattr(jaxad.train, "fit", no_training)
    with pytest.raises(ValueError, match=message):
        jaxad.Detector("deep_svdd", **kwargs).fit(GOOD)
