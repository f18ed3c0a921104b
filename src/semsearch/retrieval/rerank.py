"""Cross-encoder reranking: a (query, passage) model reads both texts together and scores them.

Any sentence-transformers ``CrossEncoder`` name or path works, e.g.
``cross-encoder/ms-marco-MiniLM-L-6-v2``; models are loaded once per process and reused.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError

if TYPE_CHECKING:
    from ..collection import Collection
    from .search import Ranked

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
                    f"cannot load the cross-encoder {name!r} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                    "give a CrossEncoder model name available offline or a local folder"
                ) from None
            _models[key] = model
    return model


def rerank_ranked(
    col: Collection, texts: list[str], ranked: list[list[Ranked]], model_name: str, top: int, batch_size: int = 32
) -> None:
    """Reorder each query's top ``top`` candidates by cross-encoder score, in place.

    Every (query, passage) pair of the batch goes through the model in one ``predict`` call.
    The reranked candidates come first (by cross-encoder score, stored as ``scores["rerank"]``
    and ``Hit.score``); candidates beyond ``top`` follow in their first-stage order.
    """
    model = load_cross_encoder(model_name, getattr(col.embedder, "device", None))
    heads = [rs[:top] for rs in ranked]
    chunks = col.store.chunks(sorted({r.chunk_id for rs in heads for r in rs}))
    pairs, owners = [], []
    for qi, rs in enumerate(heads):
        for r in rs:
            c = chunks.get(r.chunk_id)
            if c is not None:
                pairs.append((texts[qi], c.text))
                owners.append(r)
    if not pairs:
        return
    scores = model.predict(pairs, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
    for r, s in zip(owners, scores.reshape(len(pairs), -1)[:, 0].tolist()):
        r.scores["first_stage"] = r.score
        r.scores["rerank"] = float(s)
        r.score = float(s)
    for qi, rs in enumerate(heads):
        scored = [r for r in rs if "rerank" in r.scores]
        scored.sort(key=lambda r: -r.score)
        for rank, r in enumerate(scored, 1):
            r.scores["rerank_rank"] = float(rank)
        ranked[qi] = scored + ranked[qi][top:]
