"""Downloading the local-file datasets from their official sources (opt-in, never implicit).

Nothing here runs unless asked: ``load_split(..., download=True)``, the CLI's ``--download`` or
``JAXAD_DOWNLOAD=1``. Files go to ``cache_dir("data")`` (``$JAXAD_CACHE_DIR/data``, default
``~/.cache/jaxad/data``) in the data-dir layout of ``paths.py``, so later runs find them there
offline. Each file is streamed to a temporary file next to its target, checked against its
known checksum, and only then renamed into place: an interrupted or corrupt download never
leaves a file that looks complete.

Sources (relative path in the layout -> URL):

- ``fashion_mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`` ->
  ``FASHION_MNIST_BASE_URL + <file>`` (Zalando's official mirror; md5s from the official README);
- ``ecg5000/ecg.csv`` -> ``ECG5000_URL`` (the file of TensorFlow's autoencoder tutorial;
  sha256 of the copy described in the shared data MANIFEST);
- ``adbench_classical/<n>_<name>.npz`` -> ``ADBENCH_CLASSICAL_BASE_URL + <n>_<name>.npz`` for
  the 47 names in ``ADBENCH_CLASSICAL`` (ADBench's GitHub repository; sha256 where known).

The URLs are module attributes read at call time, so tests can point them at ``file://`` folders.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from jaxad.data.paths import DatasetNotFoundError, download_cache_dir

# Seconds for connecting and for any single read that stalls (urllib's socket timeout).
TIMEOUT = 20.0
# Files at least this big (or of unknown size) get a tqdm progress bar.
PROGRESS_MIN_BYTES = 1 << 20
_CHUNK = 1 << 16

# --------------------------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------------------------

FASHION_MNIST_BASE_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# md5s as published in zalandoresearch/fashion-mnist's README (also in shared/data/MANIFEST.md).
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}

ECG5000_URL = "http://storage.googleapis.com/download.tensorflow.org/data/ecg.csv"
ECG5000_SHA256 = "72ce7b040ca0c6ed36c3368e570c6ac4ddf20100476e47373c63b2395e012df1"

ADBENCH_CLASSICAL_BASE_URL = "https://github.com/Minqi824/ADBench/raw/main/adbench/datasets/Classical/"
# ADBench's 47 "Classical" sets, as named in its repository (<n>_<name>.npz).
ADBENCH_CLASSICAL = (
    "1_ALOI", "2_annthyroid", "3_backdoor", "4_breastw", "5_campaign", "6_cardio",
    "7_Cardiotocography", "8_celeba", "9_census", "10_cover", "11_donors", "12_fault", "13_fraud",
    "14_glass", "15_Hepatitis", "16_http", "17_InternetAds", "18_Ionosphere", "19_landsat",
    "20_letter", "21_Lymphography", "22_magic.gamma", "23_mammography", "24_mnist", "25_musk",
    "26_optdigits", "27_PageBlocks", "28_pendigits", "29_Pima", "30_satellite", "31_satimage-2",
    "32_shuttle", "33_skin", "34_smtp", "35_SpamBase", "36_speech", "37_Stamps", "38_thyroid",
    "39_vertebral", "40_vowels", "41_Waveform", "42_WBC", "43_WDBC", "44_Wilt", "45_wine",
    "46_WPBC", "47_yeast",
)
# sha256 of the files at Minqi824/ADBench@3dac8221 (shared/data/MANIFEST.md); the other 12 sets
# (held out of, or too big for, the shared folder) are not verified beyond being a zip file.
ADBENCH_CLASSICAL_SHA256 = {
    "1_ALOI": "792d0b5bd1147bfc9574a1974f157b39fbd4cbed8ecd04cf983fd554498ed477",
    "4_breastw": "4f37ce07dbc25ddad8178fdc6d664ab46d2d0000ee28c2787c3c7ff3c03ef9f6",
    "5_campaign": "74dd4d0072d6c6f1aabab63bc102f9633454f32bb936fa9bcfbd38f9f2386bcd",
    "7_Cardiotocography": "5ae84910430f05923e11b6f537243263977c9136949dabd891e3570aeec51e29",
    "8_celeba": "1cadfdea14cd8d240eca715a70c09c88af8621d086a7478c63f602d97adef0b5",
    "10_cover": "945a097c3542ae81a551bf1c06dcad78a755d94f84fcaf1d60687e42d1a656df",
    "11_donors": "5824ec854465f2763b4bfe3da1ae9f25ed5433b5c6e265d42e37da4f82a58679",
    "12_fault": "ec27301f9a4cf7c5d8b22c360cf37ddb043b7fb062465723dfd8b34e2771e5dd",
    "14_glass": "aa7a8db1d475ba01a10488af454bc15220a3d5951b010b03b7020567d8152cdc",
    "15_Hepatitis": "4a87a2f7d8013e5bfde63294fae61ec7a612322de72f338a7f9491749025ad98",
    "16_http": "9d98710091551587f4740cfc851a6b064fff6319a337c2dc77ee6da4bcc2e02c",
    "17_InternetAds": "bdd8ad5cf5bf2cb96cba53dde30d522d0f6a279083a8e2bc7efbac5981b04385",
    "19_landsat": "ba17e2158c07469597b89db49d3982c874c6b713ff6670721ddc88969da77987",
    "20_letter": "f986d3da80cf1fa2aea83a5ebe73b7d4800e0d4c01fdd1ae074b58d20f10d039",
    "21_Lymphography": "dad977b04f4ea65b78ccd0e9f76b45175bad605165b37e63f3cc177845e67037",
    "22_magic.gamma": "0be375984d7af9ea7a63b12206c240840d8b7daa3607021c5fb8756407dd86f1",
    "24_mnist": "be7706272325fdd3592c1be555ae1a82f916a2f8545f4f8cbaa548ab102cc44c",
    "25_musk": "2ed3f4392197b76a1e59116ff880c7720a4b026cf4842073a53b56fdea265017",
    "27_PageBlocks": "10a9b4d5bb5d3b9083caab4c4062f665610eada703c3d927bf7c34b1f2d0d223",
    "28_pendigits": "c4936b89dcdad59d303020e492f763a0f54170080d787c77497609acbb9c2d79",
    "30_satellite": "1f048f5686f1b8c16a227fdfa3c81a62cd9a92715714a6b24c69b1c5ad96b46e",
    "32_shuttle": "26900b0f6be45d9ddb7a402c9b2f956ceda42d23a8ca4cf4406b8bc1352823d1",
    "33_skin": "d02aa01ffc1b6bf2b8b1ac250c90e8a8eacd0cefc962940ed5cc4bf5deac9c95",
    "34_smtp": "d2569fc9bc12115419e3f5b37d19921e10e6c26e5ad1e61064cfb0fbc402dfdd",
    "35_SpamBase": "d0c46c7928e43f6496bcd06e09de0b70f6bc8143792dfa0a43f450263d254e9b",
    "37_Stamps": "99fe739447284f613fa54bf2dccdb51c5120175ce6260adec6dad77576c42509",
    "39_vertebral": "0816286f92b96fe6867664a41a031ac7228dcfbf1a5feefe50ca3883b2e9073d",
    "40_vowels": "4bfc4244d1c882773bbbc50d4a5db5e52276e53506e46b2d45e02d074cfcb1b6",
    "41_Waveform": "6c9d867337ad1a2f8372c1d27f4c032f0401237e2041b7c45f00de8d319ff30f",
    "42_WBC": "650f9dcb129248f67a291be0974f533ef259fcbde50fce5c8ad2a1cb2652d03b",
    "43_WDBC": "78d4606a1ab516f5b60b00c196497f3bbd6bd5e4548fd04cf5f2475209b34b85",
    "44_Wilt": "c70b72aa611ec87b20efb400943ef3ce4f8bf7aa58fcef825fbd28cc5cee3cc9",
    "45_wine": "d5ad8965d92cc57122fe1e6572bb301adbaf795b3e166d187ae00a704d8f6e20",
    "46_WPBC": "68a6d67242643855713bcdad07d89ecc472bd00000dccc17ba87916eb2693d19",
    "47_yeast": "bbb15c873d78a4f6a589f46d0f75814595e2282d2ae7ce7779c750f276c3770d",
}

_NUMBER_PREFIX = re.compile(r"^\d+_")


class DownloadError(DatasetNotFoundError):
    """A requested download failed (network, HTTP status, truncated transfer); names the URL."""


@dataclass(frozen=True)
class RemoteFile:
    """Where one file of the data-dir layout comes from, and how to check it."""

    relpath: str  # e.g. "ecg5000/ecg.csv"
    url: str
    algorithm: str | None = None  # "md5" / "sha256", or None when no checksum is known
    digest: str | None = None


def adbench_classical_name(name: str) -> str | None:
    """The numbered name of an ADBench classical set, or None if ``name`` is not one.

    Accepts the full name ("5_campaign") or the bare name ("campaign"), case-insensitively.
    """
    wanted = name.lower()
    for full in ADBENCH_CLASSICAL:
        if wanted in (full.lower(), _NUMBER_PREFIX.sub("", full).lower()):
            return full
    return None


def remote_file(relpath: str) -> RemoteFile:
    """The official source of ``relpath`` (a path in the data-dir layout).

    Raises:
        KeyError: there is no known download source for this file.
    """
    folder, _, filename = relpath.partition("/")
    if folder == "fashion_mnist" and filename in FASHION_MNIST_MD5:
        return RemoteFile(relpath, FASHION_MNIST_BASE_URL + filename, "md5", FASHION_MNIST_MD5[filename])
    if relpath == "ecg5000/ecg.csv":
        return RemoteFile(relpath, ECG5000_URL, "sha256", ECG5000_SHA256)
    stem = filename.removesuffix(".npz")
    if folder == "adbench_classical" and filename.endswith(".npz") and stem in ADBENCH_CLASSICAL:
        digest = ADBENCH_CLASSICAL_SHA256.get(stem)
        return RemoteFile(relpath, ADBENCH_CLASSICAL_BASE_URL + filename,
                          "sha256" if digest else None, digest)
    raise KeyError(f"no download source known for {relpath!r}")


def source_host(relpath: str) -> str:
    """The host ``relpath`` is downloaded from (for messages), e.g. "github.com"."""
    url = remote_file(relpath).url
    return urlsplit(url).netloc or url


# --------------------------------------------------------------------------------------------
# downloading
# --------------------------------------------------------------------------------------------


def fetch(relpaths: list[str], *, progress: bool = True) -> list[Path]:
    """Download the files ``relpaths`` (data-dir layout) into the download cache.

    Files already in the cache are kept (they were verified when written). Returns their
    absolute paths under ``cache_dir("data")``, in the order given.

    Raises:
        KeyError: a file has no known source.
        DownloadError: a download failed (the message names the URL).
        ValueError: a downloaded file fails its checksum or format check (nothing is kept).
    """
    remotes = [remote_file(rel) for rel in relpaths]  # all sources known before any download
    root = download_cache_dir(create=True)
    paths = []
    for remote in remotes:
        dest = root / remote.relpath
        if not dest.is_file():
            download_file(remote.url, dest, algorithm=remote.algorithm, digest=remote.digest,
                          progress=progress)
        paths.append(dest)
    return paths


def download_file(url: str, dest: str | os.PathLike, *, algorithm: str | None = None,
                  digest: str | None = None, timeout: float | None = None,
                  progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` atomically (temp file + rename), checking its checksum.

    The body is streamed to a temporary file in ``dest``'s folder while ``algorithm``'s hash
    is computed; ``dest`` appears only once the transfer is complete and the hash matches
    ``digest`` (when given). ``.npz`` files must also be zip archives (this catches HTML error
    pages and Git LFS pointers where no checksum is known).

    Raises:
        DownloadError: connection, HTTP or transfer failure; ``timeout`` (default ``TIMEOUT``)
            bounds the connect and each stalled read.
        ValueError: checksum mismatch or not a zip archive; the partial file is removed.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            actual = _stream(url, out, algorithm, TIMEOUT if timeout is None else timeout, progress,
                             dest.name)
        _verify(url, tmp, dest, algorithm, digest, actual)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's files are 0600; give the usual mode
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _stream(url: str, out, algorithm: str | None, timeout: float, progress: bool,
            label: str) -> str | None:
    """Copy ``url``'s body into the open file ``out``; return its hex digest (or None)."""
    from tqdm.auto import tqdm

    hasher = hashlib.new(algorithm) if algorithm else None
    received = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            show = progress and (total is None or total >= PROGRESS_MIN_BYTES)
            if progress:
                print(f"jaxad: downloading {url}", file=sys.stderr)
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                      disable=not show, leave=False) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    if hasher is not None:
                        hasher.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
        reason = err if isinstance(err, urllib.error.HTTPError) else getattr(err, "reason", None) or err
        raise DownloadError(
            f"could not download {url}: {reason} (timeout {timeout:g} s; check the network "
            "connection, or put the file in the data dir by hand)"
        ) from err
    if total is not None and received != total:
        raise DownloadError(f"could not download {url}: got {received} of {total} bytes")
    return hasher.hexdigest() if hasher is not None else None


def _verify(url: str, tmp: Path, dest: Path, algorithm: str | None, digest: str | None,
            actual: str | None) -> None:
    """Raise ValueError if the downloaded ``tmp`` fails its checksum or format check."""
    if digest is not None and actual != digest.lower():
        raise ValueError(
            f"{url}: {algorithm} of the download is {actual}, expected {digest}; the download is "
            f"corrupt or the file at the source has changed, so {dest} was not written"
        )
    if dest.suffix == ".npz" and not zipfile.is_zipfile(tmp):
        raise ValueError(f"{url}: the download is not an npz (zip) file, so {dest} was not written")
