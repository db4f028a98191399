"""Loss values checked by hand on tiny inputs."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from jaxad import losses


def test_squared_error_by_hand():
    x = jnp.array([[0.0, 1.0], [2.0, 2.0]])
    r = jnp.array([[1.0, 1.0], [0.0, 4.0]])
    # row 0: (1 + 0) / 2; row 1: (4 + 4) / 2
    np.testing.assert_allclose(losses.squared_error(x, r), [0.5, 4.0])


def test_absolute_error_by_hand():
    x = jnp.array([[0.0, 1.0], [2.0, 2.0]])
    r = jnp.array([[1.0, 1.0], [0.0, 5.0]])
    np.testing.assert_allclose(losses.absolute_error(x, r), [0.5, 2.5])


def test_binary_cross_entropy_by_hand():
    x = jnp.array([[1.0, 0.0]])
    p = jnp.array([[0.8, 0.25]])
    expected = -(math.log(0.8) + math.log(0.75)) / 2
    np.testing.assert_allclose(losses.binary_cross_entropy(x, p), [expected], rtol=1e-6)


def test_binary_cross_entropy_clips_like_keras():
    # p = 0 for a target 1 would be inf; Keras clips to 1e-7.
    out = losses.binary_cross_entropy(jnp.array([[1.0]]), jnp.array([[0.0]]))
    np.testing.assert_allclose(out, [-math.log(1e-7)], rtol=1e-5)


def test_errors_flatten_images_per_sample():
    x = jnp.zeros((3, 2, 2, 1))
    r = jnp.ones((3, 2, 2, 1))
    assert losses.squared_error(x, r).shape == (3,)
    np.testing.assert_allclose(losses.absolute_error(x, r), [1.0, 1.0, 1.0])


@pytest.mark.parametrize("kind", ["mse", "mae", "bce"])
def test_reconstruction_error_dispatch(kind):
    x = jnp.array([[0.2, 0.9]])
    r = jnp.array([[0.3, 0.5]])
    np.testing.assert_allclose(losses.reconstruction_error(x, r, kind),
                               losses.RECONSTRUCTION_ERRORS[kind](x, r))


def test_weighted_mean_ignores_zero_weights():
    v = jnp.array([1.0, 3.0, 100.0])
    w = jnp.array([1.0, 1.0, 0.0])
    assert float(losses.weighted_mean(v, w)) == 2.0
    assert float(losses.weighted_mean(v, jnp.zeros(3))) == 0.0


@pytest.mark.parametrize("q", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_masked_quantile_is_the_quantile_of_the_kept_values(q):
    values = jnp.array([3.0, -1.0, 7.0, 2.0, 0.0, 0.0, 0.0])  # the last three: padding
    mask = jnp.arange(7) < 4
    # by hand: sorted kept values -1, 2, 3, 7; position q * 3, linear interpolation
    expected = {0.0: -1.0, 0.1: -1.0 + 0.3 * 3.0, 0.5: 2.5, 0.9: 3.0 + 0.7 * 4.0, 1.0: 7.0}[q]
    assert float(losses.masked_quantile(values, q, mask)) == pytest.approx(expected, rel=1e-6)
    assert float(losses.masked_quantile(values[:4], q)) == pytest.approx(expected, rel=1e-6)
    assert float(losses.masked_quantile(jnp.array([5.0, 0.0]), q, jnp.array([True, False]))) == 5.0
