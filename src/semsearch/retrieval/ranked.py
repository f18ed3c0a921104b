"""A document on its way through the ranking stages (the data every stage takes and returns)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Ranked:
    """A document on its way through the stages: its chosen chunk and every stage's scores."""

    doc_id: str
    chunk_id: int
    score: float
    scores: dict[str, float] = field(default_factory=dict)


__all__ = ["Ranked"]
