"""One-class network: an optional fixed random Fourier feature map, dense features and a
scalar output."""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxad.models.mlp import MLP, dense


class RandomFourierFeatures(nn.Module):
    """phi(x) = sqrt(2/D) cos(scale * x W + b), W ~ N(0, 1) (F, D), b ~ U[0, 2 pi) (D,)
    (Rahimi and Recht, "Random Features for Large-Scale Kernel Machines", NIPS 2007).

    With scale = sqrt(2 gamma), <phi(x), phi(x')> approximates the RBF kernel
    exp(-gamma ||x - x'||^2) of the one-class SVM that OC-NN generalises. W, b and scale live in
    the ``constants`` collection: they are fixed, so neither the optimizer nor the weight
    penalty sees them, and ``scale`` can be set from the training data after init (gamma
    'scale', as scikit-learn's OneClassSVM). x (B, F) -> (B, D).
    """

    dim: int = 256
    gamma: float | None = None  # None: set ``scale`` later from the data

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in = x.shape[-1]
        w = self.variable("constants", "W", lambda: jax.random.normal(self.make_rng("params"), (fan_in, self.dim)))
        b = self.variable("constants", "b", lambda: jax.random.uniform(
            self.make_rng("params"), (self.dim,), maxval=2 * jnp.pi))
        scale = self.variable("constants", "scale",
                              lambda: jnp.sqrt(2.0 * (1.0 if self.gamma is None else self.gamma)))
        return jnp.sqrt(2.0 / self.dim) * jnp.cos(scale.value * (x @ w.value) + b.value)


class OneClassNet(nn.Module):
    """[Random Fourier features] -> dense layers ``hidden`` (the last are the "deep features")
    -> a bias-free linear scalar output y_hat. x (B, ...) is flattened per sample -> y_hat (B,),
    ``aux["features"]`` (B, hidden[-1], or the Fourier features when ``hidden`` is empty)."""

    hidden: Sequence[int] = (32, 16)
    activation: str = "relu"
    initializer: str = "keras"
    fourier_dim: int = 0  # 0: no Fourier feature layer
    fourier_gamma: float | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False, mask: jax.Array | None = None):
        features = x.reshape(x.shape[0], math.prod(x.shape[1:]))
        if self.fourier_dim:
            features = RandomFourierFeatures(self.fourier_dim, self.fourier_gamma, name="fourier")(features)
        if self.hidden:
            features = MLP(tuple(self.hidden), activation=self.activation, initializer=self.initializer,
                           name="features")(features, train=train, mask=mask)
        # No bias: the paper's y_hat = <w, g(V x)>. r is the offset; a free bias would let the
        # hinge be met by shifting every output while the penalty shrinks w to a constant.
        y_hat = dense(1, features.shape[-1], self.initializer, output=True, use_bias=False,
                      name="output")(features)
        return y_hat[:, 0], {"features": features}
