"""Maximal marginal relevance: trade a little relevance for results that are not near-duplicates."""

from __future__ import annotations

import numpy as np

from .ranked import Ranked


def mmr_order(ranked: list[Ranked], vectors: dict[int, np.ndarray], lam: float, k: int) -> list[Ranked]:
    """The k candidates chosen greedily by ``lam * relevance - (1 - lam) * max similarity to those chosen``.

    Relevance is each candidate's current score rescaled to [0, 1] over the candidates (so it
    works after any stage); similarity is the cosine of the chunks' embeddings. Each chosen
    hit records ``scores["mmr"]`` (its marginal value when picked). ``vectors`` maps chunk ids
    to their normalised embeddings; a candidate without one (deleted meanwhile) is dropped.
    """
    if len(ranked) <= 1 or lam >= 1.0:
        return ranked[:k]
    present = [r for r in ranked if r.chunk_id in vectors]
    if not present:
        return []
    emb = np.stack([vectors[r.chunk_id] for r in present])
    scores = np.array([r.score for r in present], dtype=np.float64)
    span = scores.max() - scores.min()
    relevance = (scores - scores.min()) / span if span > 0 else np.ones_like(scores)
    sims = emb @ emb.T
    chosen: list[int] = []
    max_sim = np.full(len(present), -np.inf)
    available = np.ones(len(present), dtype=bool)
    while len(chosen) < min(k, len(present)):
        penalty = np.where(np.isfinite(max_sim), max_sim, 0.0)
        value = lam * relevance - (1 - lam) * penalty
        value[~available] = -np.inf
        pick = int(np.argmax(value))
        present[pick].scores["mmr"] = float(value[pick])
        chosen.append(pick)
        available[pick] = False
        max_sim = np.maximum(max_sim, sims[pick])
    return [present[i] for i in chosen]
