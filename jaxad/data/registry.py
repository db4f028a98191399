"""Named datasets -> ``ADSplit``. ``load_split("ecg5000", data_dir=...)``.

Built in (no files): ``blobs2d``, ``digits``, ``breast_cancer``, ``wine``. From the data dir:
``fashion_mnist``, ``ecg5000``, ``kddcup99``, ``adbench/<name>``, ``20newsgroups`` (texts embedded
by ``jaxad.data.embed``). Local-file datasets load through
tensorflow-datasets builders when tfds is installed (``source='auto'`` or ``'tfds'``) and
through the plain readers otherwise (``source='files'``); both return the same arrays.

Local files are looked up in the data dir, then in the download cache (``cache_dir("data")``);
``download=True`` (or ``JAXAD_DOWNLOAD=1``) fetches absent ones from their official source into
that cache first (``jaxad.data.download``). Nothing is ever downloaded unless asked.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from jaxad.data import builtin, splits
from jaxad.data.paths import DatasetNotFoundError, download_requested
from jaxad.data.splits import ADSplit

SOURCES = ("auto", "tfds", "files")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    name: str
    build: Callable[..., ADSplit]  # build(data_dir, source, download, **options)
    options: Mapping[str, Any]
    description: str
    needs_files: bool = False
    # option -> check(key, value), raising ValueError naming the key; one per option
    checks: Mapping[str, Callable[[str, Any], None]] = dataclasses.field(default_factory=dict)


def _use_tfds(source: str) -> bool:
    from jaxad.data import tfds_builders

    if source not in SOURCES:
        raise ValueError(f"source={source!r}: expected one of {SOURCES}")
    if source == "files" or os.environ.get("JAXAD_USE_TFDS", "1") == "0" and source == "auto":
        return False
    if source == "tfds" and not tfds_builders.tfds_available():
        raise ImportError("source='tfds' needs tensorflow-datasets: pip install 'jaxad[tfds]'")
    return tfds_builders.tfds_available()


def read_raw(name: str, data_dir=None, source: str = "auto", download: bool = False):
    """The raw arrays of a local-file dataset, through tfds or the plain readers.

    Files come from the data dir, else the download cache, else (only if ``download`` or
    ``JAXAD_DOWNLOAD=1``) from the official source, downloaded into the cache.
    """
    from jaxad.data import local, tfds_builders

    if _use_tfds(source):
        return tfds_builders.load_with_tfds(name, _tfds_data_dir(name, data_dir, download))
    if name == "fashion_mnist":
        return local.read_fashion_mnist(data_dir, download)
    if name == "ecg5000":
        return local.read_ecg5000(data_dir, download)
    if name.startswith("adbench/"):
        return local.read_adbench(name.split("/", 1)[1], data_dir, download)
    raise KeyError(f"dataset={name!r}: not a local-file dataset")


def _tfds_data_dir(name: str, data_dir, download: bool):
    """The folder the tfds builders read: the data dir or the download cache, whichever holds
    ``name``'s files (downloading them first if asked).

    When they are in neither and no download is asked, ``data_dir`` itself, so that tfds raises
    the usual DatasetNotFoundError or uses tfds' own prepared ``fashion_mnist``.
    """
    from jaxad.data import local

    try:
        return local.dataset_root(name, data_dir, download)
    except DatasetNotFoundError:
        if download_requested(download):
            raise  # the download failed: say so, rather than fall back to another copy
        return data_dir


# ---------------------------------------------------------------- builders

def _blobs2d(data_dir=None, source="auto", download=False, *, data_seed: int = 42) -> ADSplit:
    x_train, x_test, x_out = builtin.blobs2d_arrays(data_seed)
    x_te = np.concatenate([x_test, x_out]).astype(np.float32)
    y_te = np.r_[np.zeros(len(x_test)), np.ones(len(x_out))].astype(np.int64)
    return ADSplit("blobs2d", x_train.astype(np.float32), np.zeros(len(x_train), np.int64), x_te, y_te,
                   {"protocol": "one_class", "data_seed": data_seed, "scaling": None})


def _sklearn_split(name: str, X: np.ndarray, c: np.ndarray, normal_class: int, protocol: str,
                   test_size: float, anomaly_ratio: float, split_seed: int, scaling: str | None) -> ADSplit:
    if normal_class not in set(c.tolist()):
        raise ValueError(f"normal_class={normal_class!r}: expected one of {sorted(set(c.tolist()))}")
    is_anomaly = c != normal_class
    if protocol == "one_class":
        s = splits.one_class_split(name, X, is_anomaly, test_size=test_size, seed=split_seed, scaling=scaling)
    elif protocol == "contaminated":
        s = splits.contaminated_split(name, X, is_anomaly, contamination=anomaly_ratio, seed=split_seed,
                                      scaling=scaling)
    else:
        raise ValueError(f"protocol={protocol!r}: expected 'one_class' or 'contaminated'")
    s.info["normal_class"] = normal_class
    return s


def _sklearn_builder(name: str):
    def build(data_dir=None, source="auto", download=False, *,
              normal_class: int = builtin.SKLEARN_SETS[name][1],
              protocol: str = "one_class", test_size: float = 0.3, anomaly_ratio: float = 0.1,
              split_seed: int = 0) -> ADSplit:
        X, c = builtin.sklearn_arrays(name)
        return _sklearn_split(name, X, c, normal_class, protocol, test_size, anomaly_ratio, split_seed, "standard")
    return build


def _digits(data_dir=None, source="auto", download=False, *, normal_class: int = 0,
            protocol: str = "one_class", test_size: float = 0.3, anomaly_ratio: float = 0.1,
            split_seed: int = 0, images: bool = False) -> ADSplit:
    """scikit-learn's 8x8 digits: 64 standardised features, or with ``images=True`` images
    (n, 8, 8, 1) in [0, 1] (pixel / 16) for the convolutional methods."""
    X, c = builtin.sklearn_arrays("digits")
    if images:
        X = (X / 16.0).reshape(-1, 8, 8, 1)
    return _sklearn_split("digits", X, c, normal_class, protocol, test_size, anomaly_ratio, split_seed,
                          None if images else "standard")


def _fashion_mnist(data_dir=None, source="auto", download=False, *, normal_class: int = 0,
                   anomaly_classes=None) -> ADSplit:
    """Images as (n, 28, 28, 1) float32 in [0, 1] (pixels / 255, as both seed tutorials)."""
    classes = set(range(10))
    normal = [normal_class] if isinstance(normal_class, int) else list(normal_class)
    anomalous = None if anomaly_classes is None else (
        [anomaly_classes] if isinstance(anomaly_classes, int) else list(anomaly_classes))
    for key, vals in (("normal_class", normal), ("anomaly_classes", anomalous or [])):
        if not set(vals) <= classes:
            raise ValueError(f"{key}={vals!r}: expected Fashion-MNIST classes in 0..9")
    raw = read_raw("fashion_mnist", data_dir, source, download)
    to_float = lambda a: (a.astype(np.float32) / 255.0)[..., None]
    return splits.class_split("fashion_mnist", to_float(raw["x_train"]), raw["y_train"],
                              to_float(raw["x_test"]), raw["y_test"],
                              normal_classes=normal, anomaly_classes=anomalous, scaling=None)


def _ecg5000(data_dir=None, source="auto", download=False, *, test_size: float = 0.2, random_state: int = 21,
             scaling: str | None = "global_minmax") -> ADSplit:
    """TensorFlow's autoencoder tutorial: label 1 = normal in the file, so anomaly = label 0."""
    x, label = read_raw("ecg5000", data_dir, source, download)
    return splits.holdout_one_class_split("ecg5000", x, label == 0, test_size=test_size,
                                          random_state=random_state, scaling=scaling)


def _twenty_newsgroups(data_dir=None, source="auto", download=False, *, embedder: str = "use",
                       normal: str = "sci.electronics", anomaly: str = "talk.politics.mideast",
                       ratio: float = 0.1, seed: int = 123, remove=("headers", "footers")) -> ADSplit:
    """The RSRAE seed notebook's transductive task (``text.notebook_pool``: 984 sci.electronics
    posts + the first int(0.1 n) + 1 = 99 talk.politics.mideast posts, shuffled with seed 123),
    embedded by ``embedder`` (``jaxad.data.embed``; "use" as the notebook's USE, or "tfidf",
    "hub:<path>"). x_train = x_test = the pool; read from the tarball whatever ``source``."""
    from jaxad.data import embed, text

    embed.check_embedder(embedder)  # a bad embedder fails before the corpus is read
    pool = text.notebook_pool(data_dir, normal=normal, anomaly=anomaly, ratio=ratio, seed=seed,
                              remove=remove, download=download)
    x = embed.embed(pool, embedder)
    return ADSplit("20newsgroups", x, pool.labels, x, pool.labels,
                   {"protocol": "transductive", "normal": pool.categories[0], "anomaly": pool.categories[1],
                    "ratio": ratio, "n_normal": int((pool.labels == 0).sum()),
                    "n_anomaly": int(pool.labels.sum()), "seed": seed, "remove": list(text.check_remove(remove)),
                    "embedder": embedder, "corpus": pool.name, "scaling": None})


def _adbench_builder(name: str):
    def build(data_dir=None, source="auto", download=False, *, split_seed: int = 0,
              test_size: float = 0.3, max_rows: int | None = None) -> ADSplit:
        X, y = read_raw(name, data_dir, source, download)
        return splits.adbench_split(name, X, y, seed=split_seed, test_size=test_size, max_rows=max_rows)
    return build


def _kddcup99(data_dir=None, source="auto", download=False, *, split_seed: int = 42,
              test_anomaly_ratio: float = 0.2, scaling: str | None = "minmax") -> ADSplit:
    """Zenati et al.'s KDD Cup 99 protocol (``jaxad.data.kdd``); read by the plain reader
    whatever ``source`` (there is no tfds builder for it)."""
    from jaxad.data import kdd

    return kdd.load_kddcup99(data_dir, download, split_seed=split_seed,
                             test_anomaly_ratio=test_anomaly_ratio, scaling=scaling)


# ---------------------------------------------------------------- option checks
# Each runs before any file is read (``check_options``), so a bad value raises a ValueError
# naming its key instead of a TypeError or OverflowError deep inside a split.

SEED_MAX = 2 ** 32 - 1  # numpy's RandomState, scikit-learn and pandas take seeds in [0, 2**32 - 1]
PROTOCOLS = ("one_class", "contaminated")
# The class labels of scikit-learn's shipped sets (tests check them against the data).
SKLEARN_CLASSES = {"digits": tuple(range(10)), "breast_cancer": (0, 1), "wine": (0, 1, 2)}
FASHION_MNIST_CLASSES = tuple(range(10))


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def check_seed(key: str, value) -> None:
    if not _is_int(value) or not 0 <= value <= SEED_MAX:
        raise ValueError(f"{key}={value!r}: expected an integer seed in [0, 2**32 - 1]")


def check_fraction(key: str, value) -> None:
    """A share of the rows strictly between none and all (test_size, anomaly_ratio, ...)."""
    if not _is_real(value) or not 0.0 < value < 1.0:
        raise ValueError(f"{key}={value!r}: expected a number in (0, 1)")


def check_positive_number(key: str, value) -> None:
    if not _is_real(value) or not 0.0 < value < math.inf:
        raise ValueError(f"{key}={value!r}: expected a finite number > 0")


def check_max_rows(key: str, value) -> None:
    if value is not None and (not _is_int(value) or value < 1):
        raise ValueError(f"{key}={value!r}: expected None (all rows) or an integer >= 1")


def check_bool(key: str, value) -> None:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{key}={value!r}: expected True or False")


def check_option_choice(key: str, value, choices) -> None:
    try:
        known = value in choices
    except (TypeError, ValueError):  # unhashable or array values from the command line
        known = False
    if not known or isinstance(value, bool):  # True == 1 would pass a membership test
        raise ValueError(f"{key}={value!r}: expected one of {list(choices)}")


def check_classes(key: str, value, classes, *, several: bool = False, optional: bool = False) -> None:
    """One class label among ``classes``; with ``several``, also a non-empty list or tuple of
    them; with ``optional``, also None."""
    if optional and value is None:
        return
    values = list(value) if several and isinstance(value, list | tuple) else [value]
    if not values or not all(_is_int(v) and v in classes for v in values):
        what = "a class or a non-empty list of classes" if several else "a class"
        raise ValueError(f"{key}={value!r}: expected {'None or ' if optional else ''}{what} "
                         f"among {list(classes)}")


def choice_check(choices) -> Callable[[str, Any], None]:
    """The check of an option that takes one of ``choices``."""
    return lambda key, value: check_option_choice(key, value, choices)


def check_category(key: str, value) -> None:
    from jaxad.data import text

    if not isinstance(value, str):
        raise ValueError(f"{key}={value!r}: expected a 20 Newsgroups category name, e.g. 'sci.electronics'")
    text.check_categories([value], key)


def check_remove(key: str, value) -> None:
    from jaxad.data import text

    if not (value is None or isinstance(value, str | list | tuple)):
        raise ValueError(f"{key}={value!r}: expected None or a tuple of some of {text.REMOVABLE}")
    text.check_remove(value)


def check_embedder(key: str, value) -> None:
    """The spec only: the package and model are checked by the builder, before any text is read."""
    from jaxad.data import embed

    embed.parse_embedder(value)


# Checks of the options that mean the same in every dataset; ``_spec`` adds the per-dataset ones.
OPTION_CHECKS: dict[str, Callable[[str, Any], None]] = {
    **dict.fromkeys(("test_size", "anomaly_ratio", "test_anomaly_ratio"), check_fraction),
    **dict.fromkeys(("split_seed", "random_state", "seed", "data_seed"), check_seed),
    "protocol": choice_check(PROTOCOLS),
    "images": check_bool,
    "max_rows": check_max_rows,
    "ratio": check_positive_number,
    "embedder": check_embedder,
    "normal": check_category,
    "anomaly": check_category,
    "remove": check_remove,
}


def check_options(spec: DatasetSpec, options: Mapping[str, Any]) -> None:
    """KeyError for an option ``spec`` does not take, ValueError for a bad value; reads nothing."""
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise KeyError(f"dataset option(s) {unknown} unknown for {spec.name!r}; valid: {sorted(spec.options)}")
    for key, value in options.items():
        spec.checks[key](key, value)


def _defaults(fn) -> dict[str, Any]:
    import inspect

    return {k: p.default for k, p in inspect.signature(fn).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _spec(name, build, description, needs_files=False, **checks) -> DatasetSpec:
    """A spec whose options are ``build``'s keyword-only defaults, each checked by ``checks[key]``
    or else ``OPTION_CHECKS[key]`` (a KeyError at import for an option with neither)."""
    options = _defaults(build)
    return DatasetSpec(name, build, options, description, needs_files,
                       {key: checks.get(key) or OPTION_CHECKS[key] for key in options})


DATASETS: dict[str, DatasetSpec] = {
    "blobs2d": _spec("blobs2d", _blobs2d, "OC-NN notebook: 2-D Gaussian blobs at +-2, uniform outliers"),
    **{n: _spec(n, _digits if n == "digits" else _sklearn_builder(n),
                f"scikit-learn {n}, normal = {builtin.SKLEARN_SETS[n][2]}",
                normal_class=lambda key, value, n=n: check_classes(key, value, SKLEARN_CLASSES[n]))
       for n in builtin.SKLEARN_SETS},
    "fashion_mnist": _spec(
        "fashion_mnist", _fashion_mnist, "Fashion-MNIST one-class (IDX files or tfds)", True,
        normal_class=lambda key, value: check_classes(key, value, FASHION_MNIST_CLASSES, several=True),
        anomaly_classes=lambda key, value: check_classes(key, value, FASHION_MNIST_CLASSES, several=True,
                                                         optional=True)),
    "ecg5000": _spec("ecg5000", _ecg5000, "ECG5000 as TensorFlow's autoencoder tutorial (ecg.csv)", True,
                     scaling=choice_check(splits.SCALINGS)),
    "kddcup99": _spec("kddcup99", _kddcup99, "KDD Cup 99 10 %, normal. = anomaly (Zenati et al.'s split)", True,
                      scaling=choice_check(("minmax", None))),
    "20newsgroups": _spec("20newsgroups", _twenty_newsgroups,
                          "20 Newsgroups, RSRAE notebook: sci.electronics vs talk.politics.mideast, embedded", True),
}
BUILTIN = ("blobs2d", "digits", "breast_cancer", "wine")


def get_spec(name: str) -> DatasetSpec:
    """The spec of a registered dataset or ``adbench/<name>``; KeyError lists the names."""
    if name in DATASETS:
        return DATASETS[name]
    if name.startswith("adbench/") and len(name) > len("adbench/"):
        return _spec(name, _adbench_builder(name), f"ADBench {name.split('/', 1)[1]} (npz)", True)
    raise KeyError(f"dataset={name!r}: unknown; expected one of {sorted(DATASETS)} or 'adbench/<name>'")


def load_split(name: str, *, data_dir=None, source: str = "auto", download: bool = False,
               **options) -> ADSplit:
    """Build the named dataset's split. Unknown option keys raise KeyError naming the valid ones,
    bad values ValueError naming the key (``check_options``), both before any file is read.

    ``download=True`` (or ``JAXAD_DOWNLOAD=1``) lets a local-file dataset that is in neither the
    data dir nor the download cache be fetched from its official source (see ``read_raw``); it
    does not change the data, so it is not a dataset option.
    """
    spec = get_spec(name)
    check_options(spec, options)
    return spec.build(data_dir, source, download, **options)
