"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """No test sees a developer's ~/.cache/jaxad data or download switch: a missing dataset must
    fail the same everywhere. The XLA compilation cache stays shared (JAXAD_COMPILATION_CACHE),
    so compiled programs are reused across tests."""
    from jaxad.data.paths import ENV_CACHE_DIR

    if not os.environ.get("JAXAD_TEST_KEEP_CACHE"):
        monkeypatch.setenv(ENV_CACHE_DIR, str(tmp_path_factory.getbasetemp() / "jaxad-cache"))
    monkeypatch.delenv("JAXAD_DOWNLOAD", raising=False)


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real data dir: ``$JAXAD_DATA_DIR``, else ``<repo>/../shared/data``; skips if absent."""
    env = os.environ.get("JAXAD_DATA_DIR")
    path = Path(env).expanduser() if env else REPO_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"real data dir not found ({path}); set JAXAD_DATA_DIR to run data tests")
    return path


# ---- tiny synthetic copies of the data-dir layout (see jaxad/data/paths.py) -----------------


def write_idx_gz(path: Path, array, magic: int | None = None) -> None:
    """Write a uint8 array as a gzipped IDX file (magic 0x08<ndim>, big-endian int32 sizes)."""
    import gzip

    import numpy as np

    array = np.asarray(array, dtype=np.uint8)
    magic = 0x800 + array.ndim if magic is None else magic
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def write_fake_fashion(folder: Path, rng, n_train: int, n_test: int) -> dict:
    """Random Fashion-MNIST-shaped IDX .gz files in ``folder``; returns the arrays written."""
    import numpy as np

    fashion = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n).astype(np.int64)
        write_idx_gz(folder / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx_gz(folder / f"{prefix}-labels-idx1-ubyte.gz", y)
        fashion[f"x_{split}"], fashion[f"y_{split}"] = x, y
    return fashion


def write_fake_ecg(path: Path, rng, labels) -> tuple:
    """An ecg.csv of random full-precision float64 rows (a float32 round trip anywhere would
    change them) with the given labels; returns (x, labels) as written."""
    import numpy as np

    x = rng.normal(size=(len(labels), 140))
    y = np.asarray(labels, dtype=np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(repr(float(v)) for v in [*row, label]) for row, label in zip(x, y)]
    path.write_text("\n".join(lines) + "\n")
    return x, y


@pytest.fixture
def write_idx():
    """``write_idx(path, array, magic=None)``: see ``write_idx_gz``."""
    return write_idx_gz


@pytest.fixture
def fake_data_dir(tmp_path: Path):
    """A small data dir in the shared layout, and the arrays the readers must return.

    Returns a namespace with ``root`` and the expected ``fashion`` (dict), ``ecg`` (x, labels)
    and ``adbench`` ({full name: (X, y)}) in the readers' output dtypes.
    """
    from types import SimpleNamespace

    import numpy as np

    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    fashion = write_fake_fashion(root / "fashion_mnist", rng, n_train=12, n_test=5)
    ecg_x, ecg_y = write_fake_ecg(root / "ecg5000" / "ecg.csv", rng, [1, 0, 1, 1, 0, 1, 0])

    adbench = {}
    sets = {  # name -> (folder, X, y) with the mixed dtypes the real files have
        "1_alpha": ("adbench_classical", rng.integers(-50, 50, (9, 3)).astype(np.int16), np.int32),
        "12_Beta": ("adbench_classical", rng.normal(size=(6, 4)), np.int64),
        "4_magic.gamma": ("adbench_classical", rng.normal(size=(5, 2)).astype(np.float32), np.int32),
        "20news_0": ("adbench_nlp_by_bert", rng.normal(size=(8, 5)), np.int64),
    }
    for name, (folder, X, y_dtype) in sets.items():
        y = (np.arange(len(X)) % 3 == 0).astype(y_dtype)
        (root / folder).mkdir(parents=True, exist_ok=True)
        np.savez(root / folder / f"{name}.npz", X=X, y=y)
        adbench[name] = (X.astype(np.float64), y.astype(np.int64))
    return SimpleNamespace(root=root, fashion=fashion, ecg=(ecg_x, ecg_y), adbench=adbench)


def assert_same(actual, expected):
    """Same structure (dicts, tuples of arrays), dtypes, shapes and exact values."""
    import numpy as np

    if isinstance(expected, dict):
        assert isinstance(actual, dict) and list(actual) == list(expected)
        for k in expected:
            assert_same(actual[k], expected[k])
    elif isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_same(a, e)
    else:
        assert actual.dtype == expected.dtype and actual.shape == expected.shape
        np.testing.assert_array_equal(actual, expected)


# ---- every registered method on tiny data (reproducibility, checkpoints, divergence, fuzz) ---

# Small widths, 2 epochs of 4 batches: each method's whole code path (setup, per-epoch hooks,
# per-loss optimizers, dropout and noise keys) in about a second. A method registered without
# an entry here fails tests/test_reproducibility.py::test_every_method_has_a_tiny_config.
TINY_CONFIGS = {
    "ae": {"hidden": (8, 4)},
    "conv_ae": {"channels": (4, 2)},
    "dae": {"channels": (4, 2)},
    "deep_svdd": {"hidden": (8, 4)},
    "ocnn": {"fourier_dim": 32},
    "rsrae": {"network": "dense", "hidden": (16, 8), "intrinsic_size": 2},
    "rsrae_plus": {"network": "dense", "hidden": (16, 8), "intrinsic_size": 2},
    "efficient_gan": {"latent_dim": 4, "encoder_hidden": (8,), "generator_hidden": (8, 8),
                      "discriminator_width": 8, "val_rows": 16},
}


def tiny_setup(method: str, n: int = 64, seed: int = 0, **overrides):
    """(config overrides, x) for ``method``: TINY_CONFIGS with 2 epochs of batch 16, and n
    rows of N(0, 1) tables (n, 6), or images (n, 8, 8, 1) in [0, 1] for image-only methods."""
    import numpy as np

    from jaxad.methods import get_method

    rng = np.random.default_rng(seed)
    images = 2 not in get_method(method).input_ndims
    x = rng.uniform(size=(n, 8, 8, 1)) if images else rng.normal(size=(n, 6))
    return {**TINY_CONFIGS[method], "epochs": 2, "batch_size": 16, **overrides}, x.astype(np.float32)
