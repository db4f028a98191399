"""Plain numpy readers of the local raw files (no tensorflow-datasets, no TensorFlow).

Each reader takes an optional ``data_dir`` (else ``$JAXAD_DATA_DIR``, see ``paths.py``) and a
``download`` flag, and finds its files *before* reading anything, in this order (``paths.locate_files``):
the data dir if it holds them; else the download cache ``cache_dir("data")`` if an earlier
download put them there; else, only with ``download=True`` (or ``JAXAD_DOWNLOAD=1``), a download
from the official source into that cache (``download.py``). Otherwise an absent dataset fails at
once with a ``DatasetNotFoundError`` that names which files to put where and that ``--download``
fetches them. The ``*_files`` helpers do only this look-up and are shared with ``tfds_builders.py``;
``dataset_root`` says which folder won.

Layout under the data dir::

    fashion_mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz   (gzipped IDX, big-endian)
    ecg5000/ecg.csv                                                 (no header, 141 columns)
    adbench_classical/<n>_<name>.npz, adbench_nlp_by_bert/<name>.npz (keys X, y)
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from pathlib import Path

import numpy as np

from jaxad.data import download as dl
from jaxad.data.paths import (DatasetNotFoundError, download_cache_dir, download_hint, locate_files,
                              not_found_message, resolve_data_dir)

PathLike = str | os.PathLike


def _locate(dataset: str, data_dir: PathLike | None, relpaths: list[str], download: bool) -> list[Path]:
    """``paths.locate_files`` with the files' official source (``download.fetch``)."""
    return locate_files(dataset, data_dir, relpaths, download=download, fetch=dl.fetch,
                        source_host=dl.source_host(relpaths[0]))


# --------------------------------------------------------------------------------------------
# Fashion-MNIST
# --------------------------------------------------------------------------------------------

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
FASHION_MNIST_IMAGE_SHAPE = (28, 28)

# split -> (images file, labels file), relative to the data dir.
FASHION_MNIST_RELPATHS = {
    "train": ("fashion_mnist/train-images-idx3-ubyte.gz", "fashion_mnist/train-labels-idx1-ubyte.gz"),
    "test": ("fashion_mnist/t10k-images-idx3-ubyte.gz", "fashion_mnist/t10k-labels-idx1-ubyte.gz"),
}

# IDX magic: two zero bytes, a type code (0x08 = unsigned byte) and the number of dimensions.
_IDX_MAGIC_UINT8 = {1: 0x00000801, 3: 0x00000803}


def fashion_mnist_files(data_dir: PathLike | None = None,
                        download: bool = False) -> dict[str, tuple[Path, Path]]:
    """``{"train": (images, labels), "test": (images, labels)}`` absolute paths.

    All four from the data dir, else all four from the download cache, else downloaded (only if
    ``download``) from ``download.FASHION_MNIST_BASE_URL``; else DatasetNotFoundError.
    """
    relpaths = [rel for pair in FASHION_MNIST_RELPATHS.values() for rel in pair]
    paths = iter(_locate("fashion_mnist", data_dir, relpaths, download))
    return {split: (next(paths), next(paths)) for split in FASHION_MNIST_RELPATHS}


def read_idx_gz(path: PathLike, ndim: int) -> np.ndarray:
    """Read a gzipped IDX file of unsigned bytes with ``ndim`` dimensions.

    IDX layout: a big-endian int32 magic ``0x0000080<ndim>``, then ``ndim`` big-endian int32
    sizes, then ``prod(sizes)`` uint8 values in C order.

    Returns:
        uint8 array of the shape given in the header.

    Raises:
        ValueError: the file is not valid gzip, has the wrong magic number, or its payload length
            disagrees with the header (e.g. a truncated download).
    """
    path = Path(path)
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; truncation -> EOFError
        raise ValueError(f"{path}: not a readable gzip file ({e})") from e
    header_len = 4 * (1 + ndim)
    if len(raw) < header_len:
        raise ValueError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != _IDX_MAGIC_UINT8[ndim]:
        raise ValueError(
            f"{path}: IDX magic number is {magic:#010x}, expected {_IDX_MAGIC_UINT8[ndim]:#010x} "
            f"(uint8, {ndim} dimension(s)); the file is corrupt or not this kind of IDX file"
        )
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    expected = int(np.prod(shape))
    if len(raw) - header_len != expected:
        raise ValueError(
            f"{path}: header says shape {shape} ({expected} bytes) but the payload has "
            f"{len(raw) - header_len} bytes; the file is corrupt or truncated"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(shape)


def _read_fashion_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One split: images uint8 (n, 28, 28) and labels int64 (n,), cross-checked."""
    images = read_idx_gz(images_path, ndim=3)
    labels = read_idx_gz(labels_path, ndim=1)
    if images.shape[1:] != FASHION_MNIST_IMAGE_SHAPE:
        raise ValueError(
            f"{images_path}: images are {images.shape[1:]}, expected {FASHION_MNIST_IMAGE_SHAPE}"
        )
    if len(images) != len(labels):
        raise ValueError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise ValueError(f"{labels_path}: label {labels.max()} outside 0..{len(FASHION_MNIST_CLASSES) - 1}")
    # frombuffer views are read-only; copy so callers get ordinary writable arrays.
    return images.copy(), labels.astype(np.int64)


def read_fashion_mnist(data_dir: PathLike | None = None, download: bool = False) -> dict[str, np.ndarray]:
    """Fashion-MNIST from the four gzipped IDX files under ``<data_dir>/fashion_mnist/``.

    (Or the download cache; ``download=True`` fetches them there from Zalando's mirror if absent.)

    Source files: ``{train,t10k}-images-idx3-ubyte.gz`` (IDX3, magic 0x803, uint8 (n, 28, 28))
    and ``{train,t10k}-labels-idx1-ubyte.gz`` (IDX1, magic 0x801, uint8 (n,), classes 0..9,
    names in ``FASHION_MNIST_CLASSES``).

    Returns:
        ``{"x_train": uint8 (60000, 28, 28), "y_train": int64 (60000,),
        "x_test": uint8 (10000, 28, 28), "y_test": int64 (10000,)}`` in file order.

    Raises:
        DatasetNotFoundError: a file is missing (raised before anything is read).
        DownloadError: ``download`` was asked and failed.
        ValueError: a file is corrupt (bad gzip, magic number, size or label; or a bad checksum
            of a download).
    """
    files = fashion_mnist_files(data_dir, download)
    out: dict[str, np.ndarray] = {}
    for split, (images_path, labels_path) in files.items():
        out[f"x_{split}"], out[f"y_{split}"] = _read_fashion_split(images_path, labels_path)
    return out


# --------------------------------------------------------------------------------------------
# ECG5000
# --------------------------------------------------------------------------------------------

ECG5000_RELPATH = "ecg5000/ecg.csv"
ECG5000_LENGTH = 140  # samples per heartbeat; column 140 is the label


def ecg5000_file(data_dir: PathLike | None = None, download: bool = False) -> Path:
    """Absolute path of ``ecg5000/ecg.csv`` in the data dir, else the download cache, else
    downloaded (only if ``download``) from ``download.ECG5000_URL``; else DatasetNotFoundError."""
    return _locate("ecg5000", data_dir, [ECG5000_RELPATH], download)[0]


def read_ecg5000(data_dir: PathLike | None = None, download: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """ECG5000 heartbeats from ``<data_dir>/ecg5000/ecg.csv``.

    (Or the download cache; ``download=True`` fetches TensorFlow's tutorial file there if absent.)

    Source layout: no header, comma-separated, one beat per row, 141 columns: 140 float samples
    then the label (1.0 = normal, 0.0 = abnormal). The real file has 4998 rows (2919 normal).

    Returns:
        ``(x, labels)``: x float64 (4998, 140); labels int64 (4998,), 1 = normal, 0 = abnormal
        (the file's own convention, *not* the 1 = anomaly convention of ADBench).

    Raises:
        DatasetNotFoundError: the file is missing (DownloadError: ``download`` failed).
        ValueError: wrong column count, NaNs, or labels other than 0/1; bad download checksum.
    """
    path = ecg5000_file(data_dir, download)
    # numpy >= 2's C loadtxt is fast (~0.1 s here) and parses floats exactly (round-trip).
    table = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    if table.ndim != 2 or table.shape[1] != ECG5000_LENGTH + 1:
        raise ValueError(f"{path}: expected {ECG5000_LENGTH + 1} columns, got shape {table.shape}")
    if np.isnan(table).any():
        raise ValueError(f"{path}: contains NaN / empty fields")
    labels = table[:, ECG5000_LENGTH]
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError(f"{path}: column {ECG5000_LENGTH} must be 0 or 1, got {np.unique(labels)}")
    return np.ascontiguousarray(table[:, :ECG5000_LENGTH]), labels.astype(np.int64)


# --------------------------------------------------------------------------------------------
# ADBench
# --------------------------------------------------------------------------------------------

ADBENCH_DIRS = ("adbench_classical", "adbench_nlp_by_bert")
_LEADING_NUMBER = re.compile(r"^(\d+)")
_NUMBER_PREFIX = re.compile(r"^\d+_")
_ADBENCH_HINT = [f"{d}/<n>_<name>.npz" for d in ADBENCH_DIRS]


def _adbench_sort_key(name: str) -> tuple[float, str]:
    """Sort by the leading number ("5_campaign" -> 5), then by name; unnumbered names last."""
    match = _LEADING_NUMBER.match(name)
    return (int(match.group(1)) if match else float("inf"), name)


def _adbench_index(root: Path | None) -> dict[str, Path]:
    """``{full name: absolute path}`` of the ADBench npz files under ``root``, sorted; {} if none."""
    if root is None:
        return {}
    index = {
        p.stem: p
        for d in ADBENCH_DIRS if (root / d).is_dir()
        for p in (root / d).glob("*.npz") if p.is_file()
    }
    return dict(sorted(index.items(), key=lambda kv: _adbench_sort_key(kv[0])))


def _adbench_indexes(data_dir: PathLike | None) -> list[dict[str, Path]]:
    """The ADBench indexes of the data dir and of the download cache, in look-up order."""
    return [_adbench_index(resolve_data_dir(data_dir)), _adbench_index(download_cache_dir())]


def _match_adbench(name: str, index: dict[str, Path]) -> str | None:
    """The full name in ``index`` that ``name`` means (exact, else case-insensitive full or bare
    name), or None. Raises KeyError if several match."""
    if name in index:
        return name
    wanted = name.lower()
    matches = [n for n in index if wanted in (n.lower(), _NUMBER_PREFIX.sub("", n).lower())]
    if len(matches) > 1:
        raise KeyError(f"name {name!r} is ambiguous: {', '.join(matches)}; available: {', '.join(index)}")
    return matches[0] if matches else None


def list_adbench(data_dir: PathLike | None = None) -> list[str]:
    """Names of the ADBench sets present, e.g. ``["1_ALOI", "4_breastw", ..., "20news_3", ...]``.

    Scans ``adbench_classical/*.npz`` and ``adbench_nlp_by_bert/*.npz`` of the data dir and of the
    download cache; sorted by the leading number, then by name. (``download.ADBENCH_CLASSICAL``
    lists the classical sets that can be downloaded.) Raises DatasetNotFoundError when there is
    no npz file in either.
    """
    names = {name for index in _adbench_indexes(data_dir) for name in index}
    if not names:
        root = resolve_data_dir(data_dir)
        where = not_found_message("adbench", root, _ADBENCH_HINT) if root is None else (
            f"dataset 'adbench': no .npz files under {root}; put them there as " + ", ".join(_ADBENCH_HINT))
        raise DatasetNotFoundError(where + download_hint(dl.source_host("adbench_classical/5_campaign.npz")))
    return sorted(names, key=_adbench_sort_key)


def _unknown_adbench(name: str, indexes: list[dict[str, Path]]) -> KeyError:
    """The KeyError for a name that is neither present nor one of ADBench's classical sets."""
    present = sorted({n for index in indexes for n in index}, key=_adbench_sort_key)
    return KeyError(
        f"name {name!r} is not an ADBench set here; available: {', '.join(present) or '(none)'}; "
        f"--download can fetch ADBench's classical sets: {', '.join(dl.ADBENCH_CLASSICAL)}; "
        "other ADBench sets go in the data dir by hand, as adbench_nlp_by_bert/<name>.npz"
    )


def adbench_file(name: str, data_dir: PathLike | None = None, download: bool = False) -> tuple[str, Path]:
    """Resolve ``name`` to ``(full name, absolute path)``; no data is read.

    ``name`` is a full name ("5_campaign") or, case-insensitively, the full or bare name
    ("campaign", "Campaign", "5_CAMPAIGN"). It is matched against the npz files of the data dir,
    then of the download cache; failing that, against ADBench's 47 classical sets
    (``download.ADBENCH_CLASSICAL``), which ``download=True`` fetches into the cache as
    ``adbench_classical/<n>_<name>.npz``.

    Raises:
        DatasetNotFoundError: a classical set that is absent and not to be downloaded.
        DownloadError: ``download`` was asked and failed.
        KeyError: no set (or more than one) matches; the message lists the available names.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected a non-empty str like '5_campaign' or 'campaign', got {name!r}")
    indexes = _adbench_indexes(data_dir)
    for index in indexes:
        full = _match_adbench(name, index)
        if full is not None:
            return full, index[full]
    full = dl.adbench_classical_name(name)
    if full is None:
        raise _unknown_adbench(name, indexes)
    return full, _locate(f"adbench/{full}", data_dir, [f"adbench_classical/{full}.npz"], download)[0]


def read_adbench(name: str, data_dir: PathLike | None = None,
                 download: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One ADBench set from ``adbench_classical/<n>_<name>.npz`` or ``adbench_nlp_by_bert/<name>.npz``.

    Looked up in the data dir, then the download cache; ``download=True`` fetches a classical set
    from ADBench's GitHub repository if it is in neither (see ``adbench_file``).

    Source layout: a plain npz (no pickles) with ``X`` (n, d) of any numeric dtype and ``y`` (n,)
    with 0 = normal, 1 = anomaly (int32 or int64 in the files).

    Args:
        name: full name ("5_campaign") or bare name, case-insensitive ("campaign").

    Returns:
        ``(X, y)``: X float64 (n, d), y int64 (n,), 1 = anomaly. E.g. 5_campaign: (41188, 62).

    Raises:
        DatasetNotFoundError: absent and not downloaded (DownloadError: the download failed).
        KeyError: unknown name (the message lists the available ones).
        ValueError: the npz lacks X/y or they have the wrong shapes or labels.
    """
    _, path = adbench_file(name, data_dir, download)
    with np.load(path, allow_pickle=False) as npz:
        missing = {"X", "y"} - set(npz.files)
        if missing:
            raise ValueError(f"{path}: missing key(s) {sorted(missing)}; has {npz.files}")
        X, y = npz["X"], npz["y"]
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"{path}: expected X (n, d) and y (n,), got {X.shape} and {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{path}: y must be 0 (normal) or 1 (anomaly), got {np.unique(y)}")
    return X.astype(np.float64), y.astype(np.int64)


# --------------------------------------------------------------------------------------------
# any local-file dataset
# --------------------------------------------------------------------------------------------


def dataset_root(name: str, data_dir: PathLike | None = None, download: bool = False) -> Path:
    """The folder whose layout holds ``name``'s files: the data dir or the download cache.

    ``name`` is "fashion_mnist", "ecg5000" or "adbench/<name>". Same look-up (and download, if
    asked) as the readers; nothing is read. Used to point the tfds builders at the right folder.
    """
    if name == "fashion_mnist":
        path = fashion_mnist_files(data_dir, download)["train"][0]
    elif name == "ecg5000":
        path = ecg5000_file(data_dir, download)
    elif isinstance(name, str) and name.startswith("adbench/") and len(name) > len("adbench/"):
        path = adbench_file(name.split("/", 1)[1], data_dir, download)[1]
    else:
        raise ValueError(f"name: expected fashion_mnist, ecg5000 or adbench/<name>, got {name!r}")
    return path.parent.parent  # every file lies at <root>/<dataset folder>/<file>
