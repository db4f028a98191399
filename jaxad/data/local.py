"""Plain numpy readers of the local raw files (no tensorflow-datasets, no TensorFlow).

Each reader takes an optional ``data_dir`` (else ``$JAXAD_DATA_DIR``, see ``paths.py``) and checks
that its files exist *before* reading anything, so an absent dataset fails at once with a
``DatasetNotFoundError`` that names which files to put where. The ``*_files`` helpers do only that
check and are shared with ``tfds_builders.py``.

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

from jaxad.data.paths import DatasetNotFoundError, require_files, resolve_data_dir

PathLike = str | os.PathLike

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


def fashion_mnist_files(data_dir: PathLike | None = None) -> dict[str, tuple[Path, Path]]:
    """``{"train": (images, labels), "test": (images, labels)}`` absolute paths; raise if absent."""
    relpaths = [rel for pair in FASHION_MNIST_RELPATHS.values() for rel in pair]
    paths = iter(require_files("fashion_mnist", data_dir, relpaths))
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


def read_fashion_mnist(data_dir: PathLike | None = None) -> dict[str, np.ndarray]:
    """Fashion-MNIST from the four gzipped IDX files under ``<data_dir>/fashion_mnist/``.

    Source files: ``{train,t10k}-images-idx3-ubyte.gz`` (IDX3, magic 0x803, uint8 (n, 28, 28))
    and ``{train,t10k}-labels-idx1-ubyte.gz`` (IDX1, magic 0x801, uint8 (n,), classes 0..9,
    names in ``FASHION_MNIST_CLASSES``).

    Returns:
        ``{"x_train": uint8 (60000, 28, 28), "y_train": int64 (60000,),
        "x_test": uint8 (10000, 28, 28), "y_test": int64 (10000,)}`` in file order.

    Raises:
        DatasetNotFoundError: a file is missing (raised before anything is read).
        ValueError: a file is corrupt (bad gzip, magic number, size or label).
    """
    files = fashion_mnist_files(data_dir)
    out: dict[str, np.ndarray] = {}
    for split, (images_path, labels_path) in files.items():
        out[f"x_{split}"], out[f"y_{split}"] = _read_fashion_split(images_path, labels_path)
    return out


# --------------------------------------------------------------------------------------------
# ECG5000
# --------------------------------------------------------------------------------------------

ECG5000_RELPATH = "ecg5000/ecg.csv"
ECG5000_LENGTH = 140  # samples per heartbeat; column 140 is the label


def ecg5000_file(data_dir: PathLike | None = None) -> Path:
    """Absolute path of ``ecg5000/ecg.csv``; raise DatasetNotFoundError if absent."""
    return require_files("ecg5000", data_dir, [ECG5000_RELPATH])[0]


def read_ecg5000(data_dir: PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """ECG5000 heartbeats from ``<data_dir>/ecg5000/ecg.csv``.

    Source layout: no header, comma-separated, one beat per row, 141 columns: 140 float samples
    then the label (1.0 = normal, 0.0 = abnormal). The real file has 4998 rows (2919 normal).

    Returns:
        ``(x, labels)``: x float64 (4998, 140); labels int64 (4998,), 1 = normal, 0 = abnormal
        (the file's own convention, *not* the 1 = anomaly convention of ADBench).

    Raises:
        DatasetNotFoundError: the file is missing.
        ValueError: wrong column count, NaNs, or labels other than 0/1.
    """
    path = ecg5000_file(data_dir)
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


def _adbench_sort_key(name: str) -> tuple[float, str]:
    """Sort by the leading number ("5_campaign" -> 5), then by name; unnumbered names last."""
    match = _LEADING_NUMBER.match(name)
    return (int(match.group(1)) if match else float("inf"), name)


def _adbench_index(data_dir: PathLike | None) -> dict[str, Path]:
    """``{full name: relative path}`` of every ADBench npz; raise if there are none."""
    root = resolve_data_dir(data_dir)
    hint = [f"{d}/<n>_<name>.npz" for d in ADBENCH_DIRS]
    if root is None:
        require_files("adbench", None, hint)  # raises with the standard "no data dir" message
    index = {
        p.stem: p.relative_to(root)
        for d in ADBENCH_DIRS if (root / d).is_dir()
        for p in (root / d).glob("*.npz") if p.is_file()
    }
    if not index:
        raise DatasetNotFoundError(
            f"dataset 'adbench': no .npz files under {root}; put them there as " + ", ".join(hint)
        )
    return dict(sorted(index.items(), key=lambda kv: _adbench_sort_key(kv[0])))


def list_adbench(data_dir: PathLike | None = None) -> list[str]:
    """Names of the ADBench sets present, e.g. ``["1_ALOI", "4_breastw", ..., "20news_3", ...]``.

    Scans ``adbench_classical/*.npz`` and ``adbench_nlp_by_bert/*.npz``; sorted by the leading
    number, then by name. Raises DatasetNotFoundError when there is no data dir or no npz file.
    """
    return list(_adbench_index(data_dir))


def adbench_file(name: str, data_dir: PathLike | None = None) -> tuple[str, Path]:
    """Resolve ``name`` to ``(full name, absolute path)``; no data is read.

    ``name`` is a full name ("5_campaign") or, case-insensitively, the full or bare name
    ("campaign", "Campaign", "5_CAMPAIGN").

    Raises:
        DatasetNotFoundError: no data dir or no ADBench files.
        KeyError: no set (or more than one) matches; the message lists the available names.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected a non-empty str like '5_campaign' or 'campaign', got {name!r}")
    index = _adbench_index(data_dir)
    if name in index:
        full = name
    else:
        wanted = name.lower()
        matches = [n for n in index if wanted in (n.lower(), _NUMBER_PREFIX.sub("", n).lower())]
        if len(matches) != 1:
            why = "is ambiguous: " + ", ".join(matches) if matches else "is not an ADBench set here"
            raise KeyError(f"name {name!r} {why}; available: {', '.join(index)}")
        full = matches[0]
    path = require_files(f"adbench/{full}", data_dir, [str(index[full])])[0]
    return full, path


def read_adbench(name: str, data_dir: PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One ADBench set from ``adbench_classical/<n>_<name>.npz`` or ``adbench_nlp_by_bert/<name>.npz``.

    Source layout: a plain npz (no pickles) with ``X`` (n, d) of any numeric dtype and ``y`` (n,)
    with 0 = normal, 1 = anomaly (int32 or int64 in the files).

    Args:
        name: full name ("5_campaign") or bare name, case-insensitive ("campaign").

    Returns:
        ``(X, y)``: X float64 (n, d), y int64 (n,), 1 = anomaly. E.g. 5_campaign: (41188, 62).

    Raises:
        DatasetNotFoundError: no data dir or no ADBench files.
        KeyError: unknown name (the message lists the available ones).
        ValueError: the npz lacks X/y or they have the wrong shapes or labels.
    """
    _, path = adbench_file(name, data_dir)
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
