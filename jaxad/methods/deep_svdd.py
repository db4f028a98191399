"""Deep SVDD (method ``deep_svdd``): Ruff et al., "Deep One-Class Classification", ICML 2018.

A bias-free network phi maps the data into a hypersphere around a fixed centre c; the score is
the squared distance to c (minus R^2 for the soft-boundary objective). Higher = more abnormal.

Where the settings come from (paper = Ruff et al. 2018; authors = lukasruff/Deep-SVDD-PyTorch;
PyOD = ``pyod.models.deep_svdd.DeepSVDD`` 3.x):

* Network: bias-free Dense 64-32 with ReLU (PyOD's default ``hidden_neurons=[64, 32]``; the
  authors only ship LeNet-type CNNs for MNIST / CIFAR-10). The last layer is linear as in the
  authors' networks (their representation layer is a bare ``Linear(..., bias=False)``); PyOD
  applies its hidden activation after it too: ``output_activation='relu'`` gives PyOD's network
  (for 64-32 PyOD's dropout is never applied, so there is none here). No biases anywhere (paper,
  Prop. 2), no batch norm, no dropout; kernels initialised as PyTorch's ``nn.Linear`` (both the
  authors and PyOD). Images are flattened and go through the dense network; the authors'
  convolutional networks are not implemented.
* Centre c: the mean of phi over the training data after initialisation (after pretraining if
  any), coordinates with |c| < eps = 0.1 pushed to +-eps (authors' ``init_center_c``, PyOD's
  ``_init_c``); an exact zero becomes +eps here, where both leave it at zero. Computed once in
  ``setup``; it lives in ``state.extra["c"]`` so that seeds vmap.
* Objectives (paper eqs. 3 and 4, authors' ``--objective``): ``one-class`` = mean ||phi(x) - c||^2;
  ``soft-boundary`` = R^2 + 1/nu * mean(max(0, ||phi(x) - c||^2 - R^2)), nu = 0.1 (authors).
  R starts at 0 and is not trained by gradient: once ``warm_up_epochs`` (10, authors) epochs are
  done, R is set after every epoch to the (1 - nu)-quantile of the distances sqrt(d^2) over the
  whole training set (``epoch_end``). The authors set it after every mini-batch from that
  batch's distances (the paper: "every k epochs" by line search); one epoch-level quantile over
  all training rows is the cheaper and less noisy form of the same rule.
* Optimiser (authors' README command): Adam lr 1e-4, weight decay 0.5e-6 added to the gradient
  (torch's Adam), batch 200, 150 epochs, lr x 0.1 after ``lr_milestones`` = (50,) epochs. The
  milestone is applied in ``epoch_end`` through ``optax.inject_hyperparams`` (the epoch count
  lives in ``state.extra["epoch"]``): epochs 1-50 run at 1e-4, 51-150 at 1e-5, as torch's
  ``MultiStepLR`` stepped after each epoch. (The authors' code steps the scheduler at the start
  of each epoch, which under their torch 0.4.1 drops the lr one epoch earlier.)
  PyOD instead defaults to 100 epochs, batch 32, no lr schedule, adds 1e-6 * sum of the weight
  norms to the loss and keeps the epoch with the lowest training loss; none of that is copied.
* Autoencoder pretraining (authors' ``--pretrain``, default True there; ``pretrain_epochs`` here,
  default 0 to keep runs fast): a bias-free autoencoder whose encoder is phi and whose decoder
  mirrors it (linear output) is trained on the training data in ``setup`` (one jitted
  ``lax.scan`` over epochs of shuffled minibatches, padded as the engine's, Adam with L2 weight
  decay), loss = per-sample sum of squared errors averaged over the batch (authors' AE trainer);
  the encoder's weights then initialise phi, and c is computed from them. The authors' README
  command pretrains 150 epochs, lr 1e-4, milestone 50, batch 200, weight decay 0.5e-3: those are
  the ``ae_*`` defaults here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxad import losses
from jaxad.methods.base import (
    TRAINING_DEFAULTS, Method, TrainState, adam_l2, check_choice, check_positive_int, check_range,
    check_standardize, check_widths, identity_stats, map_training_rows, standardized, training_rows,
    validate_training, with_input_stats,
)
from jaxad.models import ACTIVATIONS, INITIALIZERS, pad_input_layer
from jaxad.models.svdd import DeepSVDDAutoencoder, DeepSVDDNet

OBJECTIVES = ("one-class", "soft-boundary")
# Authors' MultiStepLR gamma.
LR_DECAY = 0.1

DEFAULTS: dict[str, Any] = {
    **TRAINING_DEFAULTS,
    "epochs": 150,
    "batch_size": 200,
    "hidden": (64, 32),
    "activation": "relu",
    "output_activation": "linear",
    # Must stay False: Deep SVDD is bias-free (Ruff et al., Prop. 2). A key so that asking for
    # biases is answered with that reason rather than "unknown key".
    "bias": False,
    "initializer": "torch",
    # Standardise the inputs with the training data's per-feature mean and std ("auto": tables
    # only), as PyOD's DeepSVDD does by default (preprocessing=True). The bias-free phi is not
    # translation invariant: on MinMax-scaled ADBench tables, where every feature is >= 0,
    # unstandardised inputs gave AUROC 0.10 on breastw, standardised 0.98.
    "standardize": "auto",
    "objective": "one-class",
    "nu": 0.1,
    "warm_up_epochs": 10,
    "center_eps": 0.1,
    "lr": 1e-4,
    "weight_decay": 0.5e-6,
    "adam_eps": 1e-8,
    "lr_milestones": (50,),
    "pretrain_epochs": 0,
    "ae_lr": 1e-4,
    "ae_weight_decay": 0.5e-3,
    "ae_batch_size": 200,
    "ae_lr_milestones": (50,),
}


def _phi_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    return {"hidden": tuple(config["hidden"]), "activation": config["activation"],
            "output_activation": config["output_activation"], "initializer": config["initializer"]}


def build_model(config: Mapping[str, Any]) -> DeepSVDDNet:
    return DeepSVDDNet(**_phi_settings(config))


def build_autoencoder(config: Mapping[str, Any]) -> DeepSVDDAutoencoder:
    return DeepSVDDAutoencoder(**_phi_settings(config))


def _check_milestones(config: Mapping[str, Any], key: str) -> None:
    value = config[key]
    ok = isinstance(value, list | tuple) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    if not ok or list(value) != sorted(set(value)):
        raise ValueError(f"{key}={value!r}: expected a strictly increasing tuple of epoch counts "
                         ">= 1 after which the learning rate is multiplied by 0.1, e.g. (50,), "
                         "or () for none")


def validate(config: Mapping[str, Any], x_shape: tuple[int, ...]) -> None:
    validate_training(config)
    if config["bias"] is not False:
        raise ValueError(f"bias={config['bias']!r}: Deep SVDD must be bias-free (Ruff et al. 2018, "
                         "Prop. 2: with bias terms the network can map every input to the centre c, "
                         "a collapsed hypersphere); leave bias=False")
    check_widths(config, "hidden")
    check_choice(config, "activation", ACTIVATIONS)
    check_choice(config, "output_activation", ACTIVATIONS)
    check_choice(config, "initializer", INITIALIZERS)
    check_choice(config, "objective", OBJECTIVES)
    check_standardize(config)
    check_range(config, "nu", 0.0, 1.0, low_open=True, high_open=True)
    check_positive_int(config, "warm_up_epochs", minimum=0)
    check_range(config, "center_eps", 0.0, float("inf"), low_open=True)
    check_range(config, "lr", 0.0, float("inf"), low_open=True)
    check_range(config, "weight_decay", 0.0, float("inf"))
    check_range(config, "adam_eps", 0.0, float("inf"), low_open=True)
    _check_milestones(config, "lr_milestones")
    check_positive_int(config, "pretrain_epochs", minimum=0)
    check_range(config, "ae_lr", 0.0, float("inf"), low_open=True)
    check_range(config, "ae_weight_decay", 0.0, float("inf"))
    check_positive_int(config, "ae_batch_size")
    _check_milestones(config, "ae_lr_milestones")


def milestone_lr(lr: float, milestones, epochs_done: jax.Array) -> jax.Array:
    """lr * 0.1 ** (number of milestones <= epochs_done): the learning rate of the epoch after
    ``epochs_done`` completed epochs (torch's MultiStepLR stepped once per epoch)."""
    passed = sum((jnp.asarray(epochs_done) >= m).astype(jnp.int32) for m in milestones) if milestones else 0
    return lr * jnp.power(LR_DECAY, passed)


def make_optimizer(config: Mapping[str, Any]) -> optax.GradientTransformation:
    """Adam with L2 weight decay whose learning rate sits in the optimizer state
    (``opt_state.hyperparams["learning_rate"]``), so ``epoch_end`` can lower it at a milestone."""
    wd, eps = float(config["weight_decay"]), float(config["adam_eps"])
    return optax.inject_hyperparams(lambda learning_rate: adam_l2(learning_rate, wd, eps))(
        learning_rate=float(config["lr"]))


def learning_rate(state: TrainState) -> jax.Array:
    """The learning rate the next step will use."""
    return state.opt_state.hyperparams["learning_rate"]


def init(rng: jax.Array, config: Mapping[str, Any], example: jax.Array) -> TrainState:
    """example: (B, ...) rows of the training data; only its shape and dtype are used.

    The centre is NaN until ``setup(state, x_train)`` computes it (the engine calls it; by hand,
    call it before the first ``train_step``, or the loss is NaN)."""
    model = build_model(config)
    params_rng, state_rng = jax.random.split(rng)
    variables = model.init(params_rng, example)
    rep = int(config["hidden"][-1])
    extra = {
        # set by setup from the training data (identity until then)
        "inputs": identity_stats(example.shape[1:]),
        "c": jnp.full((rep,), jnp.nan, jnp.float32),
        "R": jnp.zeros((), jnp.float32),
        "epoch": jnp.zeros((), jnp.int32),
        "pretrain_loss": jnp.zeros((int(config["pretrain_epochs"]),), jnp.float32),
    }
    return TrainState.create(rng=state_rng, variables=variables, apply_fn=model.apply,
                             tx=make_optimizer(config), config=config, extra=extra)


def embed(state: TrainState, x: jax.Array) -> jax.Array:
    """phi(x) of the standardised x: (n, ...) -> (n, hidden[-1])."""
    z, _ = state.apply_fn({"params": state.params}, standardized(x, state.extra["inputs"]))
    return z


def distances(state: TrainState, x: jax.Array) -> jax.Array:
    """Squared distances to the centre ||phi(x) - c||^2: (n, ...) -> (n,)."""
    return losses.svdd_distances(embed(state, x), state.extra["c"])


def pretrain(state: TrainState, x: jax.Array) -> tuple[Any, jax.Array]:
    """Autoencoder pretraining of phi on x (n, ...): returns (phi's params, the mean loss of each
    epoch (pretrain_epochs,)). Pure and jittable: one ``lax.scan`` over epochs, each a scan over
    the minibatches of a fresh permutation (the last batch padded with weight-0 rows)."""
    config = state.config
    epochs = int(config["pretrain_epochs"])
    n = x.shape[0]
    rows = min(int(config["ae_batch_size"]), n)
    n_batches = -(-n // rows)
    pad = n_batches * rows - n
    model = build_autoencoder(config)
    init_key, perm_key = jax.random.split(jax.random.fold_in(state.rng, 0x5EED))
    params = dict(model.init(init_key, x[:1])["params"])
    params["encoder"] = state.params  # phi's own initialisation
    milestones = tuple(config["ae_lr_milestones"])
    schedule = lambda count: milestone_lr(float(config["ae_lr"]), milestones, count // n_batches)  # noqa: E731
    tx = adam_l2(schedule, float(config["ae_weight_decay"]), float(config["adam_eps"]))
    weights = (jnp.arange(n_batches * rows) < n).astype(jnp.float32).reshape(n_batches, rows)

    def loss_fn(p, xb, w):
        recon, _ = model.apply({"params": p}, xb)
        return losses.weighted_mean(losses.sum_squared_error(xb, recon), w)

    def step(carry, batch):
        p, opt_state = carry
        idx, w = batch
        xb = x[idx]
        loss, grads = jax.value_and_grad(loss_fn)(p, xb, w)
        updates, opt_state = tx.update(grads, opt_state, p)
        return (optax.apply_updates(p, updates), opt_state), loss * jnp.sum(w)

    def epoch(carry, e):
        order = jax.random.permutation(jax.random.fold_in(perm_key, e), n)
        idx = jnp.concatenate([order, order[:pad]]).reshape(n_batches, rows)
        carry, batch_losses = jax.lax.scan(step, carry, (idx, weights))
        return carry, jnp.sum(batch_losses) / n

    (params, _), epoch_losses = jax.lax.scan(epoch, (params, tx.init(params)), jnp.arange(epochs))
    return params["encoder"], epoch_losses


def setup(state: TrainState, x_train: jax.Array) -> TrainState:
    """Once before the first epoch, on the training data: optional autoencoder pretraining of
    phi, then the centre c = eps-adjusted mean of phi(x_train) (``losses.svdd_center``); with
    ``warm_up_epochs=0`` the soft-boundary radius starts at its quantile."""
    config = state.config
    state = with_input_stats(state, x_train)
    extra = dict(state.extra)
    if int(config["pretrain_epochs"]) > 0:
        params, extra["pretrain_loss"] = pretrain(state, standardized(x_train, extra["inputs"]))
        state = state.replace(params=params)
    extra["c"] = losses.svdd_center(embed(state, x_train), float(config["center_eps"]))
    state = state.replace(extra=extra)
    if config["objective"] == "soft-boundary" and int(config["warm_up_epochs"]) == 0:
        extra["R"] = losses.svdd_radius(distances(state, x_train), float(config["nu"]))
    return state.replace(extra=extra)


def train_step(state: TrainState, batch: dict[str, jax.Array]):
    """One Adam step on the weighted Deep SVDD objective of ``batch`` ({"x", "w"})."""
    config = state.config
    c, R = state.extra["c"], state.extra["R"]

    def loss_fn(params):
        z, _ = state.apply_fn({"params": params}, standardized(batch["x"], state.extra["inputs"]))
        dist = losses.svdd_distances(z, c)
        if config["objective"] == "soft-boundary":
            loss = losses.soft_boundary_svdd_loss(dist, R, float(config["nu"]), batch["w"])
        else:
            loss = losses.one_class_svdd_loss(dist, batch["w"])
        return loss, dist

    (loss, dist), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    return state.apply_gradients(grads), {"loss": loss, "dist": losses.weighted_mean(dist, batch["w"])}


def epoch_end(state: TrainState, x_train: jax.Array):
    """After each epoch: count it, set the learning rate of the next epoch from the milestones
    and, for soft-boundary once ``warm_up_epochs`` epochs are done, set R to the (1 - nu)-quantile
    of the training distances. Metrics: ``lr`` (the rate this epoch used), and ``R`` for
    soft-boundary."""
    config = state.config
    done = state.extra["epoch"] + 1
    used_lr = learning_rate(state)
    new_lr = milestone_lr(float(config["lr"]), tuple(config["lr_milestones"]), done).astype(used_lr.dtype)
    opt_state = state.opt_state._replace(
        hyperparams={**state.opt_state.hyperparams, "learning_rate": new_lr})
    extra, metrics = {**state.extra, "epoch": done}, {"lr": used_lr}
    if config["objective"] == "soft-boundary":
        dist = map_training_rows(lambda rows: distances(state, rows), state, x_train)
        radius = losses.svdd_radius(dist, float(config["nu"]), training_rows(state, x_train.shape[0]))
        extra["R"] = metrics["R"] = jnp.where(done >= int(config["warm_up_epochs"]), radius, state.extra["R"])
    return state.replace(opt_state=opt_state, extra=extra), metrics


def pad_features(state: TrainState, n_features: jax.Array) -> TrainState:
    """phi initialised for rows zero-padded to W columns, made the network of their first
    ``n_features`` (traced; ``train.fit(bucket=True)``): the first layer keeps the real rows of
    its kernel, rescaled to their fan-in (``models.pad_input_layer``); the padding's rows only
    ever meet zeros (standardised padding stays 0), get no gradient and no weight decay, so phi,
    c, the distances and R are the narrow network's with the same draws (threefry draws by
    position). Without pretraining only (its decoder would reconstruct the padding; ValueError)."""
    if int(state.config["pretrain_epochs"]) > 0:
        raise ValueError("bucket=True: autoencoder pretraining (pretrain_epochs > 0) cannot pad its input "
                         "features; fit without bucket")
    params = {**state.params, "Dense_0": pad_input_layer(state.params["Dense_0"], n_features,
                                                         state.config["initializer"])}
    return state.replace(params=params)


def score(state: TrainState, x: jax.Array) -> jax.Array:
    """||phi(x) - c||^2, minus R^2 for soft-boundary (the authors' test scores): (n,)."""
    dist = distances(state, x)
    if state.config["objective"] == "soft-boundary":
        return dist - jnp.square(state.extra["R"])
    return dist


METHOD = Method(
    name="deep_svdd", init=init, train_step=train_step, score=score, defaults=DEFAULTS,
    validate=validate, epoch_end=epoch_end, setup=setup, input_ndims=(2, 4), pad_features=pad_features,
    description="Deep SVDD, distance to a hypersphere centre (Ruff et al. 2018)",
)
