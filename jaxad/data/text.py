"""20 Newsgroups as a text corpus, read from the local "bydate" tarball exactly as scikit-learn.

``load_20newsgroups`` returns a ``Corpus`` (texts, labels, categories, a stable name) equal,
text for text and label for label, to ``sklearn.datasets.fetch_20newsgroups`` called with the
same ``subset``, ``categories``, ``remove``, ``shuffle`` and ``random_state`` (tested), without
scikit-learn's download or its ``~/scikit_learn_data`` cache:

- the file is ``<data_dir>/20newsgroups/20news-bydate.tar.gz`` (Jason Rennie's "bydate" release:
  ``20news-bydate-{train,test}/<category>/<id>``), else the same path in the download cache;
  with ``download=True`` (or ``JAXAD_DOWNLOAD=1``) and neither present, the corpus comes from
  ``fetch_20newsgroups`` itself, which downloads into ``cache_dir("data", "scikit_learn_data")``
  and is read from there offline afterwards. Otherwise ``DatasetNotFoundError`` at once.
- posts are raw bytes decoded as latin-1 (as scikit-learn's ``load_files(encoding="latin1")``);
- header, footer and quote removal are scikit-learn's own ``strip_newsgroup_header`` /
  ``_footer`` / ``_quoting`` (the heuristics are imported, not copied, so they cannot drift).

**Dataset order** (what "the first k documents of a class" means): scikit-learn's. Per subset,
the files sorted by category folder then file name, permuted by ``RandomState(0)`` (the default
of ``load_files``); ``"all"`` is train followed by test; then the category filter (order kept);
then, if ``shuffle`` (default, as scikit-learn), a permutation by ``RandomState(random_state)``
(default 42, scikit-learn's). The RSRAE authors' code (dmzou/RSRAE, ``experiments.py``) reads a
preprocessed pickle ``20news.data`` (TF-IDF ``X`` with 10 000 features, labels ``y``, 360
documents per class) whose preprocessing script is not in their repository, so their exact
order is unknown; scikit-learn's default order is the order any ``fetch_20newsgroups`` call
returns, and the one used here.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from jaxad.data.paths import DatasetNotFoundError, cache_dir, download_hint, download_requested, locate_files

# The 20 newsgroups, sorted as scikit-learn's ``target_names`` (label i = CATEGORIES_20NG[i]).
CATEGORIES_20NG: tuple[str, ...] = (
    "alt.atheism", "comp.graphics", "comp.os.ms-windows.misc", "comp.sys.ibm.pc.hardware",
    "comp.sys.mac.hardware", "comp.windows.x", "misc.forsale", "rec.autos", "rec.motorcycles",
    "rec.sport.baseball", "rec.sport.hockey", "sci.crypt", "sci.electronics", "sci.med",
    "sci.space", "soc.religion.christian", "talk.politics.guns", "talk.politics.mideast",
    "talk.politics.misc", "talk.religion.misc",
)
SUBSETS = ("train", "test", "all")
REMOVABLE = ("headers", "footers", "quotes")
TARBALL_RELPATH = "20newsgroups/20news-bydate.tar.gz"
_SUBSET_FOLDERS = {"train": "20news-bydate-train", "test": "20news-bydate-test"}
# scikit-learn's load_files shuffles each subset with this seed before anything else.
_LOAD_FILES_SEED = 0
_SKLEARN_SOURCE = "ndownloader.figshare.com, through scikit-learn's fetch_20newsgroups"


@dataclasses.dataclass(frozen=True, eq=False)
class Corpus:
    """A labelled list of documents.

    texts: n documents; labels: int64 (n,) indexes into ``categories``; categories: the class
    names; name: a stable id of exactly which documents in which order (an embedding cache key).
    """

    texts: list[str]
    labels: np.ndarray
    categories: tuple[str, ...]
    name: str

    def __post_init__(self):
        if len(self.texts) != len(self.labels):
            raise ValueError(f"Corpus {self.name!r}: {len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, indices, name: str) -> Corpus:
        """The documents at ``indices`` (in that order), as a corpus named ``name``."""
        indices = np.asarray(indices, dtype=np.int64)
        return Corpus([self.texts[i] for i in indices], self.labels[indices], self.categories, name)


# --------------------------------------------------------------------------------------------
# argument checks (before any file is touched)
# --------------------------------------------------------------------------------------------


def check_categories(categories: Iterable[str] | str | None, argument: str = "categories") -> tuple[str, ...] | None:
    """The categories as a tuple sorted as scikit-learn sorts them (by label); None = all 20.

    Raises:
        ValueError: empty, or a name that is not one of the 20 newsgroups (listed in the message).
    """
    if categories is None:
        return None
    names = (categories,) if isinstance(categories, str) else tuple(categories)
    if not names:
        raise ValueError(f"{argument}=(): expected at least one of {CATEGORIES_20NG} (or None for all)")
    unknown = [c for c in names if c not in CATEGORIES_20NG]
    if unknown:
        raise ValueError(f"{argument}: unknown 20 Newsgroups categor{'y' if len(unknown) == 1 else 'ies'} "
                         f"{unknown}; expected names from {CATEGORIES_20NG}")
    return tuple(sorted(set(names), key=CATEGORIES_20NG.index))


def check_remove(remove: Iterable[str] | str | None) -> tuple[str, ...]:
    """``remove`` as a tuple in the canonical order headers, footers, quotes."""
    names = () if remove is None else (remove,) if isinstance(remove, str) else tuple(remove)
    unknown = [r for r in names if r not in REMOVABLE]
    if unknown:
        raise ValueError(f"remove={remove!r}: expected a tuple of some of {REMOVABLE}")
    return tuple(r for r in REMOVABLE if r in names)


def corpus_name(subset: str, remove: tuple[str, ...], categories: tuple[str, ...] | None,
                shuffle: bool, random_state: int) -> str:
    """e.g. ``20newsgroups-all-headers+footers+quotes`` (scikit-learn's default order, seed 42);
    ``-sci.electronics``-style category and ``-seed123`` / ``-unshuffled`` suffixes otherwise."""
    parts = ["20newsgroups", subset, "+".join(remove) or "raw"]
    if categories is not None and categories != CATEGORIES_20NG:
        parts.append("+".join(categories))
    if not shuffle:
        parts.append("unshuffled")
    elif random_state != 42:
        parts.append(f"seed{random_state}")
    return "-".join(parts)


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def tarball_path(data_dir=None) -> Path:
    """``20newsgroups/20news-bydate.tar.gz`` in the data dir, else in the download cache.

    Raises:
        DatasetNotFoundError: in neither; the message says where to put it.
    """
    return locate_files("20newsgroups", data_dir, [TARBALL_RELPATH])[0]


@functools.lru_cache(maxsize=2)
def _read_tarball(path: str, size: int, mtime_ns: int) -> dict[str, tuple[list[str], list[int], list[str]]]:
    """``{subset: (texts, labels, filenames)}`` in scikit-learn's ``load_files`` order.

    Memoised on (path, size, mtime) so that several corpora cut from one tarball read it once
    (0.9 s for the 18 846 posts, 36 MB of text).
    """
    posts: dict[str, dict[tuple[str, str], bytes]] = {s: {} for s in _SUBSET_FOLDERS}
    folders = {folder: subset for subset, folder in _SUBSET_FOLDERS.items()}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            parts = member.name.strip("/").split("/")
            if not member.isfile() or len(parts) != 3 or parts[0] not in folders:
                continue
            posts[folders[parts[0]]][(parts[1], parts[2])] = tar.extractfile(member).read()
    out = {}
    for subset, files in posts.items():
        unknown = sorted({cat for cat, _ in files} - set(CATEGORIES_20NG))
        if unknown or not files:
            raise ValueError(f"{path}: {_SUBSET_FOLDERS[subset]}/ has "
                             f"{'categories ' + str(unknown) if unknown else 'no posts'}; "
                             "expected the 20news-bydate layout with the 20 newsgroups")
        # load_files: folders sorted, files sorted by name (as strings), then one shuffle.
        keys = sorted(files)
        order = np.arange(len(keys))
        np.random.RandomState(_LOAD_FILES_SEED).shuffle(order)
        keys = [keys[i] for i in order]
        out[subset] = ([files[k].decode("latin-1") for k in keys],
                       [CATEGORIES_20NG.index(cat) for cat, _ in keys],
                       [f"{_SUBSET_FOLDERS[subset]}/{cat}/{name}" for cat, name in keys])
    return out


def _from_tarball(path: Path, subset: str) -> tuple[list[str], np.ndarray]:
    stat = path.stat()
    subsets = _read_tarball(str(path), stat.st_size, stat.st_mtime_ns)
    chosen = ("train", "test") if subset == "all" else (subset,)
    texts = [t for s in chosen for t in subsets[s][0]]
    labels = np.array([y for s in chosen for y in subsets[s][1]], dtype=np.int64)
    return texts, labels


def _sklearn_data_home(create: bool = False) -> Path:
    return cache_dir("data", "scikit_learn_data", create=create)


def _sklearn_cached() -> bool:
    """Whether an earlier ``download=True`` left scikit-learn's pickled corpus in our cache."""
    home = _sklearn_data_home(create=False)
    return home.is_dir() and any(home.glob("20news-bydate*.pkz"))  # scikit-learn's CACHE_NAME


def _from_sklearn(subset: str, download: bool) -> tuple[list[str], np.ndarray]:
    """The unshuffled, unfiltered, unstripped corpus from ``fetch_20newsgroups`` (which
    downloads the official tarball into our cache if ``download``)."""
    from sklearn.datasets import fetch_20newsgroups

    bunch = fetch_20newsgroups(data_home=str(_sklearn_data_home(create=True)), subset=subset,
                               shuffle=False, download_if_missing=download)
    unknown = sorted(set(bunch.target_names) - set(CATEGORIES_20NG))
    if unknown:
        raise ValueError(f"scikit-learn's 20 Newsgroups has unknown categories {unknown}")
    # scikit-learn's labels index the folders it found; ours index CATEGORIES_20NG.
    to_ours = np.array([CATEGORIES_20NG.index(c) for c in bunch.target_names], dtype=np.int64)
    return list(bunch.data), to_ours[np.asarray(bunch.target)]


def strip_posts(texts: Sequence[str], remove: tuple[str, ...]) -> list[str]:
    """scikit-learn's header, then footer, then quote removal (``fetch_20newsgroups``'s order)."""
    from sklearn.datasets._twenty_newsgroups import (
        strip_newsgroup_footer,
        strip_newsgroup_header,
        strip_newsgroup_quoting,
    )

    strip = {"headers": strip_newsgroup_header, "footers": strip_newsgroup_footer,
             "quotes": strip_newsgroup_quoting}
    texts = list(texts)
    for part in remove:
        texts = [strip[part](t) for t in texts]
    return texts


def load_20newsgroups(data_dir=None, *, subset: str = "all",
                      remove: Iterable[str] | None = ("headers", "footers", "quotes"),
                      categories: Iterable[str] | None = None, shuffle: bool = True,
                      random_state: int = 42, download: bool = False) -> Corpus:
    """20 Newsgroups "bydate" as a ``Corpus``, equal to scikit-learn's ``fetch_20newsgroups``.

    Args:
        data_dir: folder holding ``20newsgroups/20news-bydate.tar.gz`` (else ``$JAXAD_DATA_DIR``).
        subset: "train" (11 314 posts), "test" (7 532) or "all" (18 846: train then test).
        remove: any of "headers", "footers", "quotes" (scikit-learn's heuristics).
        categories: newsgroup names to keep (None = all 20); labels index the sorted selection.
        shuffle, random_state: scikit-learn's final shuffle (defaults as scikit-learn's).
        download: if the tarball is absent, get the corpus through ``fetch_20newsgroups``
            (network; into ``cache_dir("data", "scikit_learn_data")``). Also ``JAXAD_DOWNLOAD=1``.

    Returns:
        Corpus with ``texts`` (n,), ``labels`` int64 (n,) in ``0..len(categories)-1``,
        ``categories`` (the 20 names, or the selection sorted) and ``name`` (see
        ``corpus_name``), in the dataset order of the module docstring.

    Raises:
        ValueError: a bad subset, remove or category (before any file is read).
        DatasetNotFoundError: no tarball and no download asked (in well under a second).
    """
    if subset not in SUBSETS:
        raise ValueError(f"subset={subset!r}: expected one of {SUBSETS}")
    remove = check_remove(remove)
    chosen = check_categories(categories)
    if isinstance(random_state, bool) or not isinstance(random_state, int | np.integer):
        raise ValueError(f"random_state={random_state!r}: expected an int (the order must be reproducible)")
    try:
        texts, labels = _from_tarball(tarball_path(data_dir), subset)
    except DatasetNotFoundError as err:
        if not (download_requested(download) or _sklearn_cached()):
            raise DatasetNotFoundError(f"{err}{download_hint(_SKLEARN_SOURCE)}") from None
        texts, labels = _from_sklearn(subset, download_requested(download))
    texts = strip_posts(texts, remove)
    names = CATEGORIES_20NG
    if chosen is not None:
        wanted = np.array([CATEGORIES_20NG.index(c) for c in chosen])
        keep = np.flatnonzero(np.isin(labels, wanted))
        texts = [texts[i] for i in keep]
        labels = np.searchsorted(wanted, labels[keep]).astype(np.int64)
        names = chosen
    if shuffle:
        order = np.arange(len(labels))
        np.random.RandomState(random_state).shuffle(order)
        texts, labels = [texts[i] for i in order], labels[order]
    return Corpus(texts, labels, names, corpus_name(subset, remove, chosen, shuffle, int(random_state)))


def write_tarball(path: str | os.PathLike, posts: dict[str, dict[str, dict[str, bytes]]]) -> Path:
    """Write a tarball in the bydate layout: ``posts[subset][category][file id] = bytes``.

    For tests and examples (a tiny corpus the readers and scikit-learn both accept).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for subset, groups in posts.items():
            for category, files in groups.items():
                for file_id, payload in files.items():
                    info = tarfile.TarInfo(f"{_SUBSET_FOLDERS[subset]}/{category}/{file_id}")
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
    return path


# --------------------------------------------------------------------------------------------
# the seed notebook's anomaly-detection pool
# --------------------------------------------------------------------------------------------


def notebook_pool(data_dir=None, *, normal: str = "sci.electronics", anomaly: str = "talk.politics.mideast",
                  ratio: float = 0.1, seed: int = 123, remove: Iterable[str] | None = ("headers", "footers"),
                  download: bool = False) -> Corpus:
    """The RSRAE seed notebook's pool (../shared/seeds/000_rsrae_keras_20newsgroups.txt).

    Exactly as the notebook: each class from ``fetch_20newsgroups(subset="all",
    categories=[name], shuffle=True, random_state=seed, remove=remove)``; every ``normal`` post
    plus the first ``int(ratio * n_normal) + 1`` ``anomaly`` posts, normals first; then
    ``sklearn.utils.shuffle(..., random_state=seed)``. Defaults give 984 + 99 = 1083 posts.

    Returns:
        Corpus with ``categories = (normal, anomaly)``, so ``labels`` is the anomaly label
        (1 = anomaly).

    Raises:
        ValueError: unknown or equal categories, ``ratio`` not > 0, or more anomalies asked than
            the class has.
    """
    from sklearn.utils import shuffle as sklearn_shuffle

    (normal_name,), (anomaly_name,) = check_categories([normal], "normal"), check_categories([anomaly], "anomaly")
    if normal_name == anomaly_name:
        raise ValueError(f"anomaly={anomaly!r}: must differ from normal={normal!r}")
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not ratio > 0:
        raise ValueError(f"ratio={ratio!r}: expected a number > 0 (anomalies per normal post)")
    remove = check_remove(remove)
    load = functools.partial(load_20newsgroups, data_dir, subset="all", remove=remove, random_state=seed,
                             download=download)
    normals, anomalies = load(categories=[normal_name]), load(categories=[anomaly_name])
    n_anomaly = int(ratio * len(normals)) + 1
    if n_anomaly > len(anomalies):
        raise ValueError(f"ratio={ratio!r}: asks for {n_anomaly} {anomaly_name} posts, the class has "
                         f"{len(anomalies)}")
    texts = normals.texts + anomalies.texts[:n_anomaly]
    labels = np.r_[np.zeros(len(normals), np.int64), np.ones(n_anomaly, np.int64)]
    order = sklearn_shuffle(np.arange(len(texts)), random_state=seed)
    name = (f"20newsgroups-pool-{normal_name}-vs-{anomaly_name}-r{ratio:g}-{'+'.join(remove) or 'raw'}"
            f"-seed{seed}")
    return Corpus([texts[i] for i in order], labels[order], (normal_name, anomaly_name), name)
