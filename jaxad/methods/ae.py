"""Dense autoencoder scored by reconstruction error (method ``ae``).

Defaults are PyOD 2's ``AutoEncoder`` (hidden (64, 32), relu, batch norm with PyTorch's momentum,
dropout 0.2, Adam lr 1e-3 with weight decay 1e-5, batch 32 with the last partial batch of each
shuffle dropped, 10 epochs, and its ``preprocessing=True``: tables are
standardised with the training data's mean and std, and reconstructed and scored in that space),
the detector users compare against. The seed tutorials' presets keep their [0, 1] inputs
(``standardize=False``): their sigmoid outputs and binary cross-entropy need them.
The two seed tutorials are presets (see ``PRESETS``):

* ``ecg5000`` - TensorFlow's autoencoder tutorial: Dense 32-16-8 / 16-32-140, sigmoid output,
  MAE loss, Adam 1e-3, 20 epochs, batch 512, score = MAE.
* ``fashion_mnist`` - Schulze (Fraunhofer AISEC, 2020): Dense 800-400-100 / 400-800-784, sigmoid
  output, binary cross-entropy, 10 epochs, batch 128, score = MSE (the tutorial's ``re_normal``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxad import losses
from jaxad.methods.base import (
    TRAINING_DEFAULTS, Method, TrainState, adam, check_bool, check_choice, check_range, check_standardize,
    check_widths, identity_stats, standardized, validate_training, wants_standardizing, with_input_stats,
)
from jaxad.models import ACTIVATIONS, INITIALIZERS, DenseAE, pad_input_layer, pad_output_layer
from jaxad.models.mlp import ZERO_AT_ZERO

DEFAULTS: dict[str, Any] = {
    **TRAINING_DEFAULTS,
    "hidden": (64, 32),
    "decoder_hidden": None,
    "activation": "relu",
    "output_activation": "linear",
    "batch_norm": True,
    # PyTorch's BatchNorm1d momentum 0.1, in flax's convention (weight of the old average).
    "bn_momentum": 0.9,
    # PyTorch updates the running variance with the unbiased batch variance; False: flax / Keras.
    "bn_unbiased_var": True,
    "dropout": 0.2,
    # Initialised as PyOD's AutoEncoder (He-uniform hidden kernels, PyTorch's default elsewhere).
    "initializer": "pyod",
    "lr": 1e-3,
    "adam_eps": 1e-8,
    "weight_decay": 1e-5,
    "loss": "mse",
    # None scores with the training loss's error kind.
    "score_error": None,
    # PyOD's preprocessing=True: "auto" standardises tables (rank 2), not images.
    "standardize": "auto",
    # PyOD trains with DataLoader(drop_last=True).
    "drop_last": True,
}

PRESETS: dict[str, dict[str, Any]] = {
    "ecg5000": {
        "hidden": (32, 16, 8), "output_activation": "sigmoid", "batch_norm": False,
        "dropout": 0.0, "weight_decay": 0.0, "loss": "mae", "epochs": 20, "batch_size": 512, "initializer": "keras", "adam_eps": 1e-7,
        "standardize": False, "drop_last": False,
    },
    "fashion_mnist": {
        "hidden": (800, 400, 100), "output_activation": "sigmoid", "batch_norm": False,
        "dropout": 0.0, "weight_decay": 0.0, "loss": "bce", "score_error": "mse",
        "epochs": 10, "batch_size": 128, "initializer": "keras", "adam_eps": 1e-7,
        "standardize": False, "drop_last": False,
    },
    # TensorFlow's tutorial, first example: Dense(64, relu) / Dense(784, sigmoid), MSE.
    "tutorial_basic": {
        "hidden": (64,), "output_activation": "sigmoid", "batch_norm": False, "dropout": 0.0,
        "weight_decay": 0.0, "loss": "mse", "epochs": 10, "batch_size": 32, "initializer": "keras", "adam_eps": 1e-7,
        "standardize": False, "drop_last": False,
    },
}


def build_model(config: Mapping[str, Any]) -> DenseAE:
    return DenseAE(
        hidden=tuple(config["hidden"]),
        decoder_hidden=None if config["decoder_hidden"] is None else tuple(config["decoder_hidden"]),
        activation=config["activation"],
        output_activation=config["output_activation"],
        batch_norm=bool(config["batch_norm"]),
        bn_momentum=float(config["bn_momentum"]),
        bn_unbiased_var=bool(config["bn_unbiased_var"]),
        dropout=float(config["dropout"]),
        initializer=config["initializer"],
    )


def validate(config: Mapping[str, Any], x_shape: tuple[int, ...]) -> None:
    validate_training(config)
    check_widths(config, "hidden")
    if config["decoder_hidden"] is not None:
        check_widths(config, "decoder_hidden", allow_empty=True)
    check_choice(config, "activation", ACTIVATIONS)
    check_choice(config, "output_activation", ACTIVATIONS)
    check_choice(config, "loss", losses.RECONSTRUCTION_ERRORS)
    check_choice(config, "initializer", INITIALIZERS)
    if config["score_error"] is not None:
        check_choice(config, "score_error", losses.RECONSTRUCTION_ERRORS)
    check_range(config, "dropout", 0.0, 1.0, high_open=True)
    check_range(config, "bn_momentum", 0.0, 1.0, high_open=True)
    check_bool(config, "bn_unbiased_var")
    check_range(config, "lr", 0.0, float("inf"), low_open=True)
    check_range(config, "weight_decay", 0.0, float("inf"))
    check_range(config, "adam_eps", 0.0, float("inf"), low_open=True)
    check_standardize(config)
    if wants_standardizing(config["standardize"], len(x_shape)):
        if config["loss"] == "bce" or config["output_activation"] == "sigmoid":
            raise ValueError(f"standardize={config['standardize']!r}: standardised inputs leave [0, 1], which "
                             f"loss={config['loss']!r} / output_activation={config['output_activation']!r} "
                             "need; set standardize=False")


def init(rng: jax.Array, config: Mapping[str, Any], example: jax.Array) -> TrainState:
    """example: (B, ...) rows of the training data; only its shape and dtype are used."""
    model = build_model(config)
    params_rng, state_rng = jax.random.split(rng)
    variables = model.init(params_rng, example, train=False)
    # inputs: the standardisation, set by setup from the training data (identity until then)
    return TrainState.create(rng=state_rng, variables=variables, apply_fn=model.apply, tx=adam(config),
                             config=config, extra={"inputs": identity_stats(example.shape[1:])})


def pad_features(state: TrainState, n_features: jax.Array) -> TrainState:
    """A state initialised for inputs zero-padded to W columns, made to train and score as the
    network of its first ``n_features`` columns (a traced int; ``train.fit(bucket=True)``):

    * the first layer's kernel rows beyond n_features are zeroed (they only ever meet zeros) and
      the others, and its bias, rescaled from fan-in W to n_features (``pad_input_layer``);
    * the output columns beyond n_features are zeroed (``pad_output_layer``): an output activation
      with f(0) = 0 (``models.mlp.ZERO_AT_ZERO``: linear, tanh, relu, ...) then reconstructs the
      zero padding exactly, so those columns have zero error, zero gradient and zero weight decay,
      and stay zero (Adam moves nothing whose gradient has always been zero);
    * ``extra["n_features"]`` makes the per-sample error a mean over the real columns.

    It differs from the narrow network only in random draws: threefry draws each entry from its
    position, so the first kernel's rows are the narrow one's, but the output kernel's (h, W)
    entries are not. Needs such an output activation and an MSE or MAE loss (else ValueError)."""
    config = state.config
    if config["output_activation"] not in ZERO_AT_ZERO or config["loss"] not in ("mse", "mae"):
        raise ValueError(f"bucket=True: padded input columns stay inert only with an output_activation that maps "
                         f"0 to 0 (one of {sorted(ZERO_AT_ZERO)}) and loss 'mse' or 'mae', "
                         f"got {config['output_activation']!r} / {config['loss']!r}")
    encoder, decoder = state.params["encoder"], state.params["decoder"]
    out_name = max((k for k in decoder if k.startswith("Dense_")), key=lambda k: int(k.split("_")[1]))
    init = config["initializer"]
    params = {**state.params,
              "encoder": {**encoder, "Dense_0": pad_input_layer(encoder["Dense_0"], n_features, init)},
              "decoder": {**decoder, out_name: pad_output_layer(decoder[out_name], n_features, init)}}
    return state.replace(params=params, extra={**state.extra, "n_features": jnp.asarray(n_features, jnp.float32)})


def setup(state: TrainState, x_train: jax.Array) -> TrainState:
    """Once before training: the training data's per-feature mean and std when ``standardize``
    applies to it (PyOD's StandardScaler), else the identity."""
    return with_input_stats(state, x_train)


def reconstruction_update(state: TrainState, inputs: jax.Array, targets: jax.Array, w: jax.Array):
    """One optimizer step on the weighted mean reconstruction loss of ``targets`` from
    ``inputs`` (the same array for a plain autoencoder, a corrupted copy for a denoising one).
    Any model returning ``(recon, aux)`` works; batch statistics are updated when present."""

    def loss_fn(params):
        (recon, _), new_model_state = state.apply_fn(
            {"params": params, **state.model_state}, inputs, train=True, mask=w > 0,
            rngs={"dropout": state.step_rng()}, mutable=list(state.model_state),
        )
        per_sample = losses.reconstruction_error(targets, recon, state.config["loss"], state.extra.get("n_features"))
        return losses.weighted_mean(per_sample, w), new_model_state

    (loss, new_model_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    return state.apply_gradients(grads, model_state=new_model_state), {"loss": loss}


def train_step(state: TrainState, batch: dict[str, jax.Array]):
    """One Adam step on the weighted mean reconstruction loss of ``batch`` (standardised)."""
    x = standardized(batch["x"], state.extra.get("inputs"))
    return reconstruction_update(state, x, x, batch["w"])


def _model_output(state: TrainState, x: jax.Array) -> jax.Array:
    """The network's output in inference mode on x as the network sees it (standardised)."""
    recon, _ = state.apply_fn({"params": state.params, **state.model_state}, x, train=False)
    return recon


def reconstruct(state: TrainState, x: jax.Array) -> jax.Array:
    """Reconstruction in inference mode, in x's own units: (n, ...) -> (n, ...). With
    standardisation the network reconstructs the standardised x; the result is mapped back."""
    # .get: conv_ae and dae score through these functions with states that have no "inputs"
    stats = state.extra.get("inputs")
    recon = _model_output(state, standardized(x, stats))
    return recon if stats is None else recon * stats["std"] + stats["mean"]


def score(state: TrainState, x: jax.Array) -> jax.Array:
    """Per-sample reconstruction error (the training loss's kind unless ``score_error``), in the
    standardised space the network trains in (as PyOD): (n,)."""
    kind = state.config["score_error"] or state.config["loss"]
    x = standardized(x, state.extra.get("inputs"))
    return losses.reconstruction_error(x, _model_output(state, x), kind, state.extra.get("n_features"))


METHOD = Method(
    name="ae", init=init, train_step=train_step, score=score, defaults=DEFAULTS,
    validate=validate, setup=setup, presets=PRESETS, pad_features=pad_features,
    description="dense autoencoder, reconstruction error",
)
