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
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_DATA_DIR = "JAXAD_DATA_DIR"
ENV_CACHE_DIR = "JAXAD_CACHE_DIR"


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


def cache_dir(*parts: str) -> Path:
    """A writable cache folder (``$JAXAD_CACHE_DIR`` or ``~/.cache/jaxad``), created on demand."""
    root = Path(os.environ.get(ENV_CACHE_DIR) or Path.home() / ".cache" / "jaxad").expanduser()
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def require_files(dataset: str, data_dir: str | os.PathLike | None, relpaths: list[str]) -> list[Path]:
    """Absolute paths of ``relpaths`` under the data dir; raise at once naming what to put where."""
    root = resolve_data_dir(data_dir)
    if root is None:
        raise DatasetNotFoundError(
            f"dataset {dataset!r} needs local files and no data dir is set: pass --data-dir DIR "
            f"(or data_dir=...) or set {ENV_DATA_DIR}, with these files under it: "
            + ", ".join(relpaths)
        )
    paths = [root / rel for rel in relpaths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"dataset {dataset!r}: missing file(s) {', '.join(missing)}; put them under "
            f"{root} as " + ", ".join(relpaths)
        )
    return paths
