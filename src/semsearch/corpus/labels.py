"""Readable topic labels: the most distinctive words of each cluster by class-based TF-IDF.

Words are the collection's own lexical tokens (:func:`semsearch.lexical.tokenize`:
case-folded, Latin/Greek accents removed, CJK as character bigrams), so a label reads like what
BM25 matches. Stop words come from the ``stop-words`` package (its lists for the languages
written with spaces between words, tokenized the same way); a topic's language is the one
whose stop words make up most of its tokens (a whole topic says it far more reliably than one
short document), and only the stop words of the language(s) it is written in are removed from
it ("die" stays a word in an English topic and goes in a German one).

c-TF-IDF (BERTopic's formula, in our own code): for word t and cluster c,
``tf(t, c) / |c| * log(1 + A / f(t))`` where ``tf`` counts t in the cluster's documents,
``|c|`` is the cluster's word count, ``A`` the mean word count per cluster and ``f(t)`` the
count of t in the whole corpus. A word must occur in at least two documents of its cluster
(when the cluster has two) so one long document's pet word does not name a topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

# Languages of the stop-words package written with spaces between words (its CJK lists are
# single characters, which our bigram tokens never equal).
STOP_WORD_LANGUAGES = (
    "arabic", "bulgarian", "catalan", "czech", "danish", "dutch", "english", "finnish", "french", "german",
    "greek", "hebrew", "hindi", "hungarian", "indonesian", "italian", "malaysian", "norwegian", "persian", "polish",
    "portuguese", "romanian", "russian", "slovak", "spanish", "swedish", "turkish", "ukrainian",
)


@lru_cache(maxsize=1)
def stop_words() -> dict[str, frozenset[str]]:
    """Stop words per language, as lexical tokens (empty when ``stop-words`` is not installed)."""
    from ..lexical import tokenize

    try:
        from stop_words import StopWordError, get_stop_words
    except ImportError:  # pragma: no cover - a declared dependency; labels then keep function words
        return {}
    out: dict[str, frozenset[str]] = {}
    for lang in STOP_WORD_LANGUAGES:
        try:
            words = get_stop_words(lang)
        except StopWordError:  # a list missing from this version of the package: that language keeps them
            words = []
        tokens = set()
        for w in words:
            tokens.update(tokenize(w))
        out[lang] = frozenset(tokens)
    return out


def _is_word(token: str) -> bool:
    # Numbers and single letters say nothing about a topic.
    return len(token) > 1 and not token.isdigit()


def document_terms(texts: Sequence[str]) -> tuple[list[str], Any]:
    """(vocabulary, sparse document x word count matrix) of the texts' lexical tokens (numbers and single letters
    left out)."""
    from scipy import sparse

    from ..lexical import tokenize

    vocab: dict[str, int] = {}
    indptr: list[int] = [0]
    indices: list[int] = []
    for text in texts:
        indices.extend(vocab.setdefault(tok, len(vocab)) for tok in tokenize(text))
        indptr.append(len(indices))
    counts = sparse.csr_matrix(
        (np.ones(len(indices), dtype=np.float32), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
        shape=(len(texts), len(vocab)),
    )
    counts.sum_duplicates()
    words = list(vocab)
    # Filter once per distinct word rather than once per occurrence.
    keep = np.flatnonzero([_is_word(w) for w in words])
    return [words[i] for i in keep], counts[:, keep].tocsr()


def stop_word_mask(words: Sequence[str], class_counts: np.ndarray) -> np.ndarray:
    """(classes x words) True where a word is a stop word of a language its class is written in.

    A class is in every language whose stop words make up at least 80% as many of its tokens as
    the best language's do (so a topic half German, half English loses both kinds). The bar is
    high because the lists overlap: the package's Slovak list holds "the" and "on", and makes up
    38% of English text's stop-word hits (msmarco passages).
    """
    lists = stop_words()
    mask = np.zeros(class_counts.shape, dtype=bool)
    if not lists or not len(words):
        return mask
    member = np.array([[w in stops for stops in lists.values()] for w in words], dtype=np.float32)  # words x languages
    hits = class_counts @ member  # classes x languages
    best = hits.max(axis=1, keepdims=True)
    present = (hits >= 0.8 * best) & (best > 0)
    return (present.astype(np.float32) @ member.T) > 0


def distinctive_words(
    texts: Sequence[str], labels: np.ndarray, n_clusters: int, top: int = 8
) -> list[list[tuple[str, float]]]:
    """For each cluster 0..n_clusters-1, its ``top`` words by c-TF-IDF with their scores (best first)."""
    from scipy import sparse

    labels = np.asarray(labels, dtype=np.int64)
    words, counts = document_terms(texts)
    if not words:
        return [[] for _ in range(n_clusters)]
    members = sparse.csr_matrix(
        (np.ones(len(labels), dtype=np.float32), (labels, np.arange(len(labels)))), shape=(n_clusters, len(labels))
    )
    tf = np.asarray((members @ counts).todense(), dtype=np.float64)  # cluster x word counts
    tf[stop_word_mask(words, tf)] = 0.0
    present = counts.copy()
    present.data[:] = 1.0
    doc_freq = np.asarray((members @ present).todense())  # documents of the cluster holding the word
    sizes = np.bincount(labels, minlength=n_clusters)
    words_per_cluster = tf.sum(axis=1, keepdims=True)
    average = max(float(words_per_cluster.mean()), 1.0)
    idf = np.log1p(average / np.maximum(tf.sum(axis=0), 1.0))
    scores = tf / np.maximum(words_per_cluster, 1.0) * idf
    shared = np.where(doc_freq >= np.minimum(2, sizes)[:, None], scores, 0.0)
    out = []
    for c in range(n_clusters):
        # Words shared by two documents of the cluster, unless no word is.
        row = shared[c] if shared[c].any() else scores[c]
        best = np.argsort(-row, kind="stable")[:top]
        out.append([(words[w], float(row[w])) for w in best if row[w] > 0])
    return out
