"""Multilayer perceptrons and the dense autoencoder."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    # 0.1 is the slope of Zenati et al.'s Efficient GAN code, the one place it is used.
    "leaky_relu": partial(nn.leaky_relu, negative_slope=0.1),
    "elu": nn.elu,
    "gelu": nn.gelu,
    "tanh": jnp.tanh,
    "sigmoid": nn.sigmoid,
    "linear": lambda x: x,
}
# The activations with f(0) = 0: an output layer whose padding columns have zero weights and
# biases then outputs exact zeros there (``pad_output_layer``).
ZERO_AT_ZERO = frozenset({"relu", "leaky_relu", "elu", "gelu", "tanh", "linear"})


def _torch_bias(fan_in: int):
    bound = 1.0 / math.sqrt(fan_in)
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


_TORCH_KERNEL = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
_ZEROS = lambda fan_in: nn.initializers.zeros  # noqa: E731

# name -> (hidden-layer kernel init, output-layer kernel init, bias init from fan_in): each
# framework's Dense default, so a port starts where its source started.
# keras: glorot-uniform kernels, zero biases. torch: nn.Linear's kaiming-uniform(a=sqrt 5), i.e.
# U(+-1/sqrt(fan_in)) for kernels and biases. pyod: PyOD's LinearBlock re-initialises hidden
# kernels kaiming-uniform(a=0) = U(+-sqrt(6/fan_in)) (He) and keeps torch's default for the biases
# and the bare output layer (pyod/utils/torch_utility.py). flax: lecun-normal, zero biases.
INITIALIZERS = {
    "keras": (nn.initializers.glorot_uniform(),) * 2 + (_ZEROS,),
    "torch": (_TORCH_KERNEL, _TORCH_KERNEL, _torch_bias),
    "pyod": (nn.initializers.variance_scaling(2.0, "fan_in", "uniform"), _TORCH_KERNEL, _torch_bias),
    "flax": (nn.initializers.lecun_normal(),) * 2 + (_ZEROS,),
}


def first_layer_rescale(initializer: str, width, n_features, fan_out: int):
    """The factor that takes a first Dense layer's kernel and bias, drawn for ``width`` inputs,
    to the scale the named initializer gives ``n_features`` inputs (either may be traced): every
    ``INITIALIZERS`` entry scales as 1 / sqrt(fan_in) (He, LeCun, PyTorch's uniform), except
    glorot's (keras) 1 / sqrt(fan_in + fan_out) and the fixed N(0, 0.02) of ``dcgan`` (the BiGAN's
    image preset). Biases drawn from fan-in scale the same way."""
    if initializer == "keras":
        return jnp.sqrt((width + fan_out) / (n_features + fan_out))
    if initializer == "dcgan":
        return jnp.ones(())
    return jnp.sqrt(width / n_features)


def output_layer_rescale(initializer: str, width, n_features, fan_in: int):
    """The factor that takes an output Dense layer's kernel, drawn for ``width`` outputs, to the
    scale the named initializer gives ``n_features`` outputs: glorot's (keras)
    1 / sqrt(fan_in + fan_out) changes with the outputs, every other initializer only with the
    fan-in (factor 1). Biases depend on the fan-in only."""
    if initializer == "keras":
        return jnp.sqrt((fan_in + width) / (fan_in + n_features))
    return jnp.ones(())


def pad_input_layer(layer: dict, n_features, initializer: str) -> dict:
    """A Dense layer's params {"kernel" (W, h)[, "bias" (h,)]} drawn for W inputs, made the layer of
    the first ``n_features`` (traced) of them: the kernel rows of the zero padding zeroed (they
    only ever meet zeros, so their gradient is zero too) and the rest, and the bias, rescaled to
    the real fan-in (``first_layer_rescale``)."""
    width, fan_out = layer["kernel"].shape
    factor = first_layer_rescale(initializer, width, n_features, fan_out)
    real = jnp.arange(width) < n_features
    padded = {**layer, "kernel": jnp.where(real[:, None], layer["kernel"] * factor, 0.0)}
    if "bias" in layer:  # bias-free layers (Deep SVDD) have none
        padded["bias"] = layer["bias"] * factor
    return padded


def pad_output_layer(layer: dict, n_features, initializer: str) -> dict:
    """A Dense layer's params {"kernel" (h, W), "bias" (W,)} drawn for W outputs, made the layer of
    the first ``n_features`` (traced): the padding's kernel columns and biases zeroed, so an
    output activation with f(0) = 0 reproduces the zero padding exactly (zero error, zero
    gradient: those columns never move), the real columns rescaled (``output_layer_rescale``)."""
    fan_in, width = layer["kernel"].shape
    factor = output_layer_rescale(initializer, width, n_features, fan_in)
    real = jnp.arange(width) < n_features
    return {**layer, "kernel": jnp.where(real[None, :], layer["kernel"] * factor, 0.0),
            "bias": jnp.where(real, layer["bias"], 0.0)}


def dense(features: int, fan_in: int, initializer: str = "flax", output: bool = False, **kwargs) -> nn.Dense:
    """nn.Dense initialised as the named framework does (``output``: the last, bare layer)."""
    hidden_kernel, output_kernel, bias_init = INITIALIZERS[initializer]
    kernel_init = output_kernel if output else hidden_kernel
    return nn.Dense(features, kernel_init=kernel_init, bias_init=bias_init(fan_in), **kwargs)


class BatchNorm(nn.Module):
    """Batch norm over the last axis, flax's parameters and statistics (scale, bias; mean, var),
    with the running variance updated from the biased batch variance (flax, Keras) or the unbiased
    one, n / (n - 1) times larger (PyTorch's BatchNorm1d, hence PyOD's AutoEncoder).

    Shapes: x (B, F) -> (B, F); ``mask`` (B, 1) bool keeps padded rows out of the statistics, and
    n counts the real rows. ``momentum`` is the weight of the old running average (flax's
    convention; PyTorch's momentum 0.1 is 0.9 here). epsilon 1e-5: flax's and PyTorch's default.
    """

    momentum: float = 0.9
    epsilon: float = 1e-5
    unbiased_running_var: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, *, use_running_average: bool, mask: jax.Array | None = None) -> jax.Array:
        features = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (features,))
        bias = self.param("bias", nn.initializers.zeros, (features,))
        running_mean = self.variable("batch_stats", "mean", jnp.zeros, (features,))
        running_var = self.variable("batch_stats", "var", jnp.ones, (features,))
        if use_running_average:
            mean, var = running_mean.value, running_var.value
        else:
            weight = jnp.ones((x.shape[0], 1), x.dtype) if mask is None else mask.astype(x.dtype)
            n = weight.sum()
            mean = (weight * x).sum(0) / n
            var = (weight * jnp.square(x - mean)).sum(0) / n
            if not self.is_initializing():
                # A batch of one real row has no unbiased variance; PyTorch refuses it, this keeps
                # the biased (zero) one rather than dividing by zero.
                stats_var = var * n / jnp.maximum(n - 1.0, 1.0) if self.unbiased_running_var else var
                running_mean.value = self.momentum * running_mean.value + (1.0 - self.momentum) * mean
                running_var.value = self.momentum * running_var.value + (1.0 - self.momentum) * stats_var
        return (x - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias


class MLP(nn.Module):
    """Dense layers ``features``, each Dense -> [BatchNorm] -> activation -> [Dropout].

    That order is PyOD's AutoEncoder's, the baseline users compare against. When
    ``out_features`` is set, a last Dense layer with ``out_activation`` follows, and gets neither
    batch norm nor dropout.

    Shapes: x (B, F_in) -> (B, features[-1]) or (B, out_features).
    ``mask`` (B,) bool marks the real rows of a padded batch, so that padding never enters the
    batch-norm statistics.
    """

    features: Sequence[int]
    activation: str = "relu"
    batch_norm: bool = False
    dropout: float = 0.0
    out_features: int | None = None
    out_activation: str = "linear"
    initializer: str = "flax"
    # PyTorch's BatchNorm1d momentum 0.1 (flax counts the other way: 0.9), PyOD's; flax's own
    # 0.99 leaves the running statistics of a 10-epoch fit on a small table mostly at their init.
    bn_momentum: float = 0.9
    # PyTorch's running variance (unbiased), PyOD's; False: flax's and Keras' (biased).
    bn_unbiased_var: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool, mask: jax.Array | None = None) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for i, width in enumerate(self.features):
            x = dense(width, x.shape[-1], self.initializer)(x)
            if self.batch_norm:
                bn_mask = None if mask is None else mask[:, None]
                norm = BatchNorm(self.bn_momentum, unbiased_running_var=self.bn_unbiased_var, name=f"BatchNorm_{i}")
                x = norm(x, use_running_average=not train, mask=bn_mask)
            x = act(x)
            if self.dropout > 0:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
        if self.out_features is not None:
            x = ACTIVATIONS[self.out_activation](dense(self.out_features, x.shape[-1], self.initializer, output=True)(x))
        return x


def mirrored(hidden: Sequence[int]) -> tuple[int, ...]:
    """Decoder widths that mirror an encoder: (32, 16, 8) -> (16, 32)."""
    return tuple(hidden[:-1])[::-1]


class DenseAE(nn.Module):
    """Dense autoencoder: encoder MLP ``hidden`` (last width = latent size), decoder MLP
    ``decoder_hidden`` (None mirrors the encoder) and a linear-or-squashed output layer.

    Inputs of any rank are flattened per sample: x (B, ...) -> recon of the same shape;
    ``aux["z"]`` is the latent code (B, hidden[-1]).
    """

    hidden: Sequence[int] = (64, 32)
    decoder_hidden: Sequence[int] | None = None
    activation: str = "relu"
    output_activation: str = "linear"
    batch_norm: bool = False
    dropout: float = 0.0
    initializer: str = "flax"
    bn_momentum: float = 0.9
    bn_unbiased_var: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool, mask: jax.Array | None = None):
        shape = x.shape
        flat = x.reshape(shape[0], math.prod(shape[1:]))
        layer = partial(MLP, activation=self.activation, batch_norm=self.batch_norm,
                        dropout=self.dropout, initializer=self.initializer, bn_momentum=self.bn_momentum,
                        bn_unbiased_var=self.bn_unbiased_var)
        z = layer(tuple(self.hidden), name="encoder")(flat, train=train, mask=mask)
        widths = mirrored(self.hidden) if self.decoder_hidden is None else tuple(self.decoder_hidden)
        decoder = layer(widths, out_features=flat.shape[1], out_activation=self.output_activation, name="decoder")
        recon = decoder(z, train=train, mask=mask)
        return recon.reshape(shape), {"z": z}
