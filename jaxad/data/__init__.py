"""The data layer: named datasets (``DATASETS``, ``load_split``), anomaly-detection splits, and
text corpora with their embedders (``load_20newsgroups``, ``jaxad.data.embed.embed``)."""

from jaxad.data.download import DownloadError
from jaxad.data.embed import EMBEDDERS  # the function: jaxad.data.embed.embed (the module keeps its name)
from jaxad.data.paths import DatasetNotFoundError, cache_dir, resolve_data_dir
from jaxad.data.registry import BUILTIN, DATASETS, get_spec, load_split, read_raw
from jaxad.data.splits import (ADSplit, adbench_split, class_split, contaminated_split,
                               holdout_one_class_split, one_class_split)
from jaxad.data.text import CATEGORIES_20NG, Corpus, load_20newsgroups

__all__ = ["ADSplit", "BUILTIN", "DATASETS", "DatasetNotFoundError", "DownloadError", "adbench_split", "cache_dir",
           "class_split", "contaminated_split", "get_spec", "holdout_one_class_split", "load_split",
           "one_class_split", "read_raw", "resolve_data_dir", "CATEGORIES_20NG", "Corpus", "EMBEDDERS",
           "load_20newsgroups"]
