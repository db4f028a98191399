"""The data layer: named datasets (``DATASETS``, ``load_split``) and anomaly-detection splits."""

from jaxad.data.download import DownloadError
from jaxad.data.paths import DatasetNotFoundError, cache_dir, resolve_data_dir
from jaxad.data.registry import BUILTIN, DATASETS, get_spec, load_split, read_raw
from jaxad.data.splits import (ADSplit, adbench_split, class_split, contaminated_split,
                               holdout_one_class_split, one_class_split)

__all__ = ["ADSplit", "BUILTIN", "DATASETS", "DatasetNotFoundError", "DownloadError", "adbench_split", "cache_dir",
           "class_split", "contaminated_split", "get_spec", "holdout_one_class_split", "load_split",
           "one_class_split", "read_raw", "resolve_data_dir"]
