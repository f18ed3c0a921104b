"""Cross-encoder reranking: a (query, passage) model reads both texts together and scores them.

Any sentence-transformers ``CrossEncoder`` name or path works, e.g.
``cross-encoder/ms-marco-MiniLM-L-6-v2``; models are loaded once per process and reused.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .ranked import Ranked

_models: dict[tuple[str, str | None], Any] = {}
_models_lock = threading.Lock()


def load_cross_encoder(name: str, device: str | None = None) -> Any:
    """A sentence_transformers.CrossEncoder, cached by (name, device).

    Raises:
        InvalidInputError: the model cannot be found or loaded (the message says which).
    """
    key = (name, device)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            from sentence_transformers import CrossEncoder

            try:
                model = CrossEncoder(name, device=device)
            except Exception as exc:  # OSError, ValueError, hub errors: all mean "cannot load this"
                raise InvalidInputError(
                    f"cannot load the cross-encoder {name!r} ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}); "
                    "give a CrossEncoder model name available offline or a local folder"
                ) from None
            _models[key] = model
    return model


def rerank_heads(
    model: Any, texts: Sequence[str], heads: list[list[Ranked]], passages: dict[int, str], batch_size: int = 32
) -> list[list[Ranked]]:
    """Each query's candidates reordered by cross-encoder score; candidates without a passage
    (deleted meanwhile) are dropped.

    Every (query, passage) pair of the batch goes through ``model.predict`` in one call. Each
    candidate's score becomes the cross-encoder's, stored as ``scores["rerank"]`` (with its
    rank, and the score it came with as ``scores["first_stage"]``).
    """
    pairs, owners = [], []
    for qi, rs in enumerate(heads):
        for r in rs:
            text = passages.get(r.chunk_id)
            if text is not None:
                pairs.append((texts[qi], text))
                owners.append(r)
    if pairs:
        scores = model.predict(pairs, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
        for r, s in zip(owners, np.asarray(scores).reshape(len(pairs), -1)[:, 0].tolist()):
            r.scores["first_stage"] = r.score
            r.scores["rerank"] = float(s)
            r.score = float(s)
    out = []
    for rs in heads:
        scored = sorted((r for r in rs if "rerank" in r.scores), key=lambda r: -r.score)
        for rank, r in enumerate(scored, 1):
            r.scores["rerank_rank"] = float(rank)
        out.append(scored)
    return out
