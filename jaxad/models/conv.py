"""Convolutional autoencoder for small images (NHWC)."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxad.models.mlp import ACTIVATIONS, INITIALIZERS


def conv_init(initializer: str, fan_in: int) -> dict:
    """kernel_init / bias_init of the named framework for a conv layer with this fan-in
    (kernel height x width x input channels; Flax's variance scaling reads the same from the
    kernel's shape)."""
    hidden_kernel, _, bias = INITIALIZERS[initializer]
    return {"kernel_init": hidden_kernel, "bias_init": bias(fan_in)}


# Row/column taps of a 3x3, stride-2, 'SAME' transposed convolution: output 2i + phase reads
# input i - 1 (window slot 0) and input i (slot 1) through these kernel taps (None: no tap).
# Derived from lax.conv_transpose's padding (2 before, 1 after the dilated input).
_PHASE_TAPS = {0: (0, 2), 1: (None, 1)}


def _phase_kernel(kernel: jax.Array) -> jax.Array:
    """(3, 3, C_in, C_out) transposed-conv kernel -> (2, 2, C_in, 4 * C_out) kernel of a plain
    convolution whose 4 output groups are the phases (row phase, column phase) in C order."""
    zeros = jnp.zeros(kernel.shape[2:], kernel.dtype)
    phases = []
    for a in (0, 1):
        for b in (0, 1):
            rows = [[kernel[_PHASE_TAPS[a][u], _PHASE_TAPS[b][v]]
                     if _PHASE_TAPS[a][u] is not None and _PHASE_TAPS[b][v] is not None else zeros
                     for v in (0, 1)] for u in (0, 1)]
            phases.append(jnp.stack([jnp.stack(r) for r in rows]))  # (2, 2, C_in, C_out)
    return jnp.concatenate(phases, axis=-1)


class SubpixelConvTranspose(nn.Module):
    """``nn.ConvTranspose(features, (3, 3), strides=(2, 2), padding="SAME")``, same parameters
    and same outputs (tested), computed as a 2x2 convolution into 4 phases + depth-to-space.

    Why: XLA's CPU backend runs the transposed convolution as a convolution over a zero-dilated
    input, 4x the multiplications and a slow path (8.9 ms of a 15 ms conv_ae step on 32 images).
    Shapes: (B, H, W, C_in) -> (B, 2H, 2W, features)."""

    features: int
    kernel_init: callable = nn.initializers.lecun_normal()
    bias_init: callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", self.kernel_init, (3, 3, x.shape[-1], self.features))
        bias = self.param("bias", self.bias_init, (self.features,))
        y = jax.lax.conv_general_dilated(
            x, _phase_kernel(kernel).astype(x.dtype), window_strides=(1, 1),
            padding=((1, 0), (1, 0)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
        b, h, w, _ = y.shape
        y = y.reshape(b, h, w, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)
        return y.reshape(b, 2 * h, 2 * w, self.features) + bias


class ConvAE(nn.Module):
    """TensorFlow's autoencoder tutorial ``Denoise`` model, generalised in its widths.

    Encoder: Conv ``channels[0]`` then ``channels[1]`` ..., kernel 3x3, stride 2, 'same' padding,
    relu. Decoder: ConvTranspose over the reversed channels, stride 2, relu, then a 3x3 Conv to
    the input's channel count with ``output_activation`` (sigmoid: images in [0, 1]).

    Shapes: x (B, H, W, C) -> recon (B, H, W, C), with H and W divisible by 2**len(channels)
    (28x28 with two layers: 28 -> 14 -> 7 -> 14 -> 28); ``aux["z"]`` (B, H/4, W/4, channels[-1]).
    """

    channels: Sequence[int] = (16, 8)
    kernel_size: int = 3
    activation: str = "relu"
    output_activation: str = "sigmoid"
    initializer: str = "keras"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False, mask: jax.Array | None = None):
        act, k = ACTIVATIONS[self.activation], (self.kernel_size, self.kernel_size)
        init = lambda h: conv_init(self.initializer, self.kernel_size ** 2 * h.shape[-1])  # noqa: E731
        h = x
        for width in self.channels:
            h = act(nn.Conv(width, k, strides=(2, 2), padding="SAME", **init(h))(h))
        z = h
        for width in reversed(tuple(self.channels)):
            up = (SubpixelConvTranspose(width, **init(h)) if self.kernel_size == 3
                  else nn.ConvTranspose(width, k, strides=(2, 2), padding="SAME", **init(h)))
            h = act(up(h))
        out = nn.Conv(x.shape[-1], k, padding="SAME", **init(h))(h)
        recon = ACTIVATIONS[self.output_activation](out)
        return recon, {"z": z}
