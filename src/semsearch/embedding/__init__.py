"""Embedding models: resolution, engines (torch, OpenVINO), the light query path, caches, tokens.

``from semsearch.embedding import Embedder`` is all most callers need. Importing this package
imports numpy and nothing heavier: torch and sentence-transformers are loaded when a model is,
and a query of a model this machine has prepared never loads them (:mod:`.light`).
"""

from __future__ import annotations

from .embedder import ENGINES, PRECISIONS, TORCH_BATCH_SIZE, Embedder, EmbedderInfo
from .models import (
    DEFAULT_MODEL,
    canonical_model_name,
    cpu_has_fast_bf16,
    cuda_precision,
    load_openvino_model,
    load_sentence_transformer,
    model_location,
    pick_device,
)

__all__ = [
    "DEFAULT_MODEL",
    "ENGINES",
    "PRECISIONS",
    "TORCH_BATCH_SIZE",
    "Embedder",
    "EmbedderInfo",
    "canonical_model_name",
    "cpu_has_fast_bf16",
    "cuda_precision",
    "load_openvino_model",
    "load_sentence_transformer",
    "model_location",
    "pick_device",
]
