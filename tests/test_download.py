"""Opt-in downloads (jaxad.data.download) and the look-up order data dir -> cache -> download.

There is no network here, so the real download code runs against ``file://`` URLs: the module's
base URLs are pointed at a temp folder of small fake files whose checksums replace the real ones.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from jaxad.data import download, load_split, local, read_raw, tfds_builders
from jaxad.data.paths import ENV_CACHE_DIR, ENV_DATA_DIR, ENV_DOWNLOAD, DatasetNotFoundError
from conftest import assert_same, write_fake_ecg, write_fake_fashion

FASHION_FILES = tuple(download.FASHION_MNIST_MD5)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """Cache in tmp_path; no data dir or download switch from the env; an empty tfds home."""
    monkeypatch.setenv(ENV_CACHE_DIR, str(tmp_path / "cache"))
    monkeypatch.delenv(ENV_DATA_DIR, raising=False)
    monkeypatch.delenv(ENV_DOWNLOAD, raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds_home"))


@pytest.fixture
def calls(monkeypatch):
    """Count (and record the URLs of) the real ``download_file`` calls."""
    seen: list[str] = []
    real = download.download_file

    def counting(url, *args, **kwargs):
        seen.append(url)
        return real(url, *args, **kwargs)

    monkeypatch.setattr(download, "download_file", counting)
    return seen


@pytest.fixture
def remote(tmp_path, monkeypatch):
    """A fake "official source": small files under tmp_path/remote, served as file:// URLs.

    The module's URLs and checksums point at them. Returns the expected arrays.
    """
    rng = np.random.default_rng(1)
    base = tmp_path / "remote"
    fashion = write_fake_fashion(base / "fashion", rng, n_train=6, n_test=4)
    ecg_x, ecg_y = write_fake_ecg(base / "tf" / "ecg.csv", rng, [1, 0, 1, 1, 0])
    (base / "adbench").mkdir()
    campaign = (rng.normal(size=(9, 3)), (np.arange(9) % 3 == 0).astype(np.int64))
    np.savez(base / "adbench" / "5_campaign.npz", X=campaign[0], y=campaign[1])
    np.savez(base / "adbench" / "6_cardio.npz", X=campaign[0][:4], y=campaign[1][:4])  # no checksum

    def digest(path: Path, algorithm: str) -> str:
        return hashlib.new(algorithm, path.read_bytes()).hexdigest()

    monkeypatch.setattr(download, "FASHION_MNIST_BASE_URL", (base / "fashion").as_uri() + "/")
    monkeypatch.setattr(download, "FASHION_MNIST_MD5",
                        {f: digest(base / "fashion" / f, "md5") for f in FASHION_FILES})
    monkeypatch.setattr(download, "ECG5000_URL", (base / "tf" / "ecg.csv").as_uri())
    monkeypatch.setattr(download, "ECG5000_SHA256", digest(base / "tf" / "ecg.csv", "sha256"))
    monkeypatch.setattr(download, "ADBENCH_CLASSICAL_BASE_URL", (base / "adbench").as_uri() + "/")
    monkeypatch.setattr(download, "ADBENCH_CLASSICAL_SHA256",
                        {"5_campaign": digest(base / "adbench" / "5_campaign.npz", "sha256")})
    return SimpleNamespace(base=base, cache=tmp_path / "cache" / "data", fashion=fashion,
                           ecg=(ecg_x, ecg_y), campaign=campaign)


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# ---- the source table ------------------------------------------------------------------------


def test_adbench_classical_table_is_complete():
    numbers = [int(name.split("_", 1)[0]) for name in download.ADBENCH_CLASSICAL]
    assert numbers == list(range(1, 48))
    # held out of the shared folder, and too big for it: still downloadable
    assert {"6_cardio", "38_thyroid", "29_Pima", "3_backdoor", "13_fraud"} <= set(download.ADBENCH_CLASSICAL)
    assert set(download.ADBENCH_CLASSICAL_SHA256) <= set(download.ADBENCH_CLASSICAL)


def test_official_urls():
    assert download.remote_file("fashion_mnist/t10k-labels-idx1-ubyte.gz") == download.RemoteFile(
        "fashion_mnist/t10k-labels-idx1-ubyte.gz",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-labels-idx1-ubyte.gz",
        "md5", "bb300cfdad3c16e7a12a480ee83cd310")
    assert download.remote_file("ecg5000/ecg.csv").url == (
        "http://storage.googleapis.com/download.tensorflow.org/data/ecg.csv")
    campaign = download.remote_file("adbench_classical/5_campaign.npz")
    assert campaign.url == "https://github.com/Minqi824/ADBench/raw/main/adbench/datasets/Classical/5_campaign.npz"
    assert campaign.algorithm == "sha256" and campaign.digest.startswith("74dd4d00")
    assert download.remote_file("adbench_classical/6_cardio.npz").digest is None
    with pytest.raises(KeyError, match="no download source"):
        download.remote_file("adbench_nlp_by_bert/20news_3.npz")


@pytest.mark.parametrize("name, full", [("campaign", "5_campaign"), ("5_campaign", "5_campaign"),
                                        ("CAMPAIGN", "5_campaign"), ("satimage-2", "31_satimage-2"),
                                        ("magic.gamma", "22_magic.gamma"), ("wine", "45_wine"),
                                        ("nope", None), ("20news_3", None)])
def test_adbench_classical_name(name, full):
    assert download.adbench_classical_name(name) == full


# ---- downloading into the cache ------------------------------------------------------------


def test_fashion_mnist_downloads_into_cache_layout(remote, calls):
    assert_same(local.read_fashion_mnist(download=True), remote.fashion)
    assert _files_under(remote.cache) == sorted(f"fashion_mnist/{f}" for f in FASHION_FILES)
    assert len(calls) == 4 and all(url.startswith("file://") for url in calls)


def test_ecg5000_through_load_split(remote, calls):
    split = load_split("ecg5000", source="files", download=True, test_size=0.4)
    assert split.x_train.shape[1:] == (140,) and len(split.x_test) == 2  # 40% of the 5 rows
    assert _files_under(remote.cache) == ["ecg5000/ecg.csv"]
    assert len(calls) == 1


def test_second_load_uses_cache_without_downloading(remote, calls):
    local.read_ecg5000(download=True)
    assert len(calls) == 1
    assert_same(local.read_ecg5000(download=True), remote.ecg)  # already there: no download
    assert_same(local.read_ecg5000(), remote.ecg)  # download=False finds the cache too
    assert_same(read_raw("ecg5000", source="files"), remote.ecg)
    assert len(calls) == 1


def test_env_switch_is_download_true(remote, calls, monkeypatch):
    monkeypatch.setenv(ENV_DOWNLOAD, "1")
    assert_same(local.read_ecg5000(), remote.ecg)
    assert len(calls) == 1


def test_partial_cache_downloads_only_missing_files(remote, calls):
    local.read_fashion_mnist(download=True)
    (remote.cache / "fashion_mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    assert_same(local.read_fashion_mnist(download=True), remote.fashion)
    assert len(calls) == 5 and calls[-1].endswith("/t10k-images-idx3-ubyte.gz")


def test_data_dir_wins_over_cache(remote, calls, fake_data_dir):
    local.read_ecg5000(download=True)
    local.read_fashion_mnist(download=True)
    assert len(calls) == 5
    assert_same(local.read_ecg5000(fake_data_dir.root, download=True), fake_data_dir.ecg)
    assert_same(local.read_fashion_mnist(fake_data_dir.root), fake_data_dir.fashion)
    assert local.dataset_root("ecg5000", fake_data_dir.root) == fake_data_dir.root
    assert len(calls) == 5


def test_incomplete_data_dir_falls_back_to_cache(remote, calls, fake_data_dir):
    local.read_fashion_mnist(download=True)
    (fake_data_dir.root / "fashion_mnist" / "train-images-idx3-ubyte.gz").unlink()
    assert_same(local.read_fashion_mnist(fake_data_dir.root), remote.fashion)  # all four from the cache
    assert local.dataset_root("fashion_mnist", fake_data_dir.root) == remote.cache


# ---- checksums and failures: nothing is left behind -------------------------------------------


def test_corrupt_download_raises_and_leaves_nothing(remote, calls, monkeypatch):
    monkeypatch.setattr(download, "ECG5000_SHA256", "0" * 64)
    with pytest.raises(ValueError, match=r"ecg\.csv: sha256 of the download is .*expected 0000"):
        local.read_ecg5000(download=True)
    assert _files_under(remote.cache) == []  # neither ecg.csv nor a temp file


def test_corrupt_fashion_file_fails_md5(remote, calls):
    path = remote.base / "fashion" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match="md5"):
        local.read_fashion_mnist(download=True)
    assert "fashion_mnist/train-labels-idx1-ubyte.gz" not in _files_under(remote.cache)


def test_unreachable_source_names_url(remote, calls, monkeypatch):
    missing = (remote.base / "elsewhere" / "ecg.csv").as_uri()
    monkeypatch.setattr(download, "ECG5000_URL", missing)
    with pytest.raises(download.DownloadError, match=f"could not download {missing}"):
        local.read_ecg5000(download=True)
    assert _files_under(remote.cache) == []


def test_npz_without_checksum_must_be_a_zip(remote, calls):
    (remote.base / "adbench" / "6_cardio.npz").write_text("<html>Not Found</html>")
    with pytest.raises(ValueError, match="not an npz"):
        local.read_adbench("cardio", download=True)
    assert _files_under(remote.cache) == []


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture
def http_remote(remote, monkeypatch):
    """The fake source served over real HTTP on localhost (no internet needed)."""
    handler = functools.partial(_QuietHandler, directory=str(remote.base))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    monkeypatch.setattr(download, "ECG5000_URL", url + "tf/ecg.csv")
    monkeypatch.setattr(download, "ADBENCH_CLASSICAL_BASE_URL", url + "adbench/")
    yield remote
    server.shutdown()
    server.server_close()
    thread.join()


def test_http_download_and_http_error(http_remote, calls):
    assert_same(local.read_ecg5000(download=True), http_remote.ecg)
    assert calls[0].startswith("http://127.0.0.1:")
    url = r"http://127\.0\.0\.1:\d+/adbench/13_fraud\.npz"
    with pytest.raises(download.DownloadError, match=f"could not download {url}: HTTP Error 404"):
        local.read_adbench("fraud", download=True)
    assert _files_under(http_remote.cache) == ["ecg5000/ecg.csv"]


# ---- without download: fail fast, say how to get the files ------------------------------------


@pytest.mark.parametrize("name, host", [
    ("fashion_mnist", "fashion-mnist.s3-website.eu-central-1.amazonaws.com"),
    ("ecg5000", "storage.googleapis.com"),
    ("adbench/campaign", "github.com"),
])
@pytest.mark.parametrize("source", ["files", "auto"])
def test_no_download_fails_fast_with_instructions(name, host, source, tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(download, "download_file", no_network)
    start = time.perf_counter()
    with pytest.raises(DatasetNotFoundError) as info:
        load_split(name, data_dir=tmp_path, source=source)
    assert time.perf_counter() - start < 1.0
    message = str(info.value)
    assert str(tmp_path) in message  # which files to put where, as before
    assert "--download" in message and "download=True" in message and ENV_DOWNLOAD in message
    assert host in message and str(tmp_path / "cache" / "data") in message
    assert not (tmp_path / "cache" / "data").exists()  # a look-up writes nothing


# ---- ADBench names ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["campaign", "Campaign", "5_campaign"])
def test_bare_adbench_name_downloads_numbered_file(remote, calls, name):
    expected_path = remote.cache / "adbench_classical" / "5_campaign.npz"
    assert local.adbench_file(name, download=True) == ("5_campaign", expected_path)
    assert calls == [download.ADBENCH_CLASSICAL_BASE_URL + "5_campaign.npz"]
    assert_same(local.read_adbench(name), remote.campaign)  # now from the cache, no download
    assert local.list_adbench() == ["5_campaign"]
    assert len(calls) == 1


def test_adbench_through_load_split(remote, calls):
    split = load_split("adbench/campaign", source="files", download=True, test_size=0.34)
    assert split.x_train.shape[1] == 3 and len(split.x_train) + len(split.x_test) == 9


def test_unknown_adbench_name_raises_key_error(remote, calls):
    with pytest.raises(KeyError, match="'nope' is not an ADBench set.*can fetch ADBench's classical sets: 1_ALOI"):
        local.read_adbench("nope", download=True)
    assert calls == []


def test_cache_and_data_dir_adbench_sets_are_both_listed(remote, calls, fake_data_dir):
    local.read_adbench("campaign", download=True)
    assert local.list_adbench(fake_data_dir.root) == ["1_alpha", "4_magic.gamma", "5_campaign", "12_Beta",
                                                      "20news_0"]
    assert_same(local.read_adbench("campaign", fake_data_dir.root), remote.campaign)
    assert len(calls) == 1


# ---- the tfds path uses the same look-up -----------------------------------------------------


needs_tfds = pytest.mark.skipif(not tfds_builders.tfds_available(), reason="tensorflow-datasets not installed")


@needs_tfds
@pytest.mark.parametrize("name", ["ecg5000", "adbench/campaign", "fashion_mnist"])
def test_tfds_path_downloads_then_reads_cache(remote, calls, name):
    expected = {"ecg5000": remote.ecg, "adbench/campaign": remote.campaign, "fashion_mnist": remote.fashion}[name]
    assert_same(read_raw(name, source="tfds", download=True), expected)
    n = len(calls)
    assert n >= 1
    assert_same(read_raw(name, source="tfds"), expected)  # from the cache: nothing downloaded again
    assert len(calls) == n


# ---- the CLI flag ----------------------------------------------------------------------------


def test_cli_download_flag_reaches_load_split(monkeypatch, capsys):
    from experiments import run

    seen = {}

    def fake_load_split(name, **kwargs):
        seen.update(kwargs, name=name)
        raise KeyError("stop here")

    monkeypatch.setattr(run, "load_split", fake_load_split)
    assert run.main(["ae", "ecg5000", "--download", "--seeds", "1"]) == 2
    assert seen["name"] == "ecg5000" and seen["download"] is True
    assert run.main(["ae", "ecg5000", "--seeds", "1"]) == 2
    assert seen["download"] is False
    assert "stop here" in capsys.readouterr().err


# ---- the checksum tables against the real files ----------------------------------------------


@pytest.mark.data
def test_checksums_match_shared_data(shared_data_dir):
    """Every known checksum equals that of the shared copy (where the copy exists)."""
    def digest(relpath: str, algorithm: str) -> str:
        return hashlib.new(algorithm, (shared_data_dir / relpath).read_bytes()).hexdigest()

    checked = 0
    relpaths = [f"fashion_mnist/{f}" for f in FASHION_FILES] + ["ecg5000/ecg.csv"] + [
        f"adbench_classical/{n}.npz" for n in download.ADBENCH_CLASSICAL_SHA256]
    for rel in relpaths:
        remote = download.remote_file(rel)
        if (shared_data_dir / rel).is_file():
            assert digest(rel, remote.algorithm) == remote.digest, rel
            checked += 1
    assert checked == len(relpaths)
