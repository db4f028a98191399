"""A persistent XLA compilation cache, so that a second process does not pay compile time again.

On by default under ``cache_dir("xla")``; ``JAXAD_COMPILATION_CACHE=0`` turns it off, and a cache
dir the user already configured in JAX is left alone.
"""

from __future__ import annotations

import os

import jax


def enable_compilation_cache() -> str | None:
    """Point JAX's persistent cache at jaxad's cache dir unless disabled or already set."""
    if os.environ.get("JAXAD_COMPILATION_CACHE", "1") in ("0", "false", "no"):
        return None
    if jax.config.jax_compilation_cache_dir:
        return jax.config.jax_compilation_cache_dir
    from jaxad.data.paths import cache_dir

    path = str(cache_dir("xla"))
    jax.config.update("jax_compilation_cache_dir", path)
    # Small programs compile in well under JAX's 1 s default floor, yet that is the cost we cut.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
