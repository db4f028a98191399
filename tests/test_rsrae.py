"""RSRAE and RSRAE+ (Lai, Zou, Lerman 2020): losses by hand, the RSR layer, parameter groups and
per-loss Adam states, the score, bad settings, and training for real."""

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxad
from jaxad import losses, train
from jaxad.methods import get_method, resolve_config, rsrae
from jaxad.metrics import auroc
from jaxad.models.rsrae import RSRAE

PLUS_STEP = jax.jit(rsrae.train_step_plus)


def tree_equal(a, b) -> bool:
    return all(bool((x == y).all()) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def subspace_data(n=300, m=30, dim=40, rank=3, seed=0):
    """Inliers on a random rank-3 linear subspace of R^40, outliers isotropic at the same scale;
    labels 1 = outlier."""
    rng = np.random.default_rng(seed)
    inliers = rng.normal(size=(n, rank)) @ rng.normal(size=(rank, dim))
    outliers = rng.normal(size=(m, dim)) * np.sqrt(rank)
    x = np.concatenate([inliers, outliers]).astype(np.float32)
    return x, np.r_[np.zeros(n), np.ones(m)].astype(np.int64)


# ---------------------------------------------------------------- losses by hand

def test_norm_types_by_hand_and_l21_is_not_squared():
    x = jnp.array([[3.0, 4.0], [0.0, 0.0], [1.0, -2.0]])
    r = jnp.zeros_like(x)
    np.testing.assert_allclose(losses.rsr_reconstruction_error(x, r, "l21"), [5.0, 0.0, np.sqrt(5.0)], rtol=1e-6)
    np.testing.assert_allclose(losses.rsr_reconstruction_error(x, r, "mse"), [25.0, 0.0, 5.0])
    np.testing.assert_allclose(losses.rsr_reconstruction_error(x, r, "frobenius"), [25.0, 0.0, 5.0])
    np.testing.assert_allclose(losses.rsr_reconstruction_error(x, r, "l1"), [7.0, 0.0, 3.0])
    # images are flattened per sample
    np.testing.assert_allclose(losses.rsr_reconstruction_error(x.reshape(3, 1, 2, 1), r.reshape(3, 1, 2, 1)),
                               [5.0, 0.0, np.sqrt(5.0)], rtol=1e-6)
    # a perfectly reconstructed row has gradient 0, not NaN
    grad = jax.grad(lambda v: jnp.sum(losses.rsr_reconstruction_error(x, v, "l21")))(x.at[0].set(0.0))
    assert np.isfinite(np.asarray(grad)).all()
    with pytest.raises(ValueError, match="norm='l3'"):
        losses.rsr_norm(x, "l3")


def test_orthogonality_loss_by_hand():
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(6, 3)))
    assert float(losses.rsr_orthogonality_loss(jnp.asarray(q, jnp.float32))) < 1e-12
    # A = [[2, 0], [0, 1], [0, 0]]: A^T A - I = diag(3, 0) -> mean over 4 entries = 9 / 4
    A = jnp.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(losses.rsr_orthogonality_loss(A), 9.0 / 4.0)


def test_projection_loss_is_zero_inside_span_of_A_and_by_hand_outside():
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(5, 2)))
    A = jnp.asarray(q, jnp.float32)
    z = jnp.asarray(np.random.default_rng(2).normal(size=(4, 2)), jnp.float32) @ A.T  # in span(A)
    for norm in ("l21", "mse", "l1"):
        np.testing.assert_allclose(losses.rsr_projection_error(z, z @ A, A, norm), np.zeros(4), atol=1e-5)
    # A = e1 in R^2, z = (3, 4): back-projection (3, 0), residual (0, 4)
    A1, z1 = jnp.array([[1.0], [0.0]]), jnp.array([[3.0, 4.0]])
    np.testing.assert_allclose(losses.rsr_projection_error(z1, z1 @ A1, A1, "l21"), [4.0])
    np.testing.assert_allclose(losses.rsr_projection_error(z1, z1 @ A1, A1, "mse"), [16.0])


def test_score_is_negative_cosine_between_input_and_reconstruction():
    x = jnp.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    recon = jnp.array([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(losses.negative_cosine_similarity(x, recon), [-1.0, 0.0, 1.0, -1.0], atol=1e-5)
    # the same reconstruction scores differently for different inputs (the notebook's
    # cosine_similarity(x_predict, x) ignored x and gave -1 for every row)
    a = losses.negative_cosine_similarity(jnp.array([[1.0, 0.0]]), jnp.array([[1.0, 1.0]]))
    b = losses.negative_cosine_similarity(jnp.array([[0.0, 1.0]]), jnp.array([[1.0, 2.0]]))
    assert float(a[0]) != float(b[0])
    assert float(losses.negative_cosine_similarity(jnp.zeros((1, 3)), jnp.ones((1, 3)))[0]) == 0.0


# ---------------------------------------------------------------- model

@pytest.mark.parametrize("network, shape, code", [("dense", (3, 20), 128), ("conv", (3, 28, 28, 1), 3 * 3 * 128),
                                                  ("conv", (3, 8, 8, 1), 128)])
def test_rsr_layer_holds_A_and_shapes(network, shape, code):
    model = RSRAE(network=network, intrinsic_size=4, batch_norm="frozen")
    x = jnp.asarray(np.random.default_rng(0).normal(size=shape), jnp.float32)
    variables = model.init(jax.random.PRNGKey(0), x, train=False)
    assert set(variables["params"]) == {"encoder", "rsr", "decoder"}
    A = variables["params"]["rsr"]["A"]
    assert A.shape == (code, 4)
    recon, aux = model.apply(variables, x, train=False)
    assert recon.shape == x.shape and aux["z"].shape == (3, code)
    np.testing.assert_allclose(aux["z_rsr"], aux["z"] @ A, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(jnp.linalg.norm(aux["z_tilde"], axis=1), np.ones(3), rtol=1e-5)


def test_batch_norm_statistics_ignore_padding_rows():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(6, 5)), jnp.float32)
    padded = jnp.concatenate([x, 100.0 + jnp.zeros((2, 5))])
    mask = jnp.arange(8) < 6
    model = RSRAE(hidden=(4, 3), intrinsic_size=2, batch_norm="batch")
    variables = model.init(jax.random.PRNGKey(0), x, train=False)
    _, real = model.apply(variables, x, train=True, mutable=["batch_stats"])
    _, masked = model.apply(variables, padded, train=True, mask=mask, mutable=["batch_stats"])
    for a, b in zip(jax.tree.leaves(real), jax.tree.leaves(masked)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- parameter groups, per-loss Adam

@pytest.fixture(scope="module")
def plus_state():
    x, _ = subspace_data()
    config = resolve_config("rsrae_plus", {"hidden": (16, 8), "intrinsic_size": 3, "lr": 1e-3})
    state = rsrae.init_plus(jax.random.PRNGKey(0), config, jnp.asarray(x[:2]))
    batch = {"x": jnp.asarray(x[:32]), "w": jnp.ones(32).at[-2:].set(0.0)}
    return state, batch


def tree_close(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-8)


def non_rsr(params):
    return {k: v for k, v in params.items() if k != "rsr"}


def test_A_only_steps_leave_encoder_and_decoder_bit_identical(plus_state):
    state, batch = plus_state
    # give the 'ae' optimizer momentum on every parameter first
    state, _ = PLUS_STEP(state, batch)
    ones = jax.tree.map(jnp.ones_like, state.params)  # a gradient on every parameter
    for name in ("projection", "orthogonality"):
        after = state.apply_gradients(ones, optimizer=name, advance=False)
        assert tree_equal(non_rsr(after.params), non_rsr(state.params)), name
        assert not bool((after.params["rsr"]["A"] == state.params["rsr"]["A"]).any()), name
        assert int(after.step) == int(state.step)


def test_each_loss_keeps_its_own_adam_state(plus_state):
    state, batch = plus_state
    start = state
    state, _ = PLUS_STEP(state, batch)
    for name in ("ae", "projection", "orthogonality"):  # every state moved in a full step
        assert not tree_equal(state.opt_state[name], start.opt_state[name]), name
    grads = jax.tree.map(jnp.ones_like, state.params)
    for name in ("ae", "projection", "orthogonality"):
        after = state.apply_gradients(grads, optimizer=name, advance=False)
        for other in {"ae", "projection", "orthogonality"} - {name}:
            assert tree_equal(after.opt_state[other], state.opt_state[other]), (name, other)
    # 'ae' has momentum on A now; a zero-gradient projection step must not move A
    zeros = jax.tree.map(jnp.zeros_like, state.params)
    fresh = rsrae.init_plus(jax.random.PRNGKey(1), state.config, batch["x"][:2])
    moved = fresh.apply_gradients(grads, optimizer="ae")
    still = moved.apply_gradients(zeros, optimizer="projection", advance=False)
    assert tree_equal(still.params, moved.params)


def test_plus_step_is_ae_step_then_A_steps(plus_state):
    state, batch = plus_state
    new, metrics = PLUS_STEP(state, batch)
    assert int(new.step) == int(state.step) + 1
    # encoder and decoder moved only by the AE step: replay it by hand (eagerly, so equal to
    # float32 rounding; bit-identity of the A-only steps is tested above)
    (l_ae, _, _), _ = rsrae.reconstruction_losses(state, state.params, batch["x"], batch["w"])
    grads = jax.grad(lambda p: rsrae.reconstruction_losses(state, p, batch["x"], batch["w"])[0][0])(state.params)
    by_hand = state.apply_gradients(grads, optimizer="ae")
    np.testing.assert_allclose(metrics["loss"], l_ae, rtol=1e-6)
    tree_close(non_rsr(new.params), non_rsr(by_hand.params))
    assert not bool((new.params["rsr"]["A"] == by_hand.params["rsr"]["A"]).all())
    # the authors' variant: the projection step also trains the encoder, never the decoder
    wide = rsrae.init_plus(jax.random.PRNGKey(0), {**state.config, "rsr_step_params": "encoder+rsr"},
                           batch["x"][:2])
    assert tree_equal(wide.params, state.params)
    new_wide, _ = PLUS_STEP(wide, batch)
    tree_close(new_wide.params["decoder"], by_hand.params["decoder"])
    assert not np.allclose(new_wide.params["encoder"]["Dense_0"]["kernel"], by_hand.params["encoder"]["Dense_0"]["kernel"])


def test_joint_step_minimises_the_weighted_sum():
    x, _ = subspace_data()
    config = resolve_config("rsrae", {"hidden": (16, 8), "intrinsic_size": 3, "lambda1": 0.5, "lambda2": 2.0})
    state = rsrae.init(jax.random.PRNGKey(0), config, jnp.asarray(x[:2]))
    batch = {"x": jnp.asarray(x[:16]), "w": jnp.ones(16)}
    _, metrics = jax.jit(rsrae.train_step)(state, batch)
    expected = metrics["reconstruction"] + 0.5 * metrics["projection"] + 2.0 * metrics["orthogonality"]
    np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-6)
    np.testing.assert_allclose(metrics["orthogonality"], losses.rsr_orthogonality_loss(rsrae.subspace(state)), rtol=1e-6)


# ---------------------------------------------------------------- training and scores

@pytest.mark.parametrize("name", ["rsrae", "rsrae_plus"])
def test_quality_floor_on_a_subspace_with_outliers_and_same_seed_same_scores(name):
    x, y = subspace_data()
    config = resolve_config(name, {"epochs": 30, "hidden": (32, 16), "intrinsic_size": 3, "lr": 1e-3,
                                   "activation": "leaky_relu", "output_activation": "linear", "batch_size": 64,
                                   "score_type": "cosine"})
    a = train.fit(name, config, x, seeds=(0, 1), progress=False)
    b = train.fit(name, config, x, seeds=(0, 1), progress=False)
    scores = train.score(name, a.states, x)
    np.testing.assert_array_equal(scores, train.score(name, b.states, x))
    assert not np.allclose(scores[0], scores[1])
    for s in scores:
        assert auroc(y, s) > 0.9, auroc(y, s)
    assert a.history["loss"][-1].mean() < a.history["loss"][0].mean()
    state = jax.tree.map(lambda v: v[0], a.states)
    recon = rsrae.reconstruct(state, jnp.asarray(x))
    np.testing.assert_allclose(scores[0], losses.negative_cosine_similarity(x, recon), rtol=1e-5, atol=1e-6)
    error = rsrae.score(state.replace(config=jaxad.methods.FrozenConfig({**state.config, "score_type": "l21"})), x)
    np.testing.assert_allclose(error, losses.rsr_reconstruction_error(x, recon, "l21"), rtol=1e-5)


def test_rsrae_plus_orthonormalises_A():
    x, _ = subspace_data()
    config = resolve_config("rsrae_plus", {"epochs": 20, "hidden": (32, 16), "intrinsic_size": 3, "lr": 1e-3,
                                           "rsr_init_std": 0.3, "batch_size": 64})
    result = train.fit("rsrae_plus", config, x, seeds=(0,), progress=False)
    A = np.asarray(result.states.params["rsr"]["A"][0])
    np.testing.assert_allclose(A.T @ A, np.eye(3), atol=0.1)
    assert result.history["orthogonality"][-1, 0] < 0.1 * result.history["orthogonality"][0, 0]


def test_conv_network_on_digit_images_transductive():
    """The authors' image protocol in small: digit 0 normal plus a share of other digits, fit and
    scored on the same pool, 8x8 images scaled to [-1, 1] and row-normalised, tanh."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    normal = digits.images[digits.target == 0]
    others = digits.images[digits.target != 0][:60]
    x = np.concatenate([normal, others]).reshape(-1, 64) / 16.0 * 2 - 1
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).reshape(-1, 8, 8, 1).astype(np.float32)
    y = np.r_[np.zeros(len(normal)), np.ones(len(others))]
    config = resolve_config("rsrae_plus", {"epochs": 25, "activation": "tanh", "hidden": (8, 16, 32),
                                           "kernel_sizes": (3, 3, 3), "lr": 2e-3, "batch_size": 64})
    assert rsrae.network_kind(config, x.ndim) == "conv"
    result = train.fit("rsrae_plus", config, x, seeds=(0,), progress=False)
    assert auroc(y, train.score("rsrae_plus", result.states, x)[0]) > 0.85


# ---------------------------------------------------------------- bad settings

GOOD = np.random.default_rng(1).normal(size=(20, 6))


@pytest.mark.parametrize("method, kwargs, data, message", [
    ("rsrae", {"hidden": (8, 4), "intrinsic_size": 5}, GOOD,
     r"intrinsic_size=5: expected at most the encoder's code dimension D = 4"),
    ("rsrae_plus", {"intrinsic_size": 200, "hidden": (4, 8, 16)}, np.zeros((4, 8, 8, 1)),
     r"intrinsic_size=200: expected at most the encoder's code dimension D = 16"),
    ("rsrae", {"loss": "l3"}, GOOD, r"loss='l3': expected one of \['frobenius', 'l1', 'l21', 'mse'\]"),
    ("rsrae_plus", {"rsr_loss": "L21"}, GOOD, "rsr_loss='L21'"),
    ("rsrae", {"score_type": "euclid"}, GOOD, "score_type='euclid'"),
    ("rsrae", {"batch_norm": True}, GOOD, "batch_norm=True"),
    ("rsrae", {"normalize": 1}, GOOD, "normalize=1: expected True or False"),
    ("rsrae", {"network": "conv"}, GOOD, r"network='conv': expected images"),
    ("rsrae", {}, np.zeros((4, 30, 30, 1)), "image height 30 does not survive"),
    ("rsrae", {"kernel_sizes": (5, 5)}, np.zeros((4, 28, 28, 1)), r"kernel_sizes=\(5, 5\)"),
    ("rsrae_plus", {"rsr_step_params": "decoder"}, GOOD, "rsr_step_params='decoder'"),
    ("rsrae_plus", {"rsr_lr_factor": 0}, GOOD, "rsr_lr_factor=0"),
    ("rsrae", {"lambda1": -1.0}, GOOD, "lambda1=-1.0"),
])
def test_bad_settings_raise_before_training(method, kwargs, data, message, monkeypatch):
    def no_training(*a, **k):
        raise AssertionError("training started with bad settings")

    monkeypatch.setattr(jaxad.train, "fit", no_training)
    with pytest.raises(ValueError, match=message):
        jaxad.Detector(method, scale=None, **kwargs).fit(data)


def test_registered_with_the_authors_defaults():
    for name in ("rsrae", "rsrae_plus"):
        d = get_method(name).defaults
        assert (d["lr"], d["epochs"], d["batch_size"], d["loss"], d["rsr_loss"], d["intrinsic_size"]) == \
            (2.5e-4, 200, 128, "l21", "l21", 10)
    assert get_method("rsrae_plus").defaults["rsr_lr_factor"] == 10.0


# ---------------------------------------------------------------- transposed convolutions as phases

@pytest.mark.parametrize("k, padding, side", [(3, "VALID", 3), (5, "SAME", 7), (3, "SAME", 4), (5, "VALID", 2)])
def test_strided_conv_transpose_equals_flax_conv_transpose(k, padding, side):
    import flax.linen as nn

    from jaxad.models.rsrae import StridedConvTranspose

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, side, side + 1, 3)), jnp.float32)
    reference = nn.ConvTranspose(4, (k, k), strides=(2, 2), padding=padding)
    variables = reference.init(jax.random.PRNGKey(0), x)
    variables = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape), a.dtype), variables)
    expected = reference.apply(variables, x)
    got = StridedConvTranspose(4, k, padding).apply(variables, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- the paper protocol's pieces

def test_paper_pools_follow_the_authors_rules():
    from experiments import rsrae_paper as paper

    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 1])
    x = np.arange(10, dtype=np.float32)[:, None]
    pool, y = paper.paper_pool(x, labels, normal=1, n_anomaly=3)
    # class 1 first (items 1, 4, 7, 9), then the first 3 others in dataset order (0, 2, 3)
    np.testing.assert_array_equal(pool[:, 0], [1, 4, 7, 9, 0, 2, 3])
    np.testing.assert_array_equal(y, [0, 0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(paper.first_per_class(labels, 2), [0, 1, 2, 3, 4, 5])
    assert [paper.n_anomalies("20newsgroups", c) for c in (0.1, 0.3, 0.5, 0.7, 0.9)] == [36, 108, 180, 251, 324]
    assert paper.n_anomalies("fashion_mnist", 0.7) == 700
    assert paper.authors_activation(np.array([0.0, 2.0])) == "relu"
    assert paper.authors_activation(np.array([-0.5, 1.0])) == "tanh"
    assert paper.authors_activation(np.array([-2.0, 3.0])) == "leaky_relu"


def test_paper_cell_trains_classes_x_seeds_as_one_fit_and_writes_a_record(tmp_path, monkeypatch):
    from experiments import rsrae_paper as paper

    monkeypatch.setitem(paper.N_PURE, "20newsgroups", 40)
    rng = np.random.default_rng(0)
    centres = rng.uniform(size=(3, 30)) * 2
    labels = np.repeat(np.arange(3), 40)
    x = np.abs(centres[labels] + 0.1 * rng.normal(size=(120, 30))).astype(np.float32)
    record = paper.run_cell("20newsgroups", 0.5, "rsrae_plus", x, labels, classes=(0, 2), seeds=(0, 1),
                            overrides={"epochs": 3, "hidden": (16, 8), "intrinsic_size": 4, "lr": 1e-3},
                            progress=False)
    assert record["members"] == [[0, 0], [0, 1], [2, 0], [2, 1]]
    assert record["split"]["n_pool"] == 60 and record["split"]["anomalies"] == 20
    assert len(record["metrics"]["auroc"]["per_seed"]) == 4 and set(record["per_class"]) == {"0", "2"}
    assert record["config"]["activation"] == "relu" and record["config"]["batch_norm"] == "frozen"
    paper.write_json(record, paper.record_path(tmp_path, "20newsgroups", 0.5, "rsrae_plus"))
    table = paper.table(tmp_path, "20newsgroups")
    assert "| 0.5 |" in table and "2 classes x 2 seeds, 3 epochs" in table
    # the same members in fits of 3 + 1 (as a memory cap splits them) give the same results
    split = paper.run_cell("20newsgroups", 0.5, "rsrae_plus", x, labels, classes=(0, 2), seeds=(0, 1),
                           overrides={"epochs": 3, "hidden": (16, 8), "intrinsic_size": 4, "lr": 1e-3},
                           progress=False, members_per_fit=3)
    assert split["fits"] == 2 and record["fits"] == 1 and split["members"] == record["members"]
    np.testing.assert_allclose(split["metrics"]["auroc"]["per_seed"], record["metrics"]["auroc"]["per_seed"], atol=1e-6)
    np.testing.assert_allclose(split["final_loss"], record["final_loss"], rtol=1e-5)


def test_paper_fit_size_caps_the_pools_one_fit_holds():
    from experiments import rsrae_paper as paper

    member = 6516 * 10_000 * 4  # a pool of 6516 rows of 10 000 float32 features
    assert paper.fit_size(100, member) == paper.MAX_FIT_BYTES // member == 16
    assert paper.fit_size(5, member) == 5 and paper.fit_size(3, 10 * paper.MAX_FIT_BYTES) == 1
    assert paper.fit_size(100, member, requested=7) == 7 and paper.fit_size(4, member, requested=9) == 4
    assert paper.fit_size(100, 1000, cap=20) == 20 and paper.fit_size(100, member, cap=20) == 16  # memory first
    assert paper.fit_size(100, 1000, requested=50, cap=20) == 50  # an explicit count wins
    with pytest.raises(ValueError, match="members_per_fit=0"):
        paper.fit_size(4, member, requested=0)


def test_auto_score_is_the_cosine_on_normalised_rows_and_the_error_on_raw_ones():
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(40, 6)).astype(np.float32) * 3.0
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    unit[0] = 0.0  # an empty document's TF-IDF row
    config = resolve_config("rsrae", {"hidden": (8,), "intrinsic_size": 2})
    assert config["score_type"] == "auto"
    state = rsrae.init(jax.random.PRNGKey(0), config, jnp.asarray(unit[:2]))
    for data, normalized in ((unit, True), (raw, False), (unit * 1.01, False)):
        fitted = rsrae.setup(state, jnp.asarray(data))
        assert bool(fitted.extra["unit_rows"]) is normalized
        recon = rsrae.reconstruct(fitted, jnp.asarray(data))
        expected = (losses.negative_cosine_similarity(data, recon) if normalized
                    else losses.rsr_reconstruction_error(data, recon, "l21"))
        np.testing.assert_allclose(rsrae.score(fitted, jnp.asarray(data)), expected, rtol=1e-6)


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0"], "--seeds 0"),
    (["--c", "1.5"], "--c [1.5]"),
    (["--members-per-fit", "0"], "--members-per-fit 0"),
    (["--checkpoint-every", "-1"], "--checkpoint-every -1"),
    (["intrinsic_size=500"], "intrinsic_size"),
])
def test_paper_cli_refuses_bad_arguments_before_reading_data(args, message, capsys, tmp_path):
    from experiments import rsrae_paper as paper

    # an empty data dir: reaching the data would fail differently
    code = paper.main(["--dataset", "20newsgroups", "--data-dir", str(tmp_path), "--out", str(tmp_path / "out"), *args])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _paper_blobs():
    rng = np.random.default_rng(0)
    centres = rng.uniform(size=(3, 30)) * 2
    labels = np.repeat(np.arange(3), 40)
    return np.abs(centres[labels] + 0.1 * rng.normal(size=(120, 30))).astype(np.float32), labels


def test_paper_cell_resumes_from_its_checkpoints_bit_identical(tmp_path, monkeypatch):
    from experiments import rsrae_paper as paper

    monkeypatch.setitem(paper.N_PURE, "20newsgroups", 40)
    x, labels = _paper_blobs()
    kwargs = dict(classes=(0, 2), seeds=(0,), progress=False,
                  overrides={"epochs": 4, "hidden": (16, 8), "intrinsic_size": 4, "lr": 1e-3})
    plain = paper.run_cell("20newsgroups", 0.5, "rsrae_plus", x, labels, **kwargs)
    folder = tmp_path / "checkpoints"
    full = paper.run_cell("20newsgroups", 0.5, "rsrae_plus", x, labels, checkpoint_dir=folder, checkpoint_every=2,
                          **kwargs)
    fit_folder = folder / "members-0-2"
    assert sorted(p.name for p in fit_folder.iterdir()) == ["2", "4"]
    shutil.rmtree(fit_folder / "4")  # as if the run had been killed during epoch 3 or 4
    resumed = paper.run_cell("20newsgroups", 0.5, "rsrae_plus", x, labels, checkpoint_dir=folder,
                             checkpoint_every=2, **kwargs)
    assert (plain["resumed_at_epoch"], full["resumed_at_epoch"], resumed["resumed_at_epoch"]) == (0, 0, 2)
    for record in (full, resumed):
        assert record["metrics"]["auroc"]["per_seed"] == plain["metrics"]["auroc"]["per_seed"]
        assert record["metrics"]["ap"]["per_seed"] == plain["metrics"]["ap"]["per_seed"]
        assert record["final_loss"] == plain["final_loss"]


def test_paper_cli_checkpoints_a_cell_and_deletes_them_with_its_json(tmp_path, monkeypatch):
    from experiments import rsrae_paper as paper

    monkeypatch.setitem(paper.N_PURE, "20newsgroups", 40)
    monkeypatch.setattr(paper, "load_items", lambda *args, **kwargs: _paper_blobs())
    folders = []
    fit = paper.train.fit

    def recording_fit(*args, **kwargs):
        folders.append((kwargs["checkpoint_dir"], kwargs["checkpoint_every"]))
        return fit(*args, **kwargs)

    monkeypatch.setattr(paper.train, "fit", recording_fit)
    out = tmp_path / "out"
    argv = ["epochs=2", "hidden=[16,8]", "intrinsic_size=4", "--dataset", "20newsgroups", "--c", "0.5", "--seeds", "1",
            "--methods", "ae", "--classes", "0", "2", "--out", str(out), "--no-progress", "--checkpoint-every", "2"]
    assert paper.main(argv) == 0
    assert folders == [(out / "checkpoints" / "ae__20newsgroups__c0.5" / "members-0-2", 2)]
    assert paper.record_path(out, "20newsgroups", 0.5, "ae").exists()
    assert not (out / "checkpoints" / "ae__20newsgroups__c0.5").exists()
    folders.clear()
    assert paper.main([*argv[:-2], "--checkpoint-every", "0", "--overwrite"]) == 0
    assert [folder for folder, _ in folders] == [None]
