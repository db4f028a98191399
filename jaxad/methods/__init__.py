"""The method registry: a name -> ``Method`` (pure init / train_step / score functions).

Adding a method is one file here defining ``METHOD`` and one line in ``METHODS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jaxad.methods import ae, conv_ae, dae, deep_svdd, efficient_gan, ocnn, rsrae
from jaxad.methods.base import FrozenConfig, Method, TrainState

METHODS: dict[str, Method] = {m.name: m for m in (ae.METHOD, conv_ae.METHOD, dae.METHOD, ocnn.METHOD, deep_svdd.METHOD,
                                                  rsrae.METHOD, rsrae.PLUS_METHOD, efficient_gan.METHOD)}


def get_method(name: str | Method) -> Method:
    """The registered method of that name (a Method passes through); KeyError lists the names."""
    if isinstance(name, Method):
        return name
    if name not in METHODS:
        raise KeyError(f"method={name!r}: unknown method; expected one of {sorted(METHODS)}")
    return METHODS[name]


def resolve_config(method: str | Method, overrides: Mapping[str, Any] | None = None,
                   preset: str | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """defaults <- preset <- overrides. A named preset unknown to the method is ignored only
    when it names a dataset (the driver passes dataset names); an unknown config key raises
    KeyError naming it and the valid keys."""
    method = get_method(method)
    preset_values = method.presets.get(preset, {}) if isinstance(preset, str) else (preset or {})
    config = dict(method.defaults)
    for source, values in (("preset", preset_values), ("config", overrides or {})):
        unknown = sorted(set(values) - set(config))
        if unknown:
            raise KeyError(f"{source} key(s) {unknown} unknown for method {method.name!r}; "
                           f"valid keys: {sorted(config)}")
        config.update(values)
    return config


__all__ = ["METHODS", "FrozenConfig", "Method", "TrainState", "get_method", "resolve_config"]
