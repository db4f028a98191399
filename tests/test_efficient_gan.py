"""Efficient GAN (Zenati et al. 2018): BiGAN losses and both scores by hand, the three parameter
groups and their separate optimizers, the EMA, per-epoch metrics, the convolutional variant, bad
settings, the driver's KDD protocol and a quality floor on real KDD data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import presets, run
from jaxad import losses, metrics, train
from jaxad.methods import efficient_gan as eg
from jaxad.methods import resolve_config

GROUPS = {"encoder", "generator", "discriminator"}
# One compilation each, shared by the tests (the config is a static part of the state).
STEP, D_STEP, EG_STEP = (jax.jit(f) for f in (eg.train_step, eg.discriminator_step, eg.encoder_generator_step))


def softplus(v):
    return float(np.log1p(np.exp(v)))


@pytest.fixture(scope="module")
def rows():
    return np.random.default_rng(0).random((300, 6)).astype(np.float32)


def init_state(config, x):
    """Seed 0's state, initialised as the engine does (one compiled program: faster than eager)."""
    return jax.tree.map(lambda a: a[0], train.init_states(eg.METHOD, config, jnp.asarray(x), (0,)))


def fresh_state(x, **over):
    return init_state(resolve_config("efficient_gan", {"lr": 1e-3, **over}), x)


def tree_equal(a, b) -> bool:
    return all(bool((u == v).all()) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def tree_differs_everywhere(a, b) -> bool:
    return all(bool((u != v).any()) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


# ---------------------------------------------------------------- losses by hand

def test_bigan_losses_by_hand():
    real, fake = jnp.array([0.0, 2.0, 5.0]), jnp.array([0.0, -1.0, 7.0])
    w = jnp.array([1.0, 1.0, 0.0])  # the last row is padding
    d = losses.bigan_discriminator_loss(real, fake, w)
    expected = (softplus(0) + softplus(-2)) / 2 + (softplus(0) + softplus(-1)) / 2
    np.testing.assert_allclose(d, expected, rtol=1e-6)
    np.testing.assert_allclose(losses.bigan_generator_loss(fake, w), (softplus(0) + softplus(1)) / 2, rtol=1e-6)
    np.testing.assert_allclose(losses.bigan_encoder_loss(real, w), (softplus(0) + softplus(2)) / 2, rtol=1e-6)
    np.testing.assert_allclose(losses.bigan_cross_entropy_score(real), [softplus(0), softplus(-2), softplus(-5)],
                               rtol=1e-6)


def test_score_parts_by_hand():
    f_real, f_rec = jnp.array([[1.0, 2.0], [0.0, 0.0]]), jnp.array([[0.0, 0.0], [1.0, -1.0]])
    np.testing.assert_allclose(losses.bigan_feature_matching_score(f_real, f_rec), [3.0, 2.0])
    x = jnp.array([[3.0, 4.0], [1.0, -1.0]])
    np.testing.assert_allclose(losses.lp_distance(x, jnp.zeros_like(x), 1), [7.0, 2.0])
    np.testing.assert_allclose(losses.lp_distance(x, jnp.zeros_like(x), 2), [5.0, np.sqrt(2.0)], rtol=1e-6)
    np.testing.assert_allclose(losses.bigan_anomaly_score(jnp.array([10.0]), jnp.array([1.0]), 0.9), [9.1], rtol=1e-6)


def hand_made_state(alpha=0.9, p=1, score="fm"):
    """features 2, latent 1, every width 2. E(x) = 0; G(z) = b = (0.5, 1); D's only live path:
    x_0 -> leaky -> leaky = f_0, logit = f_0 + 0.5. The real params stay random: scores must
    come from the EMA."""
    config = resolve_config("efficient_gan", {"latent_dim": 1, "encoder_hidden": (2,), "generator_hidden": (2,),
                                              "discriminator_width": 2, "alpha": alpha, "p": p, "score": score})
    state = eg.init(jax.random.PRNGKey(0), config, jnp.zeros((2, 2)))
    hand = jax.tree.map(lambda a: np.zeros(a.shape, np.float32), state.params)
    hand["generator"]["Dense_1"]["bias"][:] = [0.5, 1.0]
    hand["discriminator"]["x_dense"]["kernel"][0, 0] = 1.0
    hand["discriminator"]["joint_dense"]["kernel"][0, 0] = 1.0
    hand["discriminator"]["logit"]["kernel"][0, 0] = 1.0
    hand["discriminator"]["logit"]["bias"][0] = 0.5
    return state.replace(extra={**state.extra, "ema": jax.tree.map(jnp.asarray, hand)})


def test_both_scores_on_a_hand_made_case():
    x = jnp.array([[2.0, 3.0], [-1.0, 0.0]])
    # recon ||x - b||_1 = 1.5 + 2 = 3.5 and 1.5 + 1 = 2.5. leaky(leaky(2)) = 2,
    # leaky(leaky(-1)) = -0.01, and the reconstruction's f_0 = leaky(leaky(0.5)) = 0.5.
    recon, fm = np.array([3.5, 2.5]), np.array([1.5, 0.51])
    ce = np.array([softplus(-2.5), softplus(-0.49)])
    state = hand_made_state()
    parts = eg.score_parts(state, x)
    np.testing.assert_allclose(parts["recon"], recon, rtol=1e-6)
    np.testing.assert_allclose(parts["fm"], fm, rtol=1e-5)
    np.testing.assert_allclose(parts["ce"], ce, rtol=1e-5)
    np.testing.assert_allclose(eg.score(state, x), 0.9 * recon + 0.1 * fm, rtol=1e-5)  # default: fm
    np.testing.assert_allclose(eg.score(hand_made_state(score="ce"), x), 0.9 * recon + 0.1 * ce, rtol=1e-5)
    np.testing.assert_allclose(eg.score(hand_made_state(alpha=0.0, score="ce"), x), ce, rtol=1e-5)
    np.testing.assert_allclose(eg.score(hand_made_state(alpha=1.0, p=2), x), [2.5, np.sqrt(3.25)], rtol=1e-5)
    # the raw params give other scores: scoring reads the EMA
    assert not np.allclose(eg.score_parts(state, x, state.params)["recon"], recon)


# ---------------------------------------------------------------- groups and optimizers

def test_params_have_three_groups_and_optimizers_own_theirs(rows):
    state = fresh_state(rows)
    assert set(state.params) == GROUPS
    assert set(state.opt_state) == {"d", "eg"}
    adam_d = state.opt_state["d"].inner_states["discriminator"].inner_state[0]
    assert set(adam_d.mu) == GROUPS and jax.tree.leaves(adam_d.mu["encoder"]) == []  # masked out
    assert set(state.opt_state["eg"].inner_states) == GROUPS


def counts(state) -> dict:
    return {jax.tree_util.keystr(p): int(v) for p, v in jax.tree_util.tree_leaves_with_path(state.opt_state)
            if jax.tree_util.keystr(p).endswith(".count")}


def test_discriminator_step_leaves_encoder_and_generator_bit_identical(rows):
    state = fresh_state(rows)
    batch = {"x": jnp.asarray(rows[:50]), "w": jnp.ones(50)}
    state, _ = STEP(state, batch)  # both optimizers have momentum now
    after, _ = D_STEP(state, batch["x"], batch["w"], jax.random.PRNGKey(7))
    for group in ("encoder", "generator"):
        assert tree_equal(after.params[group], state.params[group]), group
    assert tree_differs_everywhere(after.params["discriminator"], state.params["discriminator"])
    assert tree_equal(after.opt_state["eg"], state.opt_state["eg"])  # E/G's Adam moments untouched
    assert not tree_equal(after.opt_state["d"], state.opt_state["d"])
    assert int(after.step) == int(state.step)  # D's step does not advance the step


def test_encoder_generator_step_leaves_discriminator_bit_identical(rows):
    state = fresh_state(rows)
    batch = {"x": jnp.asarray(rows[:50]), "w": jnp.ones(50)}
    state, _ = STEP(state, batch)
    after, _ = EG_STEP(state, batch["x"], batch["w"], jax.random.PRNGKey(7))
    assert tree_equal(after.params["discriminator"], state.params["discriminator"])
    for group in ("encoder", "generator"):
        assert tree_differs_everywhere(after.params[group], state.params[group]), group
    assert tree_equal(after.opt_state["d"], state.opt_state["d"])
    assert int(after.step) == int(state.step) + 1
    # the optimizers count their own updates: two E/G steps, one D step
    assert sorted(counts(after).values()) == [1, 2, 2]


def test_ema_update_and_train_step_metrics(rows):
    state = fresh_state(rows)  # decay 0.9999, the authors'
    batch = {"x": jnp.asarray(rows[:50]), "w": jnp.ones(50)}
    after, m = STEP(state, batch)
    expected = jax.tree.map(lambda e, p: 0.9999 * e + 0.0001 * p, state.extra["ema"], after.params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), after.extra["ema"], expected)
    assert not tree_equal(after.extra["ema"], state.extra["ema"])
    assert set(m) == {"loss", "loss_d", "loss_e", "loss_g", "d_real", "d_fake"}
    np.testing.assert_allclose(m["loss"], m["loss_d"] + m["loss_e"] + m["loss_g"], rtol=1e-6)
    # decay 0: the average is the params themselves
    raw = eg.update_ema(fresh_state(rows, ema_decay=0.0).replace(params=after.params))
    assert tree_equal(raw.extra["ema"], after.params)
    # the same state and batch give the same step; the next step draws new noise
    again, _ = STEP(state, batch)
    assert tree_equal(again.params, after.params)
    assert not bool((after.step_rng() == state.step_rng()).all())


def test_padding_rows_change_nothing(rows):
    """A weight-0 row (the engine's padding) must not move any parameter."""
    state = fresh_state(rows)
    x = jnp.asarray(rows[:50])
    w = jnp.ones(50).at[49].set(0.0)
    a, _ = STEP(state, {"x": x, "w": w})
    b, _ = STEP(state, {"x": x.at[49].set(1e3), "w": w})
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-7), a.params, b.params)


# ---------------------------------------------------------------- the engine

@pytest.fixture(scope="module")
def breast_cancer():
    from jaxad.data import load_split

    return load_split("breast_cancer")


def test_fit_records_per_epoch_metrics_and_repeats_exactly(breast_cancer):
    rows = breast_cancer.x_train  # (250, 30); the CLI test below reuses these compiled programs
    config = resolve_config("efficient_gan", {"epochs": 2, "lr": 1e-3})
    a = train.fit("efficient_gan", config, rows, seeds=(0, 1), progress=False)
    for key in ("loss", "loss_d", "loss_e", "loss_g", "d_real", "d_fake", "val_recon", "val_ce", "val_fm",
                "val_score"):
        assert a.history[key].shape == (2, 2) and np.isfinite(a.history[key]).all(), key
    # val_score is the mean A(x) on the fixed training rows, with the final state
    state = jax.tree.map(lambda v: v[0], a.states)
    val = rows[eg.validation_rows(len(rows), config["val_rows"])]
    np.testing.assert_allclose(a.history["val_score"][-1, 0], float(jnp.mean(eg.score(state, val))), rtol=1e-5)
    b = train.fit("efficient_gan", config, rows, seeds=(0, 1), progress=False)
    np.testing.assert_array_equal(train.score("efficient_gan", a.states, rows[:20]),
                                  train.score("efficient_gan", b.states, rows[:20]))
    scores = train.score("efficient_gan", a.states, rows[:20])
    assert not np.allclose(scores[0], scores[1])  # different seeds, different models


# ---------------------------------------------------------------- convolutional variant

def test_convolutional_bigan_on_28x28_images_has_the_authors_shapes():
    config = resolve_config("efficient_gan", {}, preset="fashion_mnist")
    eg.validate(config, (6, 28, 28, 1))
    model = eg.build_model(config, (6, 28, 28, 1))
    x = jax.ShapeDtypeStruct((3, 28, 28, 1), jnp.float32)
    variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros(x.shape)))
    assert set(variables["params"]) == GROUPS and set(variables["batch_stats"]) == GROUPS
    shapes = jax.tree.map(lambda a: a.shape, variables["params"])
    assert shapes["generator"]["Dense_1"]["kernel"] == (1024, 7 * 7 * 128)
    assert shapes["encoder"]["Dense_0"]["kernel"] == (7 * 7 * 128, 200)
    recon, aux = jax.eval_shape(lambda v, x: model.apply(v, x), variables, x)
    assert recon.shape == (3, 28, 28, 1) and aux["z"].shape == (3, 200) and aux["features"].shape == (3, 1024)


def test_each_step_keeps_only_its_own_networks_batch_statistics():
    old = {"batch_stats": {"encoder": {"m": 1}, "generator": {"m": 2}, "discriminator": {"m": 3}}}
    new = {"batch_stats": {"encoder": {"m": 10}, "generator": {"m": 20}, "discriminator": {"m": 30}}}
    assert eg._keep_groups(old, new, ("discriminator",)) == {
        "batch_stats": {"encoder": {"m": 1}, "generator": {"m": 2}, "discriminator": {"m": 30}}}
    assert eg._keep_groups(old, new, ("encoder", "generator")) == {
        "batch_stats": {"encoder": {"m": 10}, "generator": {"m": 20}, "discriminator": {"m": 3}}}
    assert eg._keep_groups({}, {}, ("encoder",)) == {}  # the dense BiGAN has no batch norm


def test_convolutional_bigan_trains_on_images():
    images = np.random.default_rng(0).random((6, 8, 8, 1)).astype(np.float32)  # small, same layers
    config = resolve_config("efficient_gan", {"latent_dim": 8}, preset="fashion_mnist")
    state = init_state(config, images)
    x, w = jnp.asarray(images), jnp.array([1.0] * 5 + [0.0])
    after, m = STEP(state, {"x": x, "w": w})
    assert np.isfinite(float(m["loss"]))
    for group in GROUPS:  # every network trained, every batch norm saw the batch
        assert tree_differs_everywhere(after.params[group], state.params[group]), group
        assert not tree_equal(after.model_state["batch_stats"][group], state.model_state["batch_stats"][group])
    assert eg.score(after, x).shape == (6,)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("overrides, match", [
    ({"alpha": 1.5}, "alpha=1.5"),
    ({"alpha": -0.1}, "alpha=-0.1"),
    ({"p": 3}, "p=3: expected 1 or 2"),
    ({"p": True}, "p=True"),
    ({"latent_dim": 0}, "latent_dim=0"),
    ({"score": "mse"}, "score='mse'"),
    ({"ema_decay": 1.0}, "ema_decay=1.0"),
    ({"dropout": 1.0}, "dropout=1.0"),
    ({"initializer": "he"}, "initializer='he'"),
])
def test_bad_settings_are_value_errors(overrides, match):
    with pytest.raises(ValueError, match=match):
        eg.validate(resolve_config("efficient_gan", overrides), (10, 5))


def test_bad_image_size_and_cli_errors_before_training(tmp_path, capsys):
    with pytest.raises(ValueError, match="divisible by 4"):
        eg.validate(resolve_config("efficient_gan"), (10, 30, 30, 1))
    code = run.main(["efficient_gan", "wine", "--out", str(tmp_path), "--no-progress", "alpha=2"])
    assert code == 2 and "alpha=2" in capsys.readouterr().err


def test_driver_runs_the_kdd_protocol_with_the_fm_score():
    config, data, ev = presets.resolve_setup("efficient_gan", "kddcup99")
    assert config["score"] == "fm" and config["alpha"] == 0.9 and config["p"] == 1
    assert (config["lr"], config["beta1"], config["batch_size"], config["ema_decay"]) == (1e-5, 0.5, 50, 0.9999)
    assert ev["threshold"] == "top_fraction" and ev["contamination"] == 0.2
    assert data == {"split_seed": 42, "test_anomaly_ratio": 0.2, "scaling": "minmax"}
    config, _, _ = presets.resolve_setup("efficient_gan", "kddcup99", {"score": "ce"})
    assert config["score"] == "ce"
    for method in ("ae", "deep_svdd"):
        _, _, ev = presets.resolve_setup(method, "kddcup99")
        assert ev["threshold"] == "top_fraction" and ev["contamination"] == 0.2


def test_the_cli_writes_precision_recall_f1(tmp_path):
    code = run.main(["efficient_gan", "breast_cancer", "--seeds", "2", "--out", str(tmp_path), "--no-progress",
                     "epochs=1", "lr=1e-3"])
    assert code == 0
    import json

    record = json.loads(next(tmp_path.glob("efficient_gan__breast_cancer__*.json")).read_text())
    assert {"precision", "recall", "f1", "auroc"} <= set(record["metrics"])


@pytest.mark.slow
@pytest.mark.data
def test_quality_floor_on_a_kdd_subsample(shared_data_dir):
    """20 000 training rows, 6 epochs: an untrained BiGAN ranks KDD's anomalies *below* the
    attacks (AUROC about 0.05, the smurf rows are far from its output); a trained one must not.
    (lr 3e-4 and EMA 0.999 make 2 400 steps enough; measured AUROC 0.88-0.95 over seeds 0-2.)"""
    from jaxad.data import load_split

    split = load_split("kddcup99", data_dir=shared_data_dir)
    rng = np.random.default_rng(1)
    x_train = split.x_train[rng.choice(len(split.x_train), 20000, replace=False)]
    test = np.random.default_rng(0).choice(len(split.x_test), 20000, replace=False)
    config = resolve_config("efficient_gan", {"epochs": 6, "lr": 3e-4, "ema_decay": 0.999})
    result = train.fit("efficient_gan", config, x_train, seeds=(0,), progress=False)
    scores = train.score("efficient_gan", result.states, split.x_test[test])[0]
    y = split.y_test[test]
    assert metrics.auroc(y, scores) > 0.8
    thr = metrics.threshold_top_fraction(scores, 0.2)
    assert metrics.classification_metrics(y, scores, thr)["f1"] > 0.5
    # the validation metrics saw the reconstruction improve
    assert result.history["val_recon"][-1, 0] < 0.5 * result.history["val_recon"][0, 0]
