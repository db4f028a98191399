"""Bias-free dense networks for Deep SVDD (Ruff et al., ICML 2018).

Ruff et al. (Prop. 2) require phi to have no bias terms anywhere: with a bias the network can map
every input to the centre c (all-zero weights, bias = c) and the hypersphere collapses. Every
Dense layer here is ``use_bias=False``; there is no batch norm (whose learnt shift is a bias)
and no dropout.

Inputs of any rank are flattened per sample, so NHWC images go through the dense network as
vectors (as ``DenseAE`` does). The authors' LeNet-type convolutional networks for MNIST and
CIFAR-10 are not implemented.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax

from jaxad.models.mlp import ACTIVATIONS, dense, mirrored


def _flatten(x: jax.Array) -> jax.Array:
    return x.reshape(x.shape[0], math.prod(x.shape[1:]))


class DeepSVDDNet(nn.Module):
    """phi: bias-free Dense layers ``hidden`` (last width = representation size), each hidden
    layer followed by ``activation``, the last by ``output_activation``.

    The authors' networks end in a bare linear layer (``output_activation='linear'``); PyOD's
    ``DeepSVDD`` puts its hidden activation (ReLU) after the last layer too ('relu').

    Shapes: x (B, ...) -> z (B, hidden[-1]); returns ``(z, {"z": z})``.
    """

    hidden: Sequence[int] = (64, 32)
    activation: str = "relu"
    output_activation: str = "linear"
    initializer: str = "torch"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False, mask: jax.Array | None = None):
        del train, mask  # no batch norm, no dropout: same function in training and scoring
        h = _flatten(x)
        for i, width in enumerate(self.hidden):
            last = i == len(self.hidden) - 1
            h = dense(width, h.shape[-1], self.initializer, output=last, use_bias=False)(h)
            h = ACTIVATIONS[self.output_activation if last else self.activation](h)
        return h, {"z": h}


class DeepSVDDAutoencoder(nn.Module):
    """The pretraining autoencoder: the encoder is exactly ``DeepSVDDNet`` (its parameters,
    under ``params["encoder"]``, have phi's structure and are copied into phi after
    pretraining); the decoder mirrors it, bias-free too, with a linear output layer of the
    input's size. Returns ``(recon, {"z": z})``, recon of x's shape."""

    hidden: Sequence[int] = (64, 32)
    activation: str = "relu"
    output_activation: str = "linear"
    initializer: str = "torch"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False, mask: jax.Array | None = None):
        shape = x.shape
        flat = _flatten(x)
        z, _ = DeepSVDDNet(tuple(self.hidden), self.activation, self.output_activation,
                           self.initializer, name="encoder")(flat)
        h = z
        for i, width in enumerate(mirrored(self.hidden)):
            h = ACTIVATIONS[self.activation](
                dense(width, h.shape[-1], self.initializer, use_bias=False, name=f"decoder_{i}")(h))
        recon = dense(flat.shape[1], h.shape[-1], self.initializer, output=True, use_bias=False,
                      name="decoder_out")(h)
        return recon.reshape(shape), {"z": z}
