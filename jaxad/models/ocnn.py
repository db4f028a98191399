"""One-class network: dense features and a scalar output."""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax

from jaxad.models.mlp import MLP, dense


class OneClassNet(nn.Module):
    """Dense layers ``hidden`` (the last are the "deep features"), then a linear scalar output
    y_hat. x (B, ...) is flattened per sample -> y_hat (B,), ``aux["features"]`` (B, hidden[-1])."""

    hidden: Sequence[int] = (32, 16)
    activation: str = "relu"
    initializer: str = "keras"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False, mask: jax.Array | None = None):
        flat = x.reshape(x.shape[0], math.prod(x.shape[1:]))
        features = MLP(tuple(self.hidden), activation=self.activation, initializer=self.initializer,
                       name="features")(flat, train=train, mask=mask)
        y_hat = dense(1, features.shape[-1], self.initializer, output=True, name="output")(features)
        return y_hat[:, 0], {"features": features}
