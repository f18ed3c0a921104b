"""Adapt an embedding model to your documents: fine-tuning with sentence-transformers' trainer.

``finetune(train, out)`` trains on a pairs/triplets file, a BEIR dataset, or (label-free) a
collection's own text, measures the base and the fine-tuned model on held-out queries with
:mod:`semsearch.evaluation`, and writes a model folder that ``Collection(path, model=out)``
accepts. Heavy libraries (torch, transformers, datasets) load only when a run starts.
"""

from __future__ import annotations

from .card import CARD_JSON, read_card
from .run import FinetuneResult, finetune

__all__ = ["CARD_JSON", "FinetuneResult", "finetune", "read_card"]
