"""Parameter groups and per-loss optimizers (jaxad.methods.param_groups)."""

import functools

import jax
import jax.numpy as jnp
import optax
import pytest

from jaxad.methods.base import TrainState
from jaxad.methods.param_groups import group_optimizer, label_params, per_loss


def tiny_params():
    return {"encoder": {"Dense_0": {"kernel": jnp.ones((2, 3)), "bias": jnp.zeros(3)}},
            "rsr": {"A": jnp.full((3, 2), 0.5)}}


LABELS = functools.partial(label_params, groups={"rsr": "rsr"}, default="ae")


def test_labels_follow_module_names():
    labels = LABELS(tiny_params())
    assert labels == {"encoder": {"Dense_0": {"kernel": "ae", "bias": "ae"}}, "rsr": {"A": "rsr"}}


def test_unlabelled_parameter_without_default_is_an_error():
    with pytest.raises(ValueError, match="parameter encoder/Dense_0/"):
        label_params(tiny_params(), {"rsr": "rsr"})


def make_state():
    tx = per_loss(ae=optax.adam(1e-2), pca=group_optimizer({"rsr": optax.adam(1e-1)}, LABELS))
    return TrainState.create(rng=jax.random.key(0), variables={"params": tiny_params()},
                             apply_fn=None, tx=tx, config={})


def test_group_step_leaves_other_groups_and_other_optimizer_states_bit_identical():
    state = make_state()
    grads = jax.tree.map(jnp.ones_like, state.params)
    # Give the 'ae' optimizer momentum first, then step only A through 'pca'.
    state = state.apply_gradients(grads, optimizer="ae")
    after = state.apply_gradients(grads, optimizer="pca", advance=False)
    assert (after.params["encoder"]["Dense_0"]["kernel"] == state.params["encoder"]["Dense_0"]["kernel"]).all()
    assert (after.params["encoder"]["Dense_0"]["bias"] == state.params["encoder"]["Dense_0"]["bias"]).all()
    assert not (after.params["rsr"]["A"] == state.params["rsr"]["A"]).any()
    jax.tree.map(lambda a, b: None if (a == b).all() else pytest.fail("ae state moved"),
                 state.opt_state["ae"], after.opt_state["ae"])
    assert int(after.step) == int(state.step) == 1


def test_per_loss_optimizer_moves_every_group_and_unknown_name_is_an_error():
    state = make_state()
    grads = jax.tree.map(jnp.ones_like, state.params)
    after = state.apply_gradients(grads, optimizer="ae")
    assert not (after.params["encoder"]["Dense_0"]["kernel"] == state.params["encoder"]["Dense_0"]["kernel"]).any()
    assert not (after.params["rsr"]["A"] == state.params["rsr"]["A"]).any()
    with pytest.raises(KeyError, match="optimizer='nope'"):
        state.apply_gradients(grads, optimizer="nope")
