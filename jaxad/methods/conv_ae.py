"""Convolutional autoencoder scored by reconstruction error (method ``conv_ae``).

Defaults are TensorFlow's autoencoder tutorial's ``Denoise`` model and its ``compile`` / ``fit``
(Keras defaults): encoder Conv 16 then 8 channels, 3x3, stride 2, same padding, relu; decoder
ConvTranspose 8 then 16, stride 2, relu, then a 3x3 Conv to 1 channel with sigmoid; MSE loss,
Adam lr 1e-3 (Keras's epsilon 1e-7), batch 32, 10 epochs, Keras's glorot-uniform initialisation.
Input: NHWC images in [0, 1] with H and W divisible by 2 ** len(channels).

``noise_factor > 0`` makes it denoising: each step feeds ``clip(x + noise_factor * N(0, 1), 0, 1)``
and reconstructs the clean x, the noise drawn inside the jitted step from the state's key folded
with the step number (so it differs per step and per seed). ``dae`` is this method with
noise_factor 0.2, the tutorial's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxad import losses
from jaxad.methods.ae import reconstruct, reconstruction_update, score
from jaxad.methods.base import (
    TRAINING_DEFAULTS, Method, TrainState, adam, check_choice, check_range, check_widths,
    validate_training,
)
from jaxad.models import ACTIVATIONS, INITIALIZERS, ConvAE

DEFAULTS: dict[str, Any] = {
    **TRAINING_DEFAULTS,
    "channels": (16, 8),
    "kernel_size": 3,
    "activation": "relu",
    "output_activation": "sigmoid",
    "initializer": "keras",
    "lr": 1e-3,
    "adam_eps": 1e-7,
    "weight_decay": 0.0,
    "loss": "mse",
    "score_error": None,
    "noise_factor": 0.0,
}


def build_model(config: Mapping[str, Any]) -> ConvAE:
    return ConvAE(channels=tuple(config["channels"]), kernel_size=int(config["kernel_size"]),
                  activation=config["activation"], output_activation=config["output_activation"],
                  initializer=config["initializer"])


def validate(config: Mapping[str, Any], x_shape: tuple[int, ...]) -> None:
    validate_training(config)
    check_widths(config, "channels")
    check_range(config, "kernel_size", 1, 15)
    check_choice(config, "activation", ACTIVATIONS)
    check_choice(config, "output_activation", ACTIVATIONS)
    check_choice(config, "initializer", INITIALIZERS)
    check_choice(config, "loss", losses.RECONSTRUCTION_ERRORS)
    if config["score_error"] is not None:
        check_choice(config, "score_error", losses.RECONSTRUCTION_ERRORS)
    check_range(config, "lr", 0.0, float("inf"), low_open=True)
    check_range(config, "adam_eps", 0.0, float("inf"), low_open=True)
    check_range(config, "weight_decay", 0.0, float("inf"))
    check_range(config, "noise_factor", 0.0, float("inf"))
    factor = 2 ** len(config["channels"])
    if len(x_shape) != 4 or x_shape[1] % factor or x_shape[2] % factor:
        raise ValueError(f"X: expected images (n, height, width, channels) with height and width "
                         f"divisible by {factor} (2 ** len(channels)), got shape {tuple(x_shape)}")


def init(rng: jax.Array, config: Mapping[str, Any], example: jax.Array) -> TrainState:
    """example: (B, H, W, C) images; only the shape and dtype are used."""
    model = build_model(config)
    params_rng, state_rng = jax.random.split(rng)
    variables = model.init(params_rng, example)
    return TrainState.create(rng=state_rng, variables=variables, apply_fn=model.apply,
                             tx=adam(config), config=config)


def gaussian_corruption(key: jax.Array, x: jax.Array, noise_factor: float) -> jax.Array:
    """The tutorial's noise: clip(x + noise_factor * N(0, 1), 0, 1), same shape as x."""
    return jnp.clip(x + noise_factor * jax.random.normal(key, x.shape, x.dtype), 0.0, 1.0)


def training_inputs(state: TrainState, x: jax.Array) -> jax.Array:
    """What the network sees this step: x itself, or with noise_factor > 0 its corruption by
    noise from the state's key folded with the step number (fresh every step and every seed)."""
    factor = state.config["noise_factor"]
    if factor <= 0:
        return x
    return gaussian_corruption(jax.random.fold_in(state.step_rng(), 1), x, factor)  # 1: apart from dropout's key


def train_step(state: TrainState, batch: dict[str, jax.Array]):
    """One Adam step reconstructing the clean batch from ``training_inputs``."""
    return reconstruction_update(state, training_inputs(state, batch["x"]), batch["x"], batch["w"])


METHOD = Method(
    name="conv_ae", init=init, train_step=train_step, score=score, defaults=DEFAULTS,
    validate=validate, input_ndims=(4,), cpu_host_loop=True,
    description="convolutional autoencoder (TensorFlow tutorial), reconstruction error",
)

__all__ = ["DEFAULTS", "METHOD", "build_model", "gaussian_corruption", "init", "reconstruct",
           "score", "train_step", "training_inputs", "validate"]
