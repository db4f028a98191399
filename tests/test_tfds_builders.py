"""tensorflow-datasets builders (jaxad.data.tfds_builders): array_record, no TensorFlow."""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jaxad.data import local, tfds_builders
from jaxad.data.paths import ENV_CACHE_DIR, ENV_DATA_DIR, DatasetNotFoundError
from jaxad.data.tfds_builders import load_with_tfds, prepare_with_tfds
from conftest import assert_same

needs_tfds = pytest.mark.skipif(
    not tfds_builders.tfds_available(), reason="tensorflow-datasets not installed"
)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """Caches in tmp_path; no data dir from the env; an empty tfds home (no catalog datasets)."""
    monkeypatch.delenv(ENV_DATA_DIR, raising=False)
    monkeypatch.setenv(ENV_CACHE_DIR, str(tmp_path / "cache"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds_home"))


def test_import_does_not_import_tfds():
    code = (
        "import sys, jaxad, jaxad.data.local, jaxad.data.tfds_builders as t; "
        "assert 'tensorflow_datasets' not in sys.modules, 'tfds imported eagerly'; "
        "assert 'tensorflow' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


@needs_tfds
def test_tfds_available():
    assert tfds_builders.tfds_available() is True


# ---- synthetic round trips ------------------------------------------------------------------


@needs_tfds
def test_fashion_mnist_round_trip(fake_data_dir):
    expected = local.read_fashion_mnist(fake_data_dir.root)
    assert_same(expected, fake_data_dir.fashion)
    assert_same(load_with_tfds("fashion_mnist", fake_data_dir.root), expected)


@needs_tfds
def test_ecg5000_round_trip_is_exact_float64(fake_data_dir):
    # float64 values with full precision: catches a float32 round trip (tfds' default encoding).
    assert_same(load_with_tfds("ecg5000", fake_data_dir.root), fake_data_dir.ecg)


@needs_tfds
@pytest.mark.parametrize("name, full", [("1_alpha", "1_alpha"), ("Beta", "12_Beta"),
                                        ("magic.gamma", "4_magic.gamma"), ("20news_0", "20news_0")])
def test_adbench_round_trip(fake_data_dir, name, full):
    result = load_with_tfds(f"adbench/{name}", fake_data_dir.root)
    assert_same(result, local.read_adbench(full, fake_data_dir.root))
    assert_same(result, fake_data_dir.adbench[full])


@needs_tfds
def test_env_data_dir_is_used(fake_data_dir, monkeypatch):
    monkeypatch.setenv(ENV_DATA_DIR, str(fake_data_dir.root))
    assert_same(load_with_tfds("ecg5000"), fake_data_dir.ecg)


@needs_tfds
def test_prepared_data_is_plain_tfds(fake_data_dir, tmp_path):
    """The prepared folder is array_record in the cache and reads with tfds.data_source alone."""
    import tensorflow_datasets as tfds

    tfds_name, tfds_dir = prepare_with_tfds("adbench/beta", fake_data_dir.root)
    assert tfds_name == "jaxad_adbench/12_Beta:1.0.0"
    assert Path(tfds_dir) == tmp_path / "cache" / "tfds"
    assert list((Path(tfds_dir) / "jaxad_adbench/12_Beta/1.0.0").glob("*.array_record-*"))
    source = tfds.data_source(tfds_name, data_dir=tfds_dir, download=False)["train"]
    X, y = fake_data_dir.adbench["12_Beta"]
    assert len(source) == len(X)
    example = source[3]
    np.testing.assert_array_equal(example["x"], X[3])
    assert example["label"] == y[3]
    if importlib.util.find_spec("tensorflow") is None:
        # Without TensorFlow installed, nothing here imported it. (The test extra installs it for
        # the hub embedder; tfds then imports it on its own, so the check only runs without it.)
        assert "tensorflow" not in sys.modules


@needs_tfds
def test_fast_decoder_matches_tfds_decoder(fake_data_dir, monkeypatch):
    decoded = []
    real_decode_fast = tfds_builders._decode_fast

    def spy(*args):
        decoded.append(real_decode_fast(*args))
        return decoded[-1]

    monkeypatch.setattr(tfds_builders, "_decode_fast", spy)
    fast = load_with_tfds("fashion_mnist", fake_data_dir.root)
    assert len(decoded) == 2 and all(chunk is not None for chunk in decoded)  # fast path used
    monkeypatch.setattr(tfds_builders, "_decode_fast", lambda *args: None)
    assert_same(load_with_tfds("fashion_mnist", fake_data_dir.root), fast)


@needs_tfds
def test_second_call_does_not_prepare_again(fake_data_dir, monkeypatch):
    tfds_name, tfds_dir = prepare_with_tfds("ecg5000", fake_data_dir.root)
    info = Path(tfds_dir) / "jaxad_ecg5000" / "1.0.0" / "dataset_info.json"
    mtime = info.stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("raw files were read again")

    monkeypatch.setattr(local, "read_ecg5000", fail)
    assert_same(load_with_tfds("ecg5000", fake_data_dir.root), fake_data_dir.ecg)
    assert info.stat().st_mtime_ns == mtime


@needs_tfds
def test_changed_source_file_is_prepared_again(fake_data_dir):
    assert_same(load_with_tfds("ecg5000", fake_data_dir.root), fake_data_dir.ecg)
    csv = fake_data_dir.root / "ecg5000" / "ecg.csv"
    csv.write_text(",".join(["0.25"] * 140 + ["0"]) + "\n")
    x, labels = load_with_tfds("ecg5000", fake_data_dir.root)
    assert x.shape == (1, 140) and np.all(x == 0.25) and labels.tolist() == [0]


# ---- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected_in_message",
    [("fashion_mnist", "fashion_mnist/train-images-idx3-ubyte.gz"), ("ecg5000", "ecg5000/ecg.csv"),
     ("adbench/campaign", "adbench_classical/")],
)
@pytest.mark.parametrize("where", ["no-data-dir", "empty-data-dir"])
def test_absent_files_fail_fast(name, expected_in_message, where, tmp_path):
    data_dir = None if where == "no-data-dir" else tmp_path / "empty"
    if data_dir is not None:
        data_dir.mkdir()
    start = time.perf_counter()
    with pytest.raises(DatasetNotFoundError) as info:
        load_with_tfds(name, data_dir)
    assert time.perf_counter() - start < 1.0
    assert expected_in_message in str(info.value)
    assert not (tmp_path / "cache" / "tfds").exists()  # nothing prepared, nothing written


def test_absent_fashion_mnist_mentions_tfds_catalog(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="array_record under .*tfds_home"):
        load_with_tfds("fashion_mnist", None)


def test_tfrecord_only_catalog_is_explained(tmp_path):
    version_dir = tmp_path / "tfds_home" / "fashion_mnist" / "3.0.1"
    version_dir.mkdir(parents=True)
    (version_dir / "dataset_info.json").write_text("{}")
    (version_dir / "fashion_mnist-train.tfrecord-00000-of-00001").write_bytes(b"")
    with pytest.raises(DatasetNotFoundError, match="not in array_record format"):
        load_with_tfds("fashion_mnist", None)


def test_missing_tfds_says_what_to_install(fake_data_dir, monkeypatch):
    monkeypatch.setattr(tfds_builders, "tfds_available", lambda: False)
    with pytest.raises(ImportError, match=r"pip install 'jaxad\[tfds\]'"):
        load_with_tfds("ecg5000", fake_data_dir.root)


def test_unknown_adbench_name_raises_key_error(fake_data_dir):
    with pytest.raises(KeyError, match="'nope'.*available: 1_alpha, 4_magic.gamma, 12_Beta, 20news_0"):
        load_with_tfds("adbench/nope", fake_data_dir.root)


@pytest.mark.parametrize("name", ["mnist", "adbench", "adbench/", "ecg5000/x", "", None])
def test_bad_name_raises_value_error(name):
    with pytest.raises(ValueError, match="name: expected one of fashion_mnist, ecg5000, adbench/<name>"):
        load_with_tfds(name)


# ---- tfds' own prepared fashion_mnist -------------------------------------------------------


def _write_catalog_fashion_mnist(home: Path, data: dict) -> None:
    """Prepare a stand-in for tfds' own ``fashion_mnist:3.0.1`` (PNG images (28, 28, 1))."""
    import tensorflow_datasets as tfds
    from PIL import Image

    class FashionMnist(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.core.Version("3.0.1")

        def _info(self):
            features = {"image": tfds.features.Image(shape=(28, 28, 1)),
                        "label": tfds.features.ClassLabel(num_classes=10)}
            # The real one is shuffled; keep order here so the test can compare exactly.
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features),
                                         disable_shuffling=True)

        def _split_generators(self, dl_manager):
            return {s: self._generate_examples(data[f"x_{s}"], data[f"y_{s}"]) for s in ("train", "test")}

        def _generate_examples(self, images, labels):
            for i, (image, label) in enumerate(zip(images, labels)):
                png = io.BytesIO()
                Image.fromarray(image).save(png, format="PNG")  # pre-encoded: no tf.image needed
                png.seek(0)
                yield i, {"image": png, "label": int(label)}

    builder = FashionMnist(data_dir=str(home), file_format="array_record")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))


@needs_tfds
def test_uses_prepared_tfds_fashion_mnist_when_local_files_absent(fake_data_dir, tmp_path):
    pytest.importorskip("PIL")
    _write_catalog_fashion_mnist(tmp_path / "tfds_home", fake_data_dir.fashion)
    assert prepare_with_tfds("fashion_mnist") == ("fashion_mnist:3.0.1", str(tmp_path / "tfds_home"))
    assert_same(load_with_tfds("fashion_mnist"), fake_data_dir.fashion)
    assert not (tmp_path / "cache" / "tfds").exists()  # nothing of ours was prepared


# ---- real data ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory):
    """One tfds cache for all real-data tests of this module (prepare each dataset once)."""
    return tmp_path_factory.mktemp("real_cache")


@pytest.mark.data
@needs_tfds
@pytest.mark.parametrize("name", ["ecg5000", "adbench/5_campaign", "adbench/20news_3", "fashion_mnist"])
def test_real_data_matches_plain_reader(shared_data_dir, real_cache, monkeypatch, name):
    monkeypatch.setenv(ENV_CACHE_DIR, str(real_cache))
    via_tfds = load_with_tfds(name, shared_data_dir)
    if name == "fashion_mnist":
        assert via_tfds["x_train"].shape == (60000, 28, 28)
        np.testing.assert_array_equal(np.bincount(via_tfds["y_train"]), [6000] * 10)
        plain = local.read_fashion_mnist(shared_data_dir)
    elif name == "ecg5000":
        assert via_tfds[0].shape == (4998, 140) and int(via_tfds[1].sum()) == 2919
        plain = local.read_ecg5000(shared_data_dir)
    else:
        plain = local.read_adbench(name.split("/")[1], shared_data_dir)
        if name.endswith("campaign"):
            assert via_tfds[0].shape == (41188, 62) and int(via_tfds[1].sum()) == 4640
    assert_same(via_tfds, plain)
    start = time.perf_counter()
    assert_same(load_with_tfds(name, shared_data_dir), plain)  # cached: no preparation
    assert time.perf_counter() - start < 10.0
