"""tensorflow-datasets builders for the local-file datasets, stored as ``array_record``.

The builders turn the raw files of the JAXAD data dir into tfds datasets that ``tfds.data_source``
(random access, numpy, no TensorFlow) can read, e.g. for grain or for code that wants tfds'
split/metadata machinery (``load_with_tfds`` name -> tfds dataset in ``cache_dir("tfds")``):

- ``"fashion_mnist"`` -> ``jaxad_fashion_mnist:1.0.0``, splits train/test:
  image uint8 (28, 28), label ClassLabel(10 classes);
- ``"ecg5000"`` -> ``jaxad_ecg5000:1.0.0``, split train: x float64 (140,),
  label ClassLabel(abnormal=0, normal=1);
- ``"adbench/<name>"`` -> ``jaxad_adbench/<n>_<name>:1.0.0`` (one BuilderConfig per set), split
  train: x float64 (d,), label ClassLabel(normal=0, anomaly=1).

How it works without TensorFlow (checked with tfds 4.9.10, no ``tensorflow`` installed):
``GeneratorBasedBuilder.download_and_prepare`` with ``file_format="array_record"`` serializes
examples with tfds' own copy of the ``tf.train.Example`` proto and writes them with the
``array_record`` package, so TensorFlow is never imported. Only features whose *encoding* needs TF
are off limits (``tfds.features.Image`` encodes numpy images to PNG with ``tf.image``), so images
are stored as raw ``Tensor(uint8)`` features. All tensors use ``Encoding.BYTES``: the default
encoding goes through ``tf.train.Example``'s float_list, which is float32 and would silently round
float64 data (ECG, ADBench). Nothing is downloaded: the raw files come through
tfds' ``manual_dir`` (the data dir, read only, or the download cache where an earlier
``download=True`` put the files) and GCS look-ups are switched off.

Examples keep file order (``disable_shuffling=True``), so ``load_with_tfds`` returns exactly what
the plain readers of ``local.py`` return. Prepared data is cached under ``cache_dir("tfds")`` with
a fingerprint (names, sizes, mtimes) of its source files in the dataset's ``metadata.json``; it is
rebuilt only when the source files change. The builders are not added to tfds' global registry:
the prepared folders are self-describing, and ``tfds.data_source`` reads them from their files.

Fashion-MNIST only: when its local IDX files are absent but tfds' own ``fashion_mnist`` is already
prepared as array_record in ``$TFDS_DATA_DIR`` (default ``~/tensorflow_datasets``), that copy is
read instead (same shapes and dtypes, but in tfds' shuffled example order).

``tensorflow_datasets`` is imported only inside functions, so ``import jaxad`` never pays for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from jaxad.data import local
from jaxad.data.paths import DatasetNotFoundError, cache_dir

PathLike = str | os.PathLike

TFDS_NAMES = ("fashion_mnist", "ecg5000", "adbench/<name>")
BUILDER_VERSION = "1.0.0"
FINGERPRINT_KEY = "jaxad_source_fingerprint"
# Examples decoded per __getitems__ call: big enough to amortize array_record's parallel read,
# small enough that the transient list of per-example dicts stays a few MB.
_READ_CHUNK = 16384
# tfds' own Fashion-MNIST, used when the local IDX files are absent and it is already prepared.
_CATALOG_FASHION_MNIST = "fashion_mnist"


# --------------------------------------------------------------------------------------------
# availability
# --------------------------------------------------------------------------------------------


def tfds_available() -> bool:
    """Whether ``tensorflow_datasets`` and ``array_record`` (its random-access reader) import."""
    try:
        import tensorflow_datasets  # noqa: F401
        from array_record.python import array_record_data_source  # noqa: F401
    except Exception:  # a broken install (e.g. protobuf clash) counts as unavailable, not a crash
        return False
    return True


def _require_tfds():
    """The ``tensorflow_datasets`` module, or an ImportError that says what to install."""
    if not tfds_available():
        raise ImportError(
            "load_with_tfds needs tensorflow-datasets and array_record (TensorFlow is not needed): "
            "pip install 'jaxad[tfds]', or use the plain readers in jaxad.data.local"
        )
    import tensorflow_datasets as tfds

    return tfds


# --------------------------------------------------------------------------------------------
# builders (defined on first use so that tfds is imported lazily)
# --------------------------------------------------------------------------------------------

_MANUAL_INSTRUCTIONS = (
    "Pass the JAXAD data dir as manual_dir (DownloadConfig(manual_dir=...)); it must hold {files}."
)


@functools.cache
def builder_classes() -> dict[str, type]:
    """``{"fashion_mnist": cls, "ecg5000": cls, "adbench": cls, "adbench_config": cls}``.

    Classes are created once per process, inside a function because they subclass tfds types.
    ``skip_registration=True`` keeps them out of tfds' global registry (no name clashes on
    reload); reading back goes through the prepared folders' own ``features.json``.
    """
    tfds = _require_tfds()

    def tensor(shape: tuple[int, ...], dtype) -> Any:
        # BYTES: store the raw array bytes. The default encoding goes through tf.train.Example's
        # float_list, which is float32: float64 data would silently lose precision.
        return tfds.features.Tensor(shape=shape, dtype=dtype, encoding=tfds.features.Encoding.BYTES)

    def info(builder, description: str, features: dict, **kwargs: Any):
        return tfds.core.DatasetInfo(
            builder=builder,
            description=description,
            features=tfds.features.FeaturesDict(features),
            supervised_keys=tuple(features),
            disable_shuffling=True,  # keep file order: same arrays as the plain readers
            metadata=tfds.core.MetadataDict(),  # holds the source fingerprint
            **kwargs,
        )

    class OneLineLog:
        """tfds prints a banner and a done line around every preparation (with a progress bar per
        split): a benchmark over 35 sets drowned in them. One line on stderr says the same."""

        def _log_download_bytes(self) -> None:
            print(f"jaxad: preparing the tfds copy of {self.name} in {self.data_dir} (once)", file=sys.stderr)

        def _log_download_done(self) -> None:
            pass

    class JaxadFashionMnist(OneLineLog, tfds.core.GeneratorBasedBuilder, skip_registration=True):
        """Fashion-MNIST from the local IDX files; splits train (60000) and test (10000)."""

        name = "jaxad_fashion_mnist"
        VERSION = tfds.core.Version(BUILDER_VERSION)
        MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_INSTRUCTIONS.format(
            files=", ".join(p for pair in local.FASHION_MNIST_RELPATHS.values() for p in pair)
        )

        def _info(self):
            return info(
                self,
                "Fashion-MNIST (Zalando), from the official IDX files; images stored raw.",
                {
                    "image": tensor(local.FASHION_MNIST_IMAGE_SHAPE, np.uint8),
                    "label": tfds.features.ClassLabel(names=local.FASHION_MNIST_CLASSES),
                },
                homepage="https://github.com/zalandoresearch/fashion-mnist",
                citation="H. Xiao, K. Rasul, R. Vollgraf, arXiv:1708.07747 (2017).",
            )

        def _split_generators(self, dl_manager):
            data = local.read_fashion_mnist(os.fspath(dl_manager.manual_dir))
            return {
                split: self._generate_examples(data[f"x_{split}"], data[f"y_{split}"])
                for split in local.FASHION_MNIST_RELPATHS
            }

        def _generate_examples(self, images, labels):
            for i, (image, label) in enumerate(zip(images, labels)):
                yield i, {"image": image, "label": int(label)}

    class JaxadEcg5000(OneLineLog, tfds.core.GeneratorBasedBuilder, skip_registration=True):
        """ECG5000 heartbeats from ecg.csv; one split, train (4998); label 1 = normal."""

        name = "jaxad_ecg5000"
        VERSION = tfds.core.Version(BUILDER_VERSION)
        MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_INSTRUCTIONS.format(files=local.ECG5000_RELPATH)

        def _info(self):
            return info(
                self,
                "ECG5000 (UCR / BIDMC chf07) as in ecg.csv: 140 samples per beat.",
                {
                    "x": tensor((local.ECG5000_LENGTH,), np.float64),
                    # index 0 = abnormal, 1 = normal: the file's own label values.
                    "label": tfds.features.ClassLabel(names=["abnormal", "normal"]),
                },
            )

        def _split_generators(self, dl_manager):
            x, labels = local.read_ecg5000(os.fspath(dl_manager.manual_dir))
            return {"train": self._generate_examples(x, labels)}

        def _generate_examples(self, x, labels):
            for i, (row, label) in enumerate(zip(x, labels)):
                yield i, {"x": row, "label": int(label)}

    @dataclasses.dataclass
    class AdbenchConfig(tfds.core.BuilderConfig):
        """One ADBench set; ``name`` is its full name ("5_campaign")."""

        num_features: int = 0

    class JaxadAdbench(OneLineLog, tfds.core.GeneratorBasedBuilder, skip_registration=True):
        """ADBench sets from their npz files, one BuilderConfig per set; one split, train.

        The configs are made at run time (``AdbenchConfig(name=..., num_features=...)``) because
        the available sets depend on the data dir.
        """

        name = "jaxad_adbench"
        VERSION = tfds.core.Version(BUILDER_VERSION)
        MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_INSTRUCTIONS.format(
            files=", ".join(f"{d}/<name>.npz" for d in local.ADBENCH_DIRS)
        )

        def _info(self):
            return info(
                self,
                f"ADBench set {self.builder_config.name} (X as float64; label 1 = anomaly).",
                {
                    "x": tensor((self.builder_config.num_features,), np.float64),
                    "label": tfds.features.ClassLabel(names=["normal", "anomaly"]),
                },
                homepage="https://github.com/Minqi824/ADBench",
            )

        def _split_generators(self, dl_manager):
            X, y = local.read_adbench(self.builder_config.name, os.fspath(dl_manager.manual_dir))
            return {"train": self._generate_examples(X, y)}

        def _generate_examples(self, X, y):
            for i, (row, label) in enumerate(zip(X, y)):
                yield i, {"x": row, "label": int(label)}

    return {
        "fashion_mnist": JaxadFashionMnist,
        "ecg5000": JaxadEcg5000,
        "adbench": JaxadAdbench,
        "adbench_config": AdbenchConfig,
    }


# --------------------------------------------------------------------------------------------
# preparing
# --------------------------------------------------------------------------------------------


def source_fingerprint(paths: list[Path]) -> str:
    """A short hash of the files' names, sizes and mtimes: changes when a source file changes."""
    h = hashlib.sha256()
    for p in paths:
        st = Path(p).stat()
        h.update(f"{Path(p).name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _no_tfds_progress_bars() -> Iterator[None]:
    """tfds' per-split preparation bars off for the block, then back as they were."""
    from tensorflow_datasets.core.utils import tqdm_utils

    before = getattr(tqdm_utils, "_active", True)
    tqdm_utils.display_progress_bar(False)
    try:
        yield
    finally:
        tqdm_utils.display_progress_bar(before)


@contextlib.contextmanager
def _quiet_absl() -> Iterator[None]:
    """Hide absl's 'Using custom data configuration' warning, expected for run-time configs."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _prepare(cls, raw_dir: Path, sources: list[Path], config=None) -> tuple[str, str]:
    """Prepare ``cls`` (once per source fingerprint) in ``cache_dir("tfds")``.

    Returns:
        ``(tfds name with config and version, tfds data dir)`` for ``tfds.data_source``.
    """
    tfds = _require_tfds()
    root = cache_dir("tfds")
    fingerprint = source_fingerprint(sources)

    def make():
        with _quiet_absl():
            return cls(data_dir=os.fspath(root), config=config, file_format="array_record")

    def prepared(builder) -> bool:
        # tfds builds in an "incomplete.*" folder and renames it into place when done, so a
        # dataset_info.json here means a finished dataset. (builder.is_prepared() says the same
        # but logs a warning whenever the answer is no.)
        return (Path(builder.data_dir) / "dataset_info.json").is_file()

    builder = make()
    if prepared(builder) and builder.info.metadata.get(FINGERPRINT_KEY) != fingerprint:
        # Source files changed since the cached copy was made (or it predates fingerprints).
        stale = Path(builder.data_dir).resolve()
        if root.resolve() not in stale.parents:  # never delete outside the cache
            raise RuntimeError(f"refusing to delete {stale}: not under {root}")
        shutil.rmtree(stale)
        builder = make()
    if not prepared(builder):
        builder.info.metadata[FINGERPRINT_KEY] = fingerprint  # written with dataset_info
        with _no_tfds_progress_bars():
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(
                    manual_dir=os.fspath(raw_dir),
                    try_download_gcs=False,  # never go online; everything is local
                )
            )
    config_part = f"/{config.name}" if config is not None else ""
    return f"{builder.name}{config_part}:{builder.version}", os.fspath(root)


def _tfds_home() -> Path:
    """tfds' default data dir: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``."""
    return Path(os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets").expanduser()


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.name.split("."))


def find_catalog_fashion_mnist() -> tuple[str | None, str]:
    """tfds' own ``fashion_mnist`` if prepared as array_record in the tfds data dir.

    Only looks at files (no tfds import, no network). Returns ``(tfds name with version or None,
    a note for error messages)``. A tfrecord-only copy (what ``tfds.load`` writes by default) is
    not usable: ``tfds.data_source`` reads only random-access formats.
    """
    base = _tfds_home() / _CATALOG_FASHION_MNIST
    versions = sorted(
        (p for p in base.glob("*") if p.is_dir() and re.fullmatch(r"\d+\.\d+\.\d+", p.name)),
        key=_version_key,
        reverse=True,
    )
    for version_dir in versions:
        splits_ok = all(
            any(version_dir.glob(f"{_CATALOG_FASHION_MNIST}-{split}.array_record-*"))
            for split in ("train", "test")
        )
        if splits_ok and (version_dir / "dataset_info.json").is_file():
            return f"{_CATALOG_FASHION_MNIST}:{version_dir.name}", ""
    if versions:
        return None, (
            f"tfds' fashion_mnist in {base} is not in array_record format, which "
            "tfds.data_source needs; re-prepare it with file_format='array_record'"
        )
    return None, f"or have tfds' fashion_mnist prepared as array_record under {base}"


def _parse_name(name: str) -> tuple[str, str | None]:
    """``"fashion_mnist"`` -> ("fashion_mnist", None); ``"adbench/campaign"`` -> ("adbench", "campaign")."""
    if isinstance(name, str):
        kind, _, sub = name.partition("/")
        if kind in ("fashion_mnist", "ecg5000") and not sub:
            return kind, None
        if kind == "adbench" and sub:
            return kind, sub
    raise ValueError(f"name: expected one of {', '.join(TFDS_NAMES)}, got {name!r}")


def prepare_with_tfds(name: str, data_dir: PathLike | None = None) -> tuple[str, str]:
    """Prepare a dataset as array_record (once; cached) and say where tfds can read it.

    Args:
        name: "fashion_mnist", "ecg5000" or "adbench/<name>" (full or bare ADBench name).
        data_dir: the JAXAD data dir (else ``$JAXAD_DATA_DIR``); only read.

    Returns:
        ``(tfds_name, tfds_data_dir)`` such that
        ``tfds.data_source(tfds_name, data_dir=tfds_data_dir, download=False)`` works, e.g.
        ``("jaxad_adbench/5_campaign:1.0.0", "~/.cache/jaxad/tfds")``. For Fashion-MNIST without
        local files this is tfds' own prepared ``fashion_mnist`` if there is one.

    Raises:
        ValueError: bad ``name``.
        DatasetNotFoundError: the raw files are absent (checked before tfds is touched).
        KeyError: unknown ADBench name.
        ImportError: tensorflow-datasets / array_record not installed.
    """
    kind, sub = _parse_name(name)
    if kind == "fashion_mnist":
        try:
            files = local.fashion_mnist_files(data_dir)
        except DatasetNotFoundError as err:
            catalog, note = find_catalog_fashion_mnist()
            if catalog is None:
                raise DatasetNotFoundError(f"{err}; {note}") from None
            _require_tfds()
            return catalog, os.fspath(_tfds_home())
        sources = [p for pair in files.values() for p in pair]
        classes = builder_classes()
        return _prepare(classes["fashion_mnist"], _root_of(sources[0]), sources)
    if kind == "ecg5000":
        source = local.ecg5000_file(data_dir)
        classes = builder_classes()
        return _prepare(classes["ecg5000"], _root_of(source), [source])
    full, source = local.adbench_file(sub, data_dir)
    num_features = _npz_num_features(source)
    classes = builder_classes()
    config = classes["adbench_config"](
        name=full, num_features=num_features, description=f"ADBench {full}"
    )
    return _prepare(classes["adbench"], _root_of(source), [source], config=config)


def _root_of(source: Path) -> Path:
    """The folder in the data-dir layout that holds ``source`` (the data dir or the download
    cache, wherever the look-up found it): every file lies at <root>/<dataset folder>/<file>."""
    return source.parent.parent


def _npz_num_features(path: Path) -> int:
    """Columns of ``X`` in an npz, from the .npy header only (cheap even for big sets)."""
    import zipfile

    fmt = np.lib.format
    readers = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
    try:
        with zipfile.ZipFile(path) as zf, zf.open("X.npy") as f:
            shape, _, _ = readers[fmt.read_magic(f)](f)
    except (KeyError, ValueError, zipfile.BadZipFile):
        # Unusual layout (no X.npy member, npy format 3.0, ...): let numpy load it properly.
        with np.load(path, allow_pickle=False) as npz:
            shape = npz["X"].shape
    if len(shape) != 2:
        raise ValueError(f"{path}: X must be 2-D (n, d), got shape {shape}")
    return int(shape[1])


# --------------------------------------------------------------------------------------------
# reading back
# --------------------------------------------------------------------------------------------


def _read_split(source, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Decode a whole ``tfds.data_source`` split into stacked arrays, chunk by chunk.

    Each chunk is one batched read from array_record (parallel, in C++). Decoding uses
    ``_decode_fast`` when it provably matches tfds' own decoder, else tfds' per-example
    ``__getitems__`` (about 3x slower: Python work per example).
    """
    n = len(source)
    if n == 0:
        raise ValueError(f"tfds split {source!r} is empty")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for start in range(0, n, _READ_CHUNK):
        indices = list(range(start, min(start + _READ_CHUNK, n)))
        chunk = _decode_fast(source, indices, keys)
        if chunk is None:
            examples = source.__getitems__(indices)
            chunk = {k: np.array([ex[k] for ex in examples]) for k in keys}
        for k in keys:
            parts[k].append(chunk[k])
    return {k: np.concatenate(v) for k, v in parts.items()}


def _decode_fast(source, indices: list[int], keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """Vectorized decode of fixed-shape raw-bytes tensors and int64 scalars, or None.

    Our builders store tensors with ``Encoding.BYTES``: one ``bytes_list`` entry holding the
    array's raw bytes, so a whole chunk is one ``np.frombuffer`` over the joined bytes; labels
    are one-element ``int64_list``s. The result is checked against tfds' own decoder on the
    chunk's first and last example; anything else (PNG images of tfds' own fashion_mnist,
    ragged data, changed tfds internals) returns None and the caller uses tfds' decoder.
    """
    try:
        from tensorflow_datasets.proto import tf_example_pb2

        parse = tf_example_pb2.Example.FromString
        records = source.data_source.__getitems__(indices)  # raw serialized examples
        features = [parse(record).features.feature for record in records]
        first, last = source[indices[0]], source[indices[-1]]
        out = {}
        for k in keys:
            reference = np.asarray(first[k])
            if reference.ndim and reference.dtype != object:
                joined = b"".join([f[k].bytes_list.value[0] for f in features])
                array = np.frombuffer(joined, dtype=reference.dtype)
                array = array.reshape((len(features), *reference.shape))
            elif reference.ndim == 0 and reference.dtype.kind in "iu":
                array = np.array([f[k].int64_list.value[0] for f in features], dtype=np.int64)
            else:
                return None
            if not (np.array_equal(array[0], reference) and np.array_equal(array[-1], np.asarray(last[k]))):
                return None
            out[k] = array
        return out
    except (ImportError, AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None


def load_with_tfds(name: str, data_dir: PathLike | None = None):
    """Load a dataset through tensorflow-datasets (array_record, no TensorFlow).

    Prepares it once (see ``prepare_with_tfds``), then reads it back with ``tfds.data_source``.

    Args:
        name: "fashion_mnist", "ecg5000" or "adbench/<name>" (e.g. "adbench/campaign").
        data_dir: the JAXAD data dir (else ``$JAXAD_DATA_DIR``).

    Returns:
        Exactly what the plain reader in ``jaxad.data.local`` returns:
        - "fashion_mnist": ``{"x_train": uint8 (60000, 28, 28), "y_train": int64 (60000,),
          "x_test": uint8 (10000, 28, 28), "y_test": int64 (10000,)}`` (see ``read_fashion_mnist``);
        - "ecg5000": ``(x float64 (4998, 140), labels int64 (4998,))``, 1 = normal;
        - "adbench/<name>": ``(X float64 (n, d), y int64 (n,))``, 1 = anomaly.
        Only when Fashion-MNIST's local files are absent and tfds' own prepared ``fashion_mnist``
        is used instead do the examples come in tfds' (shuffled) order rather than file order.

    Raises:
        See ``prepare_with_tfds``.
    """
    tfds_name, tfds_dir = prepare_with_tfds(name, data_dir)
    tfds = _require_tfds()
    splits = tfds.data_source(tfds_name, data_dir=tfds_dir, download=False)
    kind, _ = _parse_name(name)
    if kind == "fashion_mnist":
        out: dict[str, np.ndarray] = {}
        for split in ("train", "test"):
            arrays = _read_split(splits[split], ("image", "label"))
            image = arrays["image"]
            if image.ndim == 4 and image.shape[-1] == 1:  # tfds' own fashion_mnist: (n, 28, 28, 1)
                image = image[..., 0]
            out[f"x_{split}"] = np.ascontiguousarray(image, dtype=np.uint8)
            out[f"y_{split}"] = arrays["label"].astype(np.int64)
        return out
    arrays = _read_split(splits["train"], ("x", "label"))
    return arrays["x"].astype(np.float64, copy=False), arrays["label"].astype(np.int64)
