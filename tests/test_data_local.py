"""Plain numpy readers of the local data files (jaxad.data.local)."""

from __future__ import annotations

import gzip
import time

import numpy as np
import pytest
from jaxad.data import local
from jaxad.data.paths import ENV_DATA_DIR, DatasetNotFoundError
from conftest import assert_same


@pytest.fixture(autouse=True)
def _no_env_data_dir(monkeypatch):
    """Readers must only see the data dir each test passes (never the developer's env)."""
    monkeypatch.delenv(ENV_DATA_DIR, raising=False)


# ---- synthetic files ------------------------------------------------------------------------


def test_fashion_mnist_round_trip(fake_data_dir):
    data = local.read_fashion_mnist(fake_data_dir.root)
    assert_same(data, fake_data_dir.fashion)
    assert data["x_train"].flags.writeable


def test_fashion_mnist_reads_env_data_dir(fake_data_dir, monkeypatch):
    monkeypatch.setenv(ENV_DATA_DIR, str(fake_data_dir.root))
    assert_same(local.read_fashion_mnist(), fake_data_dir.fashion)


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (lambda p, w: w(p, np.zeros((3, 28, 28)), magic=0x801), "magic"),
        (lambda p, w: p.write_bytes(gzip.compress(gzip.decompress(p.read_bytes())[:-5])), "truncated"),
        (lambda p, w: p.write_bytes(p.read_bytes()[:40]), "gzip"),
        (lambda p, w: p.write_bytes(b"not gzip at all"), "gzip"),
        (lambda p, w: w(p, np.zeros((3, 28, 28))), "labels"),  # 3 images, 12 labels
        (lambda p, w: w(p, np.zeros((12, 28, 27))), r"expected \(28, 28\)"),
    ],
    ids=["magic", "short-payload", "truncated-gzip", "not-gzip", "count-mismatch", "image-shape"],
)
def test_fashion_mnist_corrupt_images_raise_value_error(fake_data_dir, write_idx, corrupt, match):
    path = fake_data_dir.root / "fashion_mnist" / "train-images-idx3-ubyte.gz"
    corrupt(path, write_idx)
    with pytest.raises(ValueError, match=match):
        local.read_fashion_mnist(fake_data_dir.root)


def test_fashion_mnist_bad_label_raises(fake_data_dir, write_idx):
    write_idx(fake_data_dir.root / "fashion_mnist" / "t10k-labels-idx1-ubyte.gz", [0, 1, 2, 3, 10])
    with pytest.raises(ValueError, match="label 10"):
        local.read_fashion_mnist(fake_data_dir.root)


def test_ecg5000_round_trip(fake_data_dir):
    assert_same(local.read_ecg5000(fake_data_dir.root), fake_data_dir.ecg)


@pytest.mark.parametrize(
    "text, match",
    [("1.0,2.0,1\n", "141 columns"), (",".join(["0.5"] * 140 + ["2"]) + "\n", "must be 0 or 1")],
)
def test_ecg5000_malformed_raises(fake_data_dir, text, match):
    (fake_data_dir.root / "ecg5000" / "ecg.csv").write_text(text)
    with pytest.raises(ValueError, match=match):
        local.read_ecg5000(fake_data_dir.root)


def test_list_adbench_sorted_by_number_then_name(fake_data_dir):
    assert local.list_adbench(fake_data_dir.root) == ["1_alpha", "4_magic.gamma", "12_Beta", "20news_0"]


@pytest.mark.parametrize(
    "name, full",
    [("1_alpha", "1_alpha"), ("alpha", "1_alpha"), ("ALPHA", "1_alpha"), ("beta", "12_Beta"),
     ("12_beta", "12_Beta"), ("Magic.Gamma", "4_magic.gamma"), ("20news_0", "20news_0")],
)
def test_read_adbench_accepts_full_and_bare_names(fake_data_dir, name, full):
    X, y = local.read_adbench(name, fake_data_dir.root)
    assert_same((X, y), fake_data_dir.adbench[full])


def test_read_adbench_unknown_name_lists_available(fake_data_dir):
    with pytest.raises(KeyError, match="'nope'.*available: 1_alpha, 4_magic.gamma, 12_Beta, 20news_0"):
        local.read_adbench("nope", fake_data_dir.root)


def test_read_adbench_ambiguous_bare_name(fake_data_dir):
    np.savez(fake_data_dir.root / "adbench_classical" / "30_alpha.npz", X=np.zeros((2, 1)), y=np.zeros(2))
    with pytest.raises(KeyError, match="ambiguous: 1_alpha, 30_alpha"):
        local.read_adbench("alpha", fake_data_dir.root)
    assert local.read_adbench("30_alpha", fake_data_dir.root)[0].shape == (2, 1)


def test_read_adbench_bad_labels(fake_data_dir):
    np.savez(fake_data_dir.root / "adbench_classical" / "2_bad.npz", X=np.zeros((2, 1)), y=np.array([0, 2]))
    with pytest.raises(ValueError, match="0 \\(normal\\) or 1"):
        local.read_adbench("bad", fake_data_dir.root)


# ---- absent files: fast, informative DatasetNotFoundError ----------------------------------

READERS = {
    "fashion_mnist": (local.read_fashion_mnist, "fashion_mnist/train-images-idx3-ubyte.gz"),
    "ecg5000": (local.read_ecg5000, "ecg5000/ecg.csv"),
    "list_adbench": (local.list_adbench, "adbench_classical/<n>_<name>.npz"),
    "read_adbench": (lambda data_dir=None: local.read_adbench("campaign", data_dir), "adbench_classical/"),
}


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("where", ["no-data-dir", "empty-data-dir", "missing-data-dir"])
def test_absent_files_fail_fast_naming_files(reader, where, tmp_path):
    read, expected_in_message = READERS[reader]
    data_dir = {"no-data-dir": None, "empty-data-dir": tmp_path, "missing-data-dir": tmp_path / "nope"}[where]
    start = time.perf_counter()
    with pytest.raises(DatasetNotFoundError) as info:
        read(data_dir)
    assert time.perf_counter() - start < 1.0
    message = str(info.value)
    if where == "missing-data-dir":
        assert "is not a directory" in message
    else:
        assert expected_in_message in message
        assert (ENV_DATA_DIR in message) if where == "no-data-dir" else (str(tmp_path) in message)


def test_missing_single_fashion_file_is_named(fake_data_dir):
    (fake_data_dir.root / "fashion_mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match="missing file.*t10k-labels-idx1-ubyte.gz"):
        local.read_fashion_mnist(fake_data_dir.root)


# ---- real data (MANIFEST.md numbers) --------------------------------------------------------


@pytest.mark.data
def test_real_fashion_mnist(shared_data_dir):
    data = local.read_fashion_mnist(shared_data_dir)
    assert data["x_train"].shape == (60000, 28, 28) and data["x_train"].dtype == np.uint8
    assert data["x_test"].shape == (10000, 28, 28) and data["x_test"].dtype == np.uint8
    assert data["y_train"].dtype == data["y_test"].dtype == np.int64
    np.testing.assert_array_equal(np.bincount(data["y_train"]), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(data["y_test"]), [1000] * 10)
    assert data["x_train"].min() == 0 and data["x_train"].max() == 255


@pytest.mark.data
def test_real_ecg5000(shared_data_dir):
    x, labels = local.read_ecg5000(shared_data_dir)
    assert x.shape == (4998, 140) and x.dtype == np.float64 and labels.dtype == np.int64
    assert int(labels.sum()) == 2919 and int((labels == 0).sum()) == 2079
    assert -7.1 < x.min() < -7.0 and 7.3 < x.max() < 7.5


@pytest.mark.data
def test_real_list_adbench(shared_data_dir):
    names = local.list_adbench(shared_data_dir)
    assert len(names) == 36
    assert names[:3] == ["1_ALOI", "4_breastw", "5_campaign"] and names[-1] == "47_yeast"
    assert "20news_3" in names
    # held-out evaluation sets must not be there
    assert not {"6_cardio", "38_thyroid", "29_Pima"} & set(names)


@pytest.mark.data
@pytest.mark.parametrize(
    "name, shape, anomalies",
    [("5_campaign", (41188, 62), 4640), ("campaign", (41188, 62), 4640), ("breastw", (683, 9), 239),
     ("1_ALOI", (49534, 27), 1508), ("20news_3", (615, 768), 30), ("magic.gamma", (19020, 10), 6688)],
)
def test_real_read_adbench(shared_data_dir, name, shape, anomalies):
    X, y = local.read_adbench(name, shared_data_dir)
    assert X.shape == shape and X.dtype == np.float64
    assert y.shape == shape[:1] and y.dtype == np.int64
    assert int(y.sum()) == anomalies
