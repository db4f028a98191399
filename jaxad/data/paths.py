"""Where datasets and caches live.

The data dir holds the raw files in the layout of the project's shared data folder::

    <data_dir>/fashion_mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
    <data_dir>/ecg5000/ecg.csv
    <data_dir>/adbench_classical/<n>_<name>.npz      (keys X, y)
    <data_dir>/adbench_nlp_by_bert/<name>.npz
    <data_dir>/kddcup99/kddcup.data_10_percent.gz
    <data_dir>/20newsgroups/20news-bydate.tar.gz

It is chosen by, in order: an explicit ``data_dir`` argument (the CLI's ``--data-dir``), the
``JAXAD_DATA_DIR`` environment variable. It is only read, never written: prepared tfds data and
other caches go to ``cache_dir()`` (``JAXAD_CACHE_DIR``, default ``~/.cache/jaxad``).

Downloads (opt-in: ``download=True``, the CLI's ``--download`` or ``JAXAD_DOWNLOAD=1``) go to
``cache_dir("data")`` in the same layout. ``locate_files`` looks up a dataset's files in that
order: the data dir, then the download cache, then (only if asked) a download into the cache.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

ENV_DATA_DIR = "JAXAD_DATA_DIR"
ENV_CACHE_DIR = "JAXAD_CACHE_DIR"
ENV_DOWNLOAD = "JAXAD_DOWNLOAD"
_TRUTHY = ("1", "true", "yes", "on")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are neither in the data dir nor obtainable offline."""


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The data dir from the argument, else ``$JAXAD_DATA_DIR``, else None."""
    chosen = data_dir if data_dir is not None else os.environ.get(ENV_DATA_DIR) or None
    if chosen is None:
        return None
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise DatasetNotFoundError(
            f"data_dir: {str(path)!r} is not a directory (set --data-dir or {ENV_DATA_DIR} "
            "to the folder that holds fashion_mnist/, ecg5000/, adbench_classical/ ...)"
        )
    return path


def cache_dir(*parts: str, create: bool = True) -> Path:
    """A writable cache folder (``$JAXAD_CACHE_DIR`` or ``~/.cache/jaxad``), created on demand.

    With ``create=False`` only the path is computed (for look-ups that must not write anything).
    """
    root = Path(os.environ.get(ENV_CACHE_DIR) or Path.home() / ".cache" / "jaxad").expanduser()
    path = root.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def download_cache_dir(create: bool = False) -> Path:
    """Where downloaded raw files go: ``cache_dir("data")``, in the data-dir layout."""
    return cache_dir("data", create=create)


def download_requested(download: bool = False) -> bool:
    """``download``, or ``$JAXAD_DOWNLOAD`` set to 1 / true / yes / on (case-insensitive)."""
    return bool(download) or os.environ.get(ENV_DOWNLOAD, "").strip().lower() in _TRUTHY


def not_found_message(dataset: str, root: Path | None, relpaths: list[str]) -> str:
    """The "which files to put where" part of a DatasetNotFoundError message."""
    if root is None:
        return (
            f"dataset {dataset!r} needs local files and no data dir is set: pass --data-dir DIR "
            f"(or data_dir=...) or set {ENV_DATA_DIR}, with these files under it: "
            + ", ".join(relpaths)
        )
    missing = [str(root / rel) for rel in relpaths if not (root / rel).is_file()]
    return (
        f"dataset {dataset!r}: missing file(s) {', '.join(missing)}; put them under "
        f"{root} as " + ", ".join(relpaths)
    )


def download_hint(source_host: str | None) -> str:
    """The "or download it" part of a DatasetNotFoundError message ('' without a source)."""
    if not source_host:
        return ""
    return (
        f"; or pass --download (download=True, or set {ENV_DOWNLOAD}=1) to fetch them from the "
        f"official source ({source_host}) into {download_cache_dir()}"
    )


def locate_files(
    dataset: str,
    data_dir: str | os.PathLike | None,
    relpaths: list[str],
    *,
    download: bool = False,
    fetch: Callable[[list[str]], list[Path]] | None = None,
    source_host: str | None = None,
) -> list[Path]:
    """Absolute paths of a dataset's files (``relpaths`` in the data-dir layout), in this order:

    1. the data dir (``data_dir`` or ``$JAXAD_DATA_DIR``) if it holds all of them;
    2. the download cache (``cache_dir("data")``) if an earlier download put them all there;
    3. only if ``download_requested(download)`` and a ``fetch`` is given: ``fetch(relpaths)``,
       which downloads the files into the cache and returns their paths;
    4. else a ``DatasetNotFoundError``, raised at once (no network, nothing written), naming which
       files to put where and, when there is a ``fetch``, that ``--download`` gets them from
       ``source_host``.

    Raises:
        DatasetNotFoundError: as in 4, or the data dir given is not a directory.
    """
    root = resolve_data_dir(data_dir)
    for base in (root, download_cache_dir()):
        if base is not None and all((base / rel).is_file() for rel in relpaths):
            return [base / rel for rel in relpaths]
    if fetch is not None and download_requested(download):
        return fetch(relpaths)
    hint = download_hint(source_host) if fetch is not None else ""
    raise DatasetNotFoundError(not_found_message(dataset, root, relpaths) + hint)
