"""OC-NN, the one-class neural network (method ``ocnn``).

Chalapathy, Menon and Chawla, "Anomaly Detection using One-Class Neural Networks" (2018):

    min_{w, V, r}  1/2 ||w||^2 + 1/2 ||V||_F^2 + 1/nu * mean_n max(0, r - y_hat_n) - r

solved by alternating: the network is trained by gradient with r fixed, and after every epoch r
is set to the nu-quantile of the training outputs (an engine ``epoch_end`` hook, a pure
function). A point is typical when y_hat > r; the anomaly score is r - y_hat (> 0: flagged).
Training stops once |delta r| < ``delta`` for ``steps`` epochs in a row (``Method.stopping``).

Architecture and optimiser follow the Spanish seed notebook: Dense 32 relu -> Dense 16 relu (the
"deep features") -> Dense 1, Keras initialisation, Adam lr 1e-3, batch 64, delta 0.025, steps 3.
Where the notebook deviates from the paper, the paper is followed:

* r is the nu-quantile of the outputs (a share nu of training points below r, so nu is the share
  flagged); the notebook took ``sorted(y)[int(N * (1 - nu))]``, the (1 - nu)-quantile, which
  agrees only at nu = 0.5.
* The weight penalty is the paper's 1/2 (||w||^2 + ||V||^2) over every layer's kernel
  (``weight_penalty`` 0.5); the notebook used Keras L2 regularisers of 0.01.
* r starts at the nu-quantile of the initial network's outputs (``setup``), not at 1.0.
* 50 epochs at most (the notebook ran 5, before its r had converged); the stop rule ends earlier.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxad import losses
from jaxad.methods.base import (
    TRAINING_DEFAULTS, Method, TrainState, adam, check_choice, check_positive_int, check_range,
    check_widths, validate_training,
)
from jaxad.models import ACTIVATIONS, INITIALIZERS, OneClassNet

DEFAULTS: dict[str, Any] = {
    **TRAINING_DEFAULTS,
    "epochs": 50,
    "batch_size": 64,
    "hidden": (32, 16),
    "activation": "relu",
    "initializer": "keras",
    "lr": 1e-3,
    "adam_eps": 1e-7,
    "nu": 0.1,
    "weight_penalty": 0.5,
    "delta": 0.025,
    "steps": 3,
}


def build_model(config: Mapping[str, Any]) -> OneClassNet:
    return OneClassNet(hidden=tuple(config["hidden"]), activation=config["activation"],
                       initializer=config["initializer"])


def validate(config: Mapping[str, Any], x_shape: tuple[int, ...]) -> None:
    validate_training(config)
    check_widths(config, "hidden")
    check_choice(config, "activation", ACTIVATIONS)
    check_choice(config, "initializer", INITIALIZERS)
    check_range(config, "nu", 0.0, 1.0, low_open=True, high_open=True)
    check_range(config, "delta", 0.0, float("inf"))
    check_positive_int(config, "steps")
    check_range(config, "weight_penalty", 0.0, float("inf"))
    check_range(config, "lr", 0.0, float("inf"), low_open=True)
    check_range(config, "adam_eps", 0.0, float("inf"), low_open=True)


def init(rng: jax.Array, config: Mapping[str, Any], example: jax.Array) -> TrainState:
    model = build_model(config)
    params_rng, state_rng = jax.random.split(rng)
    variables = model.init(params_rng, example)
    return TrainState.create(rng=state_rng, variables=variables, apply_fn=model.apply, tx=adam(config),
                             config=config, extra={"r": jnp.zeros(())})


def outputs(state: TrainState, x: jax.Array) -> jax.Array:
    """y_hat (n,) of the current network."""
    return state.apply_fn({"params": state.params, **state.model_state}, x)[0]


def setup(state: TrainState, x_train: jax.Array) -> TrainState:
    """r starts at the nu-quantile of the initial outputs on the training data."""
    return state.replace(extra={**state.extra, "r": losses.nu_quantile(outputs(state, x_train), state.config["nu"])})


def train_step(state: TrainState, batch: dict[str, jax.Array]):
    """One Adam step on the OC-NN loss with r fixed."""
    cfg = state.config

    def loss_fn(params):
        y_hat = state.apply_fn({"params": params, **state.model_state}, batch["x"])[0]
        return losses.ocnn_loss(y_hat, state.extra["r"], cfg["nu"], batch["w"],
                                losses.squared_weight_norm(params), cfg["weight_penalty"])

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    return state.apply_gradients(grads), {"loss": loss}


def update_radius(state: TrainState, x_train: jax.Array):
    """The per-epoch hook: r <- nu-quantile of the training outputs; reports r and |delta r|."""
    r_new = losses.nu_quantile(outputs(state, x_train), state.config["nu"])
    metrics = {"r": r_new, "delta_r": jnp.abs(r_new - state.extra["r"])}
    return state.replace(extra={**state.extra, "r": r_new}), metrics


def score(state: TrainState, x: jax.Array) -> jax.Array:
    """r - y_hat (n,): positive for points the network calls atypical."""
    return state.extra["r"] - outputs(state, x)


class RadiusConverged:
    """Host-side stop rule: a seed stops once |delta r| < delta for ``steps`` epochs in a row
    (the notebook's ChangeRCallback)."""

    def __init__(self, delta: float, steps: int):
        self.delta, self.steps, self.streak = delta, steps, None

    def __call__(self, epoch: int, metrics: Mapping[str, np.ndarray]) -> np.ndarray:
        small = np.asarray(metrics["delta_r"]) < self.delta
        self.streak = np.where(small, (0 if self.streak is None else self.streak) + 1, 0)
        return self.streak >= self.steps


def stopping(config: Mapping[str, Any]) -> list:
    return [RadiusConverged(float(config["delta"]), int(config["steps"]))]


METHOD = Method(
    name="ocnn", init=init, train_step=train_step, score=score, defaults=DEFAULTS, validate=validate,
    epoch_end=update_radius, setup=setup, stopping=stopping, input_ndims=(2, 4),
    description="one-class neural network with its nu-quantile radius r",
)
