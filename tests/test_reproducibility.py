"""Same seed, same scores: bit-identical on CPU for every registered method, between two runs in
one process and between two processes; different seeds give different scores.

What makes it hold: a seed's init key is ``PRNGKey(seed)``, its batch order per epoch is numpy's
``default_rng((seed, epoch))`` permutation, and every step's randomness (dropout, noise, a GAN's
latent draws) comes from the state's key folded with the step counter (``state.step_rng()``).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_CONFIGS, tiny_setup
from jaxad import train
from jaxad.methods import METHODS, resolve_config

TESTS = Path(__file__).resolve().parent
SEEDS = (0, 1)


def seed_scores(name: str) -> np.ndarray:
    """(2 seeds, 64) training scores of ``name`` on its tiny setup, 2 epochs."""
    overrides, x = tiny_setup(name)
    result = train.fit(name, resolve_config(name, overrides), x, seeds=SEEDS, progress=False)
    return train.fit_result_scores(result, x)


OTHER_PROCESS = f"""
import sys
import numpy as np
sys.path.insert(0, {str(TESTS)!r})
from test_reproducibility import seed_scores
from jaxad.methods import METHODS
np.savez(sys.argv[1], **{{name: seed_scores(name) for name in METHODS}})
"""


@pytest.fixture(scope="module")
def other_process(tmp_path_factory):
    """Every method's seed_scores computed by a fresh Python process."""
    out = tmp_path_factory.mktemp("other_process") / "scores.npz"
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(TESTS.parent))
    proc = subprocess.run([sys.executable, "-c", OTHER_PROCESS, str(out)], cwd=TESTS.parent, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out) as scores:
        return dict(scores)


def test_every_method_has_a_tiny_config():
    assert set(METHODS) <= set(TINY_CONFIGS), "add the new method to conftest.TINY_CONFIGS"


@pytest.mark.parametrize("name", sorted(METHODS))
def test_same_seed_bit_identical_in_process_and_across_processes(name, other_process):
    first, second = seed_scores(name), seed_scores(name)
    assert first.shape == (2, 64) and first.dtype == np.float32 and np.isfinite(first).all()
    np.testing.assert_array_equal(second, first)  # two runs in one process
    np.testing.assert_array_equal(other_process[name], first)  # another process
    assert not np.allclose(first[0], first[1])  # seeds 0 and 1: different models
