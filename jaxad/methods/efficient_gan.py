"""Efficient GAN (method ``efficient_gan``): Zenati, Foo, Lecouat, Manek and Chandrasekhar,
"Efficient GAN-Based Anomaly Detection", 2018 (arXiv:1802.06222).

A BiGAN is trained on normal data: an encoder E (x -> z), a generator G (z -> x) and a
discriminator D(x, z) that tells pairs (x, E(x)) from pairs (G(z), z), z ~ N(0, I). A row is
scored by how badly it is reconstructed and how little D believes its pair:

    A(x) = alpha * ||x - G(E(x))||_p + (1 - alpha) * L_D(x)                  (higher = abnormal)

with L_D either ``score="fm"``, the feature-matching distance ||f(x, E(x)) - f(G(E(x)), E(x))||_1
(f = D's layer under the logit), or ``score="ce"``, the cross-entropy CE(D(x, E(x)), 1).

Where the settings come from (paper = Zenati et al. 2018; authors = houssamzenati/Efficient-GAN-
Anomaly-Detection, ``bigan/run_kdd.py``, ``bigan/kdd_utilities.py``, ``main.py``, README):

* Networks (``jaxad.models.bigan``): the authors' KDD networks for tabular rows, their MNIST
  networks (``ConvBiGAN``) for NHWC images; the ``fashion_mnist`` preset takes their MNIST
  settings (latent 200, D width 1024, dropout 0.5, N(0, 0.02) kernels, batch 100). Each step
  keeps the batch-norm statistics of the networks it trains only (the authors tie each
  network's update ops to its own optimizer). Convolutional models train in the engine's scan
  on CPU too (``cpu_host_loop`` is per method; the dense KDD model is the main use here).
* Objective (authors): D minimises CE(D(x, E(x)), 1) + CE(D(G(z), z), 0); G minimises
  CE(D(G(z), z), 1) and E minimises CE(D(x, E(x)), 0) (the non-saturating forms). Dropout is on
  in both steps, off when scoring.
* Updates (authors): per batch, one D step, then one E/G step that sees the updated D. The
  parameters form three groups, labelled from their paths (``encoder``, ``generator``,
  ``discriminator``) and driven through ``optax.partition``: optimizer ``d`` moves D only,
  optimizer ``eg`` moves E and G only, and each keeps its own Adam moments (the authors' three
  ``AdamOptimizer``s), so neither step's momentum leaks into the other's parameters.
  The authors feed the E/G step a batch from a second, independent shuffle of the training set;
  here both steps see the same batch (the engine yields one per step); z and the dropout masks
  are drawn afresh for each step, as theirs are.
* Optimiser (authors): Adam lr 1e-5, beta1 0.5 (beta2 0.999, eps 1e-8: TensorFlow's), batch 50.
* EMA (authors): an exponential moving average of every parameter, decay 0.9999, started at
  the initial values and updated after every step without bias correction (TensorFlow's
  ``ExponentialMovingAverage`` without ``num_updates``); scoring uses the averaged parameters.
  It lives in ``state.extra["ema"]``; ``ema_decay=0`` scores with the raw parameters.
* Score (paper): alpha 0.9 (the authors' README: weight 0.1 on L_D), p 1 (their ``--d 1``),
  feature matching by default (their ``--m fm``). Two departures from the authors' code, which
  follow the paper here: their code computes ``(1 - w) * recon + w * L_D`` (same thing with
  w = 1 - alpha), and its "cross-e" score is CE(D(G(E(x)), E(x)), 1), on the reconstructed pair;
  the paper's, used here, is CE(D(x, E(x)), 1). Their feature-matching norm uses the same degree
  as the reconstruction; here it is always L1 (identical at the default p = 1).
* Epochs: the authors leave them to the command line (``--nb_epochs``). The default, 20, is
  what fitted this repository's CPU budget for 5 seeds of the KDD experiment (about 1 min an
  epoch for 198 361 rows on 2 shared cores). At lr 1e-5 on MinMax-scaled KDD it is far too few
  (F1 0.32 +- 0.32 over 5 seeds); lr 1e-4 for 8 epochs gives 0.930 +- 0.008 (README, KDD).

Per-epoch metrics (``epoch_end``): the steps' mean ``loss_d``, ``loss_e``, ``loss_g``, ``d_real``
and ``d_fake`` (D's mean probability of "real" for (x, E(x)) and (G(z), z)), and, on ``val_rows``
fixed training rows (training-side data only, never the test set) with the averaged parameters:
``val_recon``, ``val_ce``, ``val_fm`` and ``val_score`` (the configured A(x)). ``loss`` is
loss_d + loss_e + loss_g, for the engine's NaN guard and progress bar only: a GAN's losses do not
fall as it learns, so early stopping on it (``patience``) means little.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxad import losses
from jaxad.methods.base import (
    TRAINING_DEFAULTS, FrozenConfig, Method, TrainState, check_choice, check_positive_int, check_range,
    check_widths, training_rows, validate_training,
)
from jaxad.methods.param_groups import group_optimizer, label_params, per_loss
from jaxad.models import pad_input_layer, pad_output_layer
from jaxad.models.bigan import BIGAN_INITIALIZERS, BiGAN, ConvBiGAN

GROUPS = ("encoder", "generator", "discriminator")
SCORES = ("fm", "ce")
NORMS = (1, 2)

DEFAULTS: dict[str, Any] = {
    **TRAINING_DEFAULTS,
    "epochs": 20,
    "batch_size": 50,
    "latent_dim": 32,
    "encoder_hidden": (64,),
    "generator_hidden": (64, 128),
    "discriminator_width": 128,
    "dropout": 0.2,
    "initializer": "keras",
    "lr": 1e-5,
    "beta1": 0.5,
    "beta2": 0.999,
    "adam_eps": 1e-8,
    "ema_decay": 0.9999,
    "score": "fm",
    "alpha": 0.9,
    "p": 1,
    "val_rows": 1000,
}

PRESETS: dict[str, dict[str, Any]] = {
    # The authors' MNIST settings (bigan/mnist_utilities.py) for 28x28 images.
    "fashion_mnist": {"latent_dim": 200, "discriminator_width": 1024, "dropout": 0.5,
                      "initializer": "dcgan", "batch_size": 100},
}


def build_model(config: Mapping[str, Any], x_shape: tuple[int, ...]):
    """The dense BiGAN for rows (n, F), the convolutional one for NHWC images (n, H, W, C)."""
    common = {"latent_dim": int(config["latent_dim"]), "discriminator_width": int(config["discriminator_width"]),
              "dropout": float(config["dropout"]), "initializer": config["initializer"]}
    if len(x_shape) == 4:
        return ConvBiGAN(image_shape=tuple(int(s) for s in x_shape[1:]), **common)
    return BiGAN(features=int(np.prod(x_shape[1:])), encoder_hidden=tuple(config["encoder_hidden"]),
                 generator_hidden=tuple(config["generator_hidden"]), **common)


def validate(config: Mapping[str, Any], x_shape: tuple[int, ...]) -> None:
    validate_training(config)
    check_positive_int(config, "latent_dim")
    check_widths(config, "encoder_hidden", allow_empty=True)
    check_widths(config, "generator_hidden", allow_empty=True)
    check_positive_int(config, "discriminator_width")
    check_range(config, "dropout", 0.0, 1.0, high_open=True)
    check_choice(config, "initializer", BIGAN_INITIALIZERS)
    check_range(config, "lr", 0.0, float("inf"), low_open=True)
    check_range(config, "beta1", 0.0, 1.0, high_open=True)
    check_range(config, "beta2", 0.0, 1.0, high_open=True)
    check_range(config, "adam_eps", 0.0, float("inf"), low_open=True)
    check_range(config, "ema_decay", 0.0, 1.0, high_open=True)
    check_choice(config, "score", SCORES)
    check_range(config, "alpha", 0.0, 1.0)
    p = config["p"]
    if isinstance(p, bool) or p not in NORMS:
        raise ValueError(f"p={p!r}: expected 1 or 2, the norm of the reconstruction error ||x - G(E(x))||_p")
    check_positive_int(config, "val_rows")
    if len(x_shape) == 4 and (x_shape[1] % 4 or x_shape[2] % 4):
        raise ValueError(f"x: images of shape {tuple(x_shape[1:])}: the convolutional BiGAN needs a "
                         "height and width divisible by 4 (two stride-2 layers), e.g. 28x28")


def make_optimizer(config: Mapping[str, Any]):
    """Two optimizers with separate states: ``d`` (Adam on the discriminator group) and ``eg``
    (Adam on the encoder and generator groups); the groups an optimizer does not own get
    ``set_to_zero`` and stay bit-identical during its step."""
    adam = lambda: optax.adam(float(config["lr"]), b1=float(config["beta1"]), b2=float(config["beta2"]),  # noqa: E731
                              eps=float(config["adam_eps"]))
    labels = functools.partial(label_params, groups={g: g for g in GROUPS})
    return per_loss(d=group_optimizer({"discriminator": adam()}, labels),
                    eg=group_optimizer({"encoder": adam(), "generator": adam()}, labels))


def init(rng: jax.Array, config: Mapping[str, Any], example: jax.Array) -> TrainState:
    """example: (B, ...) rows of the training data; only its shape and dtype are used."""
    model = build_model(config, example.shape)
    params_rng, state_rng = jax.random.split(rng)
    variables = model.init(params_rng, example, train=False)
    # The average starts at the initial values (TensorFlow's shadow variables do).
    extra = {"ema": jax.tree.map(jnp.array, variables["params"])}
    return TrainState.create(rng=state_rng, variables=variables, apply_fn=model.apply,
                             tx=make_optimizer(config), config=config, extra=extra)


# ---------------------------------------------------------------- forward passes


def _train_apply(state: TrainState, params, model_state, method: str, *args, rng, mask):
    """One network in training mode (dropout on, batch statistics): (output, new model_state)."""
    return state.apply_fn({"params": params, **model_state}, *args, train=True, mask=mask, method=method,
                          rngs={"dropout": rng}, mutable=list(model_state))


def _infer(state: TrainState, params, method: str, *args):
    return state.apply_fn({"params": params, **state.model_state}, *args, train=False, method=method)


def _keep_groups(old, new, groups) -> dict:
    """Model state (batch statistics) updated only in ``groups``: a step keeps the statistics of
    the networks it trains, as the authors' update ops are tied to each network's optimizer."""
    return {col: {name: (new[col][name] if name in groups else tree) for name, tree in old[col].items()}
            for col in old}


def sample_prior(rng: jax.Array, n: int, latent_dim: int) -> jax.Array:
    """z ~ N(0, I): (n, latent_dim)."""
    return jax.random.normal(rng, (n, latent_dim))


# ---------------------------------------------------------------- the two updates


def discriminator_step(state: TrainState, x: jax.Array, w: jax.Array, rng: jax.Array):
    """One Adam step of D (optimizer ``d``) on CE(D(x, E(x)), 1) + CE(D(G(z), z), 0); E and G
    only produce the pairs. ``step`` is not advanced (the E/G step of the same batch follows)."""
    z_key, e_key, g_key, real_key, fake_key = jax.random.split(rng, 5)
    mask = w > 0
    z = sample_prior(z_key, x.shape[0], int(state.config["latent_dim"]))
    z_enc, _ = _train_apply(state, state.params, state.model_state, "encode", x, rng=e_key, mask=mask)
    x_gen, _ = _train_apply(state, state.params, state.model_state, "generate", z, rng=g_key, mask=mask)

    def loss_fn(params):
        (real, _), ms = _train_apply(state, params, state.model_state, "discriminate", x, z_enc,
                                     rng=real_key, mask=mask)
        (fake, _), ms = _train_apply(state, params, ms, "discriminate", x_gen, z, rng=fake_key, mask=mask)
        return losses.bigan_discriminator_loss(real, fake, w), (real, fake, ms)

    (loss, (real, fake, ms)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads, optimizer="d", advance=False,
                                  model_state=_keep_groups(state.model_state, ms, ("discriminator",)))
    return state, {"loss_d": loss, "d_real": losses.weighted_mean(jax.nn.sigmoid(real), w),
                   "d_fake": losses.weighted_mean(jax.nn.sigmoid(fake), w)}


def encoder_generator_step(state: TrainState, x: jax.Array, w: jax.Array, rng: jax.Array):
    """One Adam step of E and G (optimizer ``eg``): E on CE(D(x, E(x)), 0), G on
    CE(D(G(z), z), 1); their sum has exactly those gradients, since neither loss reaches the
    other network. D only judges. Advances ``step``."""
    z_key, e_key, g_key, real_key, fake_key = jax.random.split(rng, 5)
    mask = w > 0
    z = sample_prior(z_key, x.shape[0], int(state.config["latent_dim"]))

    def loss_fn(params):
        z_enc, ms = _train_apply(state, params, state.model_state, "encode", x, rng=e_key, mask=mask)
        x_gen, ms = _train_apply(state, params, ms, "generate", z, rng=g_key, mask=mask)
        (real, _), ms_d = _train_apply(state, params, ms, "discriminate", x, z_enc, rng=real_key, mask=mask)
        (fake, _), _ = _train_apply(state, params, ms_d, "discriminate", x_gen, z, rng=fake_key, mask=mask)
        loss_e, loss_g = losses.bigan_encoder_loss(real, w), losses.bigan_generator_loss(fake, w)
        return loss_e + loss_g, (loss_e, loss_g, ms)

    (_, (loss_e, loss_g, ms)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads, optimizer="eg",
                                  model_state=_keep_groups(state.model_state, ms, ("encoder", "generator")))
    return state, {"loss_e": loss_e, "loss_g": loss_g}


def update_ema(state: TrainState) -> TrainState:
    """ema <- decay * ema + (1 - decay) * params (TensorFlow's ExponentialMovingAverage)."""
    decay = float(state.config["ema_decay"])
    ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, state.extra["ema"], state.params)
    return state.replace(extra={**state.extra, "ema": ema})


def train_step(state: TrainState, batch: dict[str, jax.Array]):
    """One D step, one E/G step on the same batch ({"x", "w"}), then the EMA update."""
    d_key, eg_key = jax.random.split(state.step_rng())
    state, d_metrics = discriminator_step(state, batch["x"], batch["w"], d_key)
    state, eg_metrics = encoder_generator_step(state, batch["x"], batch["w"], eg_key)
    metrics = {**d_metrics, **eg_metrics}
    metrics["loss"] = metrics["loss_d"] + metrics["loss_e"] + metrics["loss_g"]
    return update_ema(state), metrics


# ---------------------------------------------------------------- scores


def score_parts(state: TrainState, x: jax.Array, params=None) -> dict[str, jax.Array]:
    """The parts of A(x), in inference mode with the averaged parameters (or ``params``):
    ``recon`` ||x - G(E(x))||_p, ``ce`` CE(D(x, E(x)), 1) and ``fm``
    ||f(x, E(x)) - f(G(E(x)), E(x))||_1, each (n,)."""
    params = state.extra["ema"] if params is None else params
    z = _infer(state, params, "encode", x)
    recon = _infer(state, params, "generate", z)
    logits, real = _infer(state, params, "discriminate", x, z)
    _, rec = _infer(state, params, "discriminate", recon, z)
    return {"recon": losses.lp_distance(x, recon, int(state.config["p"])),
            "ce": losses.bigan_cross_entropy_score(logits),
            "fm": losses.bigan_feature_matching_score(real["features"], rec["features"])}


def anomaly_score(state: TrainState, x: jax.Array, kind: str | None = None) -> jax.Array:
    """A(x) with L_D = ``kind`` ('fm' or 'ce'; default the config's ``score``): (n, ...) -> (n,).
    One trained state gives both scores."""
    parts = score_parts(state, x)
    kind = state.config["score"] if kind is None else kind
    return losses.bigan_anomaly_score(parts["recon"], parts[kind], float(state.config["alpha"]))


def score(state: TrainState, x: jax.Array) -> jax.Array:
    """A(x) with the configured ``score``: (n, ...) -> (n,), higher = more abnormal."""
    return anomaly_score(state, x)


def with_score(state: TrainState, kind: str) -> TrainState:
    """The same trained state scoring with L_D = ``kind`` ('fm' or 'ce'), e.g. to evaluate both
    scores of one training run with ``jaxad.score``."""
    if kind not in SCORES:
        raise ValueError(f"score={kind!r}: expected one of {list(SCORES)}")
    return state.replace(config=FrozenConfig({**state.config, "score": kind}))


def validation_rows(n: int, rows: int) -> np.ndarray:
    """Indices of ``rows`` training rows spread evenly over the n (fixed across epochs)."""
    return np.unique(np.linspace(0, n - 1, min(rows, n)).round().astype(np.int32))


def padded_validation_rows(n: jax.Array, rows: int) -> tuple[jax.Array, jax.Array]:
    """``validation_rows`` for a row count n known only when the program runs (the real rows of a
    padded table, ``fit(bucket=True)``): ``rows`` indices and (rows,) weights, 0 on repeats, so
    the weighted rows are ``validation_rows(n, rows)`` (up to float32 rounding of the spacing)."""
    idx = jnp.round(jnp.linspace(0.0, (n - 1).astype(jnp.float32), rows)).astype(jnp.int32)
    first = jnp.concatenate([jnp.ones((1,), bool), idx[1:] != idx[:-1]])
    return idx, first.astype(jnp.float32)


def epoch_end(state: TrainState, x_train: jax.Array):
    """After each epoch, on fixed training rows with the averaged parameters: the mean of each
    score part and of A(x) (``val_recon``, ``val_ce``, ``val_fm``, ``val_score``). A collapsing
    GAN shows here as a jump in ``val_recon`` / ``val_fm`` while the losses look steady."""
    rows = int(state.config["val_rows"])
    if training_rows(state, x_train.shape[0]) is None:
        idx, weights = validation_rows(x_train.shape[0], rows), None
    else:
        idx, weights = padded_validation_rows(state.extra["n_rows"], rows)
    mean = jnp.mean if weights is None else (lambda v: losses.weighted_mean(v, weights))  # noqa: E731
    parts = score_parts(state, x_train[idx])
    kind = state.config["score"]
    a = losses.bigan_anomaly_score(parts["recon"], parts[kind], float(state.config["alpha"]))
    return state, {"val_recon": mean(parts["recon"]), "val_ce": mean(parts["ce"]),
                   "val_fm": mean(parts["fm"]), "val_score": mean(a)}


def pad_features(state: TrainState, n_features: jax.Array) -> TrainState:
    """A dense BiGAN initialised for rows zero-padded to W columns, made to train and score as the
    network of their first ``n_features`` (traced; ``train.fit(bucket=True)``): the layers that
    read x (the encoder's first, the discriminator's ``x_dense``) keep the real rows of their
    kernels, rescaled to their fan-in, and the generator's linear output layer the real columns
    (``models.pad_input_layer`` / ``pad_output_layer``). Generated rows are then zero in the
    padding as real rows are, so D cannot tell them apart there, no gradient reaches those
    weights, and the L1 / L2 reconstruction error and D's features are the narrow network's. The
    average (``extra["ema"]``) starts from the padded values. Only the random draws of the
    generator's output kernel differ (``jaxad.methods.ae.pad_features``)."""
    init = state.config["initializer"]
    params = state.params
    encoder, generator, discriminator = params["encoder"], params["generator"], params["discriminator"]
    out_name = f"Dense_{len(state.config['generator_hidden'])}"
    params = {"encoder": {**encoder, "Dense_0": pad_input_layer(encoder["Dense_0"], n_features, init)},
              "generator": {**generator, out_name: pad_output_layer(generator[out_name], n_features, init)},
              "discriminator": {**discriminator,
                                "x_dense": pad_input_layer(discriminator["x_dense"], n_features, init)}}
    return state.replace(params=params, extra={**state.extra, "ema": jax.tree.map(jnp.array, params)})


METHOD = Method(
    name="efficient_gan", init=init, train_step=train_step, score=score, defaults=DEFAULTS,
    validate=validate, epoch_end=epoch_end, input_ndims=(2, 4), presets=PRESETS, pad_features=pad_features,
    description="Efficient GAN: BiGAN reconstruction + discriminator score (Zenati et al. 2018)",
)
