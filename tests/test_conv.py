"""Convolutional and denoising autoencoders (conv_ae, dae)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxad
from jaxad import Detector, train
from jaxad.methods import conv_ae, resolve_config
from jaxad.models import ConvAE
from jaxad.models.conv import SubpixelConvTranspose


def test_conv_ae_is_the_tutorial_denoise_model():
    model = ConvAE()
    x = jnp.ones((2, 28, 28, 1))
    variables = model.init(jax.random.PRNGKey(0), x)
    recon, aux = model.apply(variables, x)
    assert recon.shape == (2, 28, 28, 1) and aux["z"].shape == (2, 7, 7, 8)
    assert 0.0 <= float(recon.min()) and float(recon.max()) <= 1.0  # sigmoid output
    kernels = {k: v["kernel"].shape for k, v in variables["params"].items()}
    assert kernels == {"Conv_0": (3, 3, 1, 16), "Conv_1": (3, 3, 16, 8),
                       "SubpixelConvTranspose_0": (3, 3, 8, 8), "SubpixelConvTranspose_1": (3, 3, 8, 16),
                       "Conv_2": (3, 3, 16, 1)}


@pytest.mark.parametrize("size, c_in, c_out", [(7, 8, 8), (14, 8, 16), (5, 3, 2), (1, 1, 1)])
def test_subpixel_transpose_equals_flax_conv_transpose(size, c_in, c_out):
    x = jnp.asarray(np.random.default_rng(size).normal(size=(3, size, size, c_in)), jnp.float32)
    ref = nn.ConvTranspose(c_out, (3, 3), strides=(2, 2), padding="SAME", bias_init=nn.initializers.normal(1.0))
    variables = ref.init(jax.random.PRNGKey(1), x)
    np.testing.assert_allclose(SubpixelConvTranspose(c_out).apply(variables, x), ref.apply(variables, x),
                               rtol=1e-5, atol=1e-5)


def _state(seed, noise_factor=0.2):
    config = resolve_config("dae", {"noise_factor": noise_factor})
    return conv_ae.init(jax.random.PRNGKey(seed), config, jnp.zeros((2, 8, 8, 1)))


def test_dae_noise_is_fresh_per_step_and_per_seed_and_clipped():
    x = jnp.full((4, 8, 8, 1), 0.5)
    s0 = _state(0)
    a = conv_ae.training_inputs(s0, x)
    again = conv_ae.training_inputs(s0, x)
    next_step = conv_ae.training_inputs(s0.replace(step=s0.step + 1), x)
    other_seed = conv_ae.training_inputs(_state(1), x)
    np.testing.assert_array_equal(a, again)  # a pure function of the state
    assert not np.allclose(a, next_step) and not np.allclose(a, other_seed)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert 0.15 < float(jnp.std(a - x)) < 0.25  # noise factor 0.2 (a little clipping)
    np.testing.assert_array_equal(conv_ae.training_inputs(_state(0, noise_factor=0.0), x), x)


def test_dae_trains_on_noisy_inputs_against_clean_targets():
    """A denoiser trained on flat images must map noisy flat images back close to flat."""
    x = np.full((64, 8, 8, 1), 0.3, np.float32)
    config = resolve_config("dae", {"epochs": 30, "batch_size": 16, "lr": 3e-3})
    result = train.fit("dae", config, x, progress=False)
    state = jax.tree.map(lambda a: a[0], result.states)
    noisy = conv_ae.gaussian_corruption(jax.random.PRNGKey(9), jnp.asarray(x), 0.2)
    denoised = conv_ae.reconstruct(state, noisy)
    assert float(jnp.mean((denoised - x) ** 2)) < 0.5 * float(jnp.mean((noisy - x) ** 2))


@pytest.mark.parametrize("X, message", [
    (np.zeros((4, 30, 28, 1)), "divisible by 4"),
    (np.zeros((4, 784)), "expected a 4-D"),
])
def test_conv_methods_reject_bad_shapes_before_training(X, message, monkeypatch):
    monkeypatch.setattr(jaxad.train, "fit", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    with pytest.raises(ValueError, match=message):
        Detector("conv_ae", scale=None).fit(X)


def test_bad_conv_settings():
    with pytest.raises(ValueError, match="noise_factor=-0.1"):
        Detector("dae", scale=None, noise_factor=-0.1).fit(np.zeros((4, 8, 8, 1)))
    with pytest.raises(ValueError, match="channels=()"):
        Detector("conv_ae", scale=None, channels=()).fit(np.zeros((4, 8, 8, 1)))


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("method", ["conv_ae", "dae"])
def test_one_class_fashion_mnist_quality_floor(method, shared_data_dir):
    """Class 1 (trousers) as normal, 2 epochs on 2000 of its images, tested on 2000 test images."""
    from jaxad.data import load_split

    split = load_split("fashion_mnist", data_dir=shared_data_dir, normal_class=1)
    config = resolve_config(method, {"epochs": 2})
    result = train.fit(method, config, split.x_train[:2000], seeds=(0,), progress=False)
    scores = train.fit_result_scores(result, split.x_test[:2000])[0]
    assert jaxad.metrics.auroc(split.y_test[:2000], scores) > 0.85
