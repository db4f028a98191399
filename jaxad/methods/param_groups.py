"""Parameter groups and per-loss optimizers, for methods that train parts of a model apart.

RSRAE+ updates the RSR matrix A with its own losses and learning rate; a BiGAN alternates a
discriminator step with an encoder/generator step. Both need two things:

* **groups**: every parameter labelled from its path (``label_params``), so an optax
  ``partition`` (multi_transform) can give each group its own transform and hand the others
  ``optax.set_to_zero()`` - their update is exactly 0, so ``p + 0`` leaves them bit-identical;
* **per-loss optimizer states** (``per_loss``): one optax optimizer per loss, each with its own
  Adam moments, so one loss's momentum never moves parameters during another loss's step (the
  RSRAE notebook's three Keras optimizers; the BiGAN authors' separate D and E/G optimizers).

``TrainState.apply_gradients(grads, optimizer="name")`` steps one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import optax


def param_path(path) -> tuple[str, ...]:
    """A jax key path as a tuple of names, e.g. ('encoder', 'Dense_0', 'kernel')."""
    return tuple(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def label_params(params: Any, groups: Mapping[str, str], default: str | None = None) -> Any:
    """A pytree like ``params`` of group labels: a leaf is labelled ``groups[name]`` for the
    first name in its path found in ``groups`` (module names such as 'rsr' or 'discriminator'),
    else ``default``. A leaf matching no group with ``default`` None raises ValueError, so a
    renamed module cannot silently fall out of training."""

    def label(path, _leaf):
        names = param_path(path)
        for name in names:
            if name in groups:
                return groups[name]
        if default is None:
            raise ValueError(f"parameter {'/'.join(names)} is in none of the groups {sorted(groups)}")
        return default

    return jax.tree_util.tree_map_with_path(label, params)


def group_optimizer(transforms: Mapping[str, optax.GradientTransformation],
                    labels: Callable[[Any], Any]) -> optax.GradientTransformation:
    """``optax.partition`` of ``transforms`` by ``labels(params)`` (e.g. a ``label_params``
    partial). Parameters whose label has no transform get ``optax.set_to_zero()``: their update
    is exactly 0, so they stay bit-identical, and they keep no optimizer state."""

    def partition(params):
        names = set(jax.tree_util.tree_leaves(labels(params)))
        zero = {name: optax.set_to_zero() for name in names - set(transforms)}
        return optax.partition({**transforms, **zero}, labels(params))

    def init(params):
        return partition(params).init(params)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("group_optimizer: update() needs params to know the groups")
        return partition(params).update(updates, state, params)

    return optax.GradientTransformation(init, update)


class PerLoss:
    """Several named optimizers with separate states: ``init`` gives {name: state}; ``update``
    steps only ``optimizer=name`` and leaves the other states untouched. Hashable by identity
    of its transforms, so it can be TrainState's static ``tx``."""

    def __init__(self, optimizers: Mapping[str, optax.GradientTransformation]):
        if not optimizers:
            raise ValueError("optimizers: expected at least one named optimizer")
        self.optimizers = dict(optimizers)

    def init(self, params) -> dict[str, Any]:
        return {name: tx.init(params) for name, tx in self.optimizers.items()}

    def update(self, updates, state, params=None, *, optimizer: str | None = None):
        if optimizer not in self.optimizers:
            raise KeyError(f"optimizer={optimizer!r}: expected one of {sorted(self.optimizers)}")
        new_updates, new_state = self.optimizers[optimizer].update(updates, state[optimizer], params)
        return new_updates, {**state, optimizer: new_state}


def per_loss(**optimizers: optax.GradientTransformation) -> PerLoss:
    """One optimizer per loss, e.g. ``per_loss(ae=adam, pca=group_optimizer(...))``."""
    return PerLoss(optimizers)
