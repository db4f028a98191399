"""Model shapes, parameter names and initialisers."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxad.models import MLP, DenseAE, dense
from jaxad.models.mlp import BatchNorm


def test_dense_ae_shapes_and_latent():
    model = DenseAE(hidden=(32, 16, 8))
    x = jnp.ones((5, 140))
    variables = model.init(jax.random.PRNGKey(0), x, train=False)
    recon, aux = model.apply(variables, x, train=False)
    assert recon.shape == (5, 140)
    assert aux["z"].shape == (5, 8)
    enc = variables["params"]["encoder"]
    dec = variables["params"]["decoder"]
    # encoder 140-32-16-8, decoder mirrored 16-32, then the output layer back to 140
    assert [enc[f"Dense_{i}"]["kernel"].shape for i in range(3)] == [(140, 32), (32, 16), (16, 8)]
    assert [dec[f"Dense_{i}"]["kernel"].shape for i in range(3)] == [(8, 16), (16, 32), (32, 140)]


def test_dense_ae_flattens_images_and_restores_shape():
    model = DenseAE(hidden=(16,), output_activation="sigmoid")
    x = jnp.ones((2, 28, 28, 1))
    variables = model.init(jax.random.PRNGKey(0), x, train=False)
    recon, _ = model.apply(variables, x, train=False)
    assert recon.shape == x.shape
    assert float(recon.min()) >= 0.0 and float(recon.max()) <= 1.0


def test_batch_norm_mask_keeps_padding_out_of_statistics():
    model = MLP(features=(4,), batch_norm=True)
    x = jnp.array([[1.0, 2.0], [3.0, 4.0], [1e6, -1e6]])
    variables = model.init(jax.random.PRNGKey(0), x, train=False)
    mask = jnp.array([True, True, False])
    _, masked = model.apply(variables, x, train=True, mask=mask, mutable=["batch_stats"])
    _, real = model.apply(variables, x[:2], train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(masked["batch_stats"]["BatchNorm_0"]["mean"],
                               real["batch_stats"]["BatchNorm_0"]["mean"], rtol=1e-5)


def test_batch_norm_biased_is_flaxs_and_unbiased_scales_the_running_variance_by_n_over_n_minus_1():
    x = jnp.array([[1.0, -2.0], [3.0, 4.0], [0.5, 1.0], [1e6, -1e6]])
    mask = jnp.array([True, True, True, False])[:, None]
    ours = BatchNorm(momentum=0.9, unbiased_running_var=False)
    theirs = nn.BatchNorm(momentum=0.9, epsilon=1e-5)
    variables = ours.init(jax.random.PRNGKey(0), x, use_running_average=False)
    y, stats = ours.apply(variables, x, use_running_average=False, mask=mask, mutable=["batch_stats"])
    y_ref, stats_ref = theirs.apply(variables, x, use_running_average=False, mask=mask, mutable=["batch_stats"])
    np.testing.assert_allclose(y[:3], y_ref[:3], rtol=1e-5, atol=1e-6)
    for key in ("mean", "var"):
        np.testing.assert_allclose(stats["batch_stats"][key], stats_ref["batch_stats"][key], rtol=1e-5)
    unbiased = BatchNorm(momentum=0.9, unbiased_running_var=True)
    y_unbiased, stats_unbiased = unbiased.apply(variables, x, use_running_average=False, mask=mask,
                                                mutable=["batch_stats"])
    real = np.asarray(x[:3])
    # n = 3 real rows: 0.9 * 1 + 0.1 * var(ddof=1); the normalisation itself uses the batch's own
    # biased variance, as in PyTorch
    np.testing.assert_allclose(stats_unbiased["batch_stats"]["var"], 0.9 + 0.1 * real.var(axis=0, ddof=1), rtol=1e-5)
    np.testing.assert_allclose(y_unbiased, y, rtol=1e-6)
    # evaluation mode normalises with the running statistics
    y_eval = unbiased.apply({**variables, **stats_unbiased}, x[:1], use_running_average=True)
    mean, var = stats_unbiased["batch_stats"]["mean"], stats_unbiased["batch_stats"]["var"]
    np.testing.assert_allclose(y_eval, (x[:1] - mean) / np.sqrt(var + 1e-5), rtol=1e-5)


@pytest.mark.parametrize("initializer, kernel_bound, bias_zero", [
    ("torch", 1 / np.sqrt(100), False),
    ("keras", np.sqrt(6 / (100 + 50)), True),
    ("pyod", np.sqrt(6 / 100), False),
])
def test_initializers_follow_their_framework(initializer, kernel_bound, bias_zero):
    layer = dense(50, 100, initializer)
    params = layer.init(jax.random.PRNGKey(1), jnp.ones((1, 100)))["params"]
    kernel, bias = np.asarray(params["kernel"]), np.asarray(params["bias"])
    assert np.abs(kernel).max() <= kernel_bound
    assert np.abs(kernel).max() > 0.9 * kernel_bound  # uniform fills its range
    assert (bias == 0).all() == bias_zero


def test_pyod_initializer_keeps_torch_default_on_output_layer():
    layer = dense(50, 100, "pyod", output=True)
    kernel = np.asarray(layer.init(jax.random.PRNGKey(1), jnp.ones((1, 100)))["params"]["kernel"])
    assert np.abs(kernel).max() <= 1 / np.sqrt(100)
