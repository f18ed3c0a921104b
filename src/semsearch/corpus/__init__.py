"""Know your collection: more like this, near-duplicates, topics and a 2-D map.

Pure functions over arrays (:mod:`.duplicates`, :mod:`.topics`, :mod:`.labels`,
:mod:`.projection`), and the collection-level operations built on them (:mod:`.explore`),
which read a collection only through :mod:`.reads`.
"""

from __future__ import annotations

from .explore import assign_topics, duplicates, similar, topics
from .near_duplicates import DuplicateGroup, near_duplicate_groups, similar_pairs
from .topic_model import Topic, find_topics
from .vectors import CorpusVectors, mean_document_vectors

__all__ = [
    "CorpusVectors",
    "DuplicateGroup",
    "Topic",
    "assign_topics",
    "duplicates",
    "find_topics",
    "mean_document_vectors",
    "near_duplicate_groups",
    "similar",
    "similar_pairs",
    "topics",
]
