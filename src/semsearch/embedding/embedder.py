"""The Embedder: encodes documents and queries with one model, at the fastest faithful setting.

Every vector leaving this module is float32 and L2-normalised, so scoring is an inner product.
Queries and documents take the light path (:mod:`.light`: no torch) when this machine has
prepared the model and measured that path faithful; otherwise, and on the first run, they go
through sentence-transformers (torch, or its transformer in OpenVINO).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError, ModelMismatchError
from . import models
from .caches import DiskEmbeddingCache, QueryCache, text_key
from .models import DEFAULT_MODEL, EmbedderInfo, canonical_model_name, dimension_of, pick_device

if TYPE_CHECKING:
    from .light import LightEncoder
    from .prepared import PreparedModel
    from .tokens import PlainTokenizer

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
ENGINES = ("auto", "torch", "openvino")
TORCH_BATCH_SIZE = 64


class Embedder:
    """Encodes documents and queries with one sentence-transformers model.

    ``precision="auto"`` with ``engine="auto"`` picks the fastest path that agrees with torch
    fp32: on CUDA, torch in bf16 where the GPU supports it and fp16 otherwise; on CPUs, the
    first of OpenVINO bf16 (CPUs with native bf16: AVX512-BF16 or AMX), OpenVINO fp32, torch
    bf16 autocast, torch fp32 that agrees with torch fp32 to at least 0.999 cosine on a
    calibration set. The choice is measured once per machine and model and cached
    (:mod:`.prepared`). ``precision`` ("fp32", "bf16", "fp16") and ``engine`` ("torch",
    "openvino") force a choice; the other one stays automatic. ``batch_size`` defaults to the
    engine's best (64 for torch; 8 rows per OpenVINO stream).

    Queries and documents of a model this machine has run in OpenVINO before are encoded
    without torch (:mod:`.light`: the same vectors within :data:`.light.TOLERANCE`, measured
    when the recipe was made); everything else, and the first run, loads the model with
    sentence-transformers. Nothing is loaded before it is needed.

    Vectors are cached: queries in memory (``query_cache``, an LRU; 0 turns it off) and
    documents in ``cache`` when one is given (a :class:`DiskEmbeddingCache`, e.g. one per
    collection), both keyed by (model, precision, text), so the same text is never encoded twice.
    ``dimensions`` truncates every vector to its first N components, re-normalised (Matryoshka
    models; :func:`.matryoshka.check_truncation` is the caller's check); cache keys name it.
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
        dimensions: int | None = None,
    ) -> None:
        if dimensions is not None and (type(dimensions) is not int or dimensions < 1):
            raise InvalidInputError(f"dimensions must be a positive whole number, got {dimensions!r}")
        # "auto" can be pinned for a whole machine or run (reproducible vectors, or a test suite run
        # once per precision): $SEMSEARCH_PRECISION and $SEMSEARCH_ENGINE replace it.
        if precision == "auto" and os.environ.get("SEMSEARCH_PRECISION"):
            precision = os.environ["SEMSEARCH_PRECISION"]
            if precision not in PRECISIONS:
                raise InvalidInputError(f"$SEMSEARCH_PRECISION must be one of {', '.join(PRECISIONS)}, got "
                                        f"{precision!r}")
        if engine == "auto" and os.environ.get("SEMSEARCH_ENGINE"):
            engine = os.environ["SEMSEARCH_ENGINE"]
            if engine not in ENGINES:
                raise InvalidInputError(f"$SEMSEARCH_ENGINE must be one of {', '.join(ENGINES)}, got {engine!r}")
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
        self.truncate_dim = dimensions
        # Cache keys name the dimension of truncated vectors (untruncated keys stay as they were).
        self._cache_name = self.name if dimensions is None else f"{self.name}#dim={dimensions}"
        self._precision: str | None = None
        self._engine = "torch"
        self._warned_truncation = False
        self._plain_tokenizer: PlainTokenizer | None = None
        self._prepared_model: PreparedModel | None = None
        self._prepared_read = False
        self._recipe: dict[str, Any] | None = None
        self._light_checked = False
        self._lock = threading.RLock()

    # -- lazy model --------------------------------------------------------------------
    @property
    def model(self) -> Any:
        """The SentenceTransformer (loading it imports torch and sentence-transformers)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    model = models.load_sentence_transformer(self.name, self.device)
                    self._check_dimension(dimension_of(model))
                    self._model = model
        return self._model

    def _check_dimension(self, native: int) -> None:
        if self.truncate_dim is not None and self.truncate_dim > native:
            raise InvalidInputError(
                f"dimensions={self.truncate_dim} is more than {self.name} gives ({native}); use at most {native}"
            )
        dim = self.truncate_dim or native
        if self._expect_dimension is not None and dim != self._expect_dimension:
            raise ModelMismatchError(
                f"model {self.name!r} now gives vectors of dimension {dim}, but the collection holds "
                f"dimension {self._expect_dimension}; restore the original model or index into a new collection"
            )

    # -- what this machine prepared (no torch needed) ------------------------------------
    def _prepared(self) -> PreparedModel | None:
        if not self._prepared_read:
            with self._lock:
                if not self._prepared_read:
                    from .prepared import PreparedModel
                    self._prepared_model = PreparedModel.for_model(self.name, models.model_location(self.name),
                                                                   self.device)
                    self._recipe = self._prepared_model.recipe() if self._prepared_model else None
                    if self._recipe is not None:
                        self._check_dimension(int(self._recipe["dimension"]))
                    self._prepared_read = True
        return self._prepared_model

    def _facts(self) -> dict[str, Any] | None:
        """The prepared recipe, when the model is not loaded: what it says spares loading it."""
        if self._model is not None:
            return None
        self._prepared()
        return self._recipe

    @property
    def model_dimension(self) -> int:
        """The dimension the model itself gives."""
        facts = self._facts()
        return int(facts["dimension"]) if facts else dimension_of(self.model)

    @property
    def dimension(self) -> int:
        """The dimension of the vectors this embedder returns (``dimensions`` when truncating)."""
        return self.truncate_dim or self.model_dimension

    @property
    def max_seq_length(self) -> int:
        facts = self._facts()
        return int(facts["max_seq_length"]) if facts else int(self.model.max_seq_length)

    @property
    def tokenizer(self) -> Any:
        """The model's own tokenizer: encoding only (anything else uses :attr:`plain_tokenizer`)."""
        return self.model.tokenizer

    @property
    def plain_tokenizer(self) -> PlainTokenizer:
        """A private copy of the tokenizer for counting tokens and reading word pieces.

        Calling the model's tokenizer changes its shared padding/truncation settings, so a count
        made while another thread encodes would break that encode (:mod:`.tokens`). Built from
        the prepared recipe when there is one (the same tokenizer, serialised), so hybrid search
        never loads torch for it.
        """
        if self._plain_tokenizer is None:
            with self._lock:
                if self._plain_tokenizer is None:
                    from .tokens import PlainTokenizer

                    facts = self._facts()
                    if facts:
                        self._plain_tokenizer = PlainTokenizer(facts["tokenizer"], unk_token=facts.get("unk_token"))
                    else:
                        self._plain_tokenizer = PlainTokenizer(self.tokenizer)
        return self._plain_tokenizer

    @property
    def prompts(self) -> dict[str, str]:
        facts = self._facts()
        if facts:
            return dict(facts.get("prompts") or {})
        return dict(getattr(self.model, "prompts", {}) or {})

    @property
    def precision(self) -> str:
        """The precision encoding runs at; resolving it calibrates (once per machine and model).

        Nothing is loaded or warmed here: the first encode loads what its kind needs (a process
        that only indexes never builds the query encoder); :meth:`warm` warms ahead of time.
        """
        if self._precision is None:
            with self._lock:
                if self._precision is None:
                    self._engine, self._precision = self._choose()
        return self._precision

    def warm(self, kind: str = "query") -> None:
        """One tiny encode of ``kind`` ("query" or "document"), so the first real one pays no
        first-call cost (model load, allocator growth, kernel selection)."""
        self._encode(["warm up"], kind, self.precision)

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
        native = self.model_dimension
        self._check_dimension(native)
        return EmbedderInfo(self.name, self.truncate_dim or native, self.max_seq_length, self.prompts, self.precision,
                            self.device, self.engine, native)

    def _choose_precision(self) -> str:
        return self._choose()[1]

    def _choose(self) -> tuple[str, str]:
        """(engine, precision): what was asked, else the fastest that agrees with torch fp32."""
        from . import calibration

        return calibration.choose(self._calibration_subject())

    def _calibration_subject(self) -> Any:
        from .calibration import Subject

        return Subject(self.name, self.device, self.requested_engine, self.requested_precision, self._prepared,
                       self._openvino, self._encode)

    def _openvino(self, precision: str) -> Any:
        return models.load_openvino_model(self.name, self.device, precision)

    # -- the light query path ----------------------------------------------------------
    def _light_encoder(self, precision: str, kind: str = "query") -> LightEncoder | None:
        """The torch-free encoder of this model's ``kind`` texts at ``precision``, or None (:func:`.light.for_kind`)."""
        from .light import for_kind

        def recipe() -> dict[str, Any] | None:
            self._prepared()  # reads (or makes) the recipe
            return self._recipe

        full = models.loaded_openvino_model(self.name, self.device, precision) is not None
        return for_kind(self.name, self.device, precision, self.batch_size, full, recipe, kind)

    def query_path(self) -> dict[str, Any]:
        """Which path this model's queries take in a new process on this machine, read from what
        the machine prepared (nothing is loaded, calibrated or measured here).

        Returns ``{"path": "light" | "full", "reason": str}``, plus ``"distance"`` (how far light
        query vectors were measured from the full path's) and ``"tolerance"`` where measured.
        """
        from . import calibration, light

        if self.device != "cpu":
            return {"path": "full", "reason": f"the light path runs on the CPU; this model runs on {self.device}"}
        choice = calibration.recorded(self._calibration_subject())
        prepared = self._prepared()
        if prepared is None:
            return {"path": "full", "reason": "a model given by hub name is not prepared (give a local folder)"}
        if choice is None:
            return {"path": "full", "reason": "not prepared on this machine yet (the next index or search prepares it)"}
        engine, precision = choice
        if engine != "openvino":
            return {"path": "full", "reason": f"the model runs in {engine} here, the light path in OpenVINO"}
        refusal = prepared.refusal()
        distance = light.measured(prepared.recipe(), "query").get(precision)  # this process may have measured it
        if distance is None:
            reason = refusal or "not prepared on this machine yet (the next index or search prepares it)"
            return {"path": "full", "reason": reason}
        out = {"distance": distance, "tolerance": light.TOLERANCE}
        if distance <= light.TOLERANCE:
            return {"path": "light", "reason": f"torch-free OpenVINO {precision}, measured faithful", **out}
        return {"path": "full", "reason": f"the light path differs from the full path by {distance:.2g} "
                                          f"(more than {light.TOLERANCE:g})", **out}

    def _prepare_light_path(self, precision: str) -> None:
        prepared = self._prepared()
        ov = self._openvino(precision)
        if prepared is not None and ov is not None and self._model is not None:
            from .light import prepare_recipe

            prepare_recipe(self.name, self._model, ov, prepared, precision, self.batch_size or ov.batch_size)

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

    def encode_sentences(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised float32 embeddings of short texts compared with a query (an answer's sentences), encoded as
        queries: no model load where the light path is prepared; not cached, no truncation warning."""
        return self._encode(texts, "query", self.precision)

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
        keys = [text_key(self._cache_name, self.path, kind, t) for t in texts]
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
        if len(texts) == 0:
            return np.empty((0, self.dimension), dtype=np.float32)
        engine = engine or self._engine
        if engine == "openvino":
            light = self._light_encoder(precision, kind)
            if light is not None:
                return self._finish(light.encode(texts, show_progress))
        import torch

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
        if engine == "openvino" and precision == self._precision and not self._light_checked:
            with self._lock:  # the first full-path encode at the chosen precision records the light recipe
                if not self._light_checked:
                    self._light_checked = True
                    self._prepare_light_path(precision)
        return self._finish(vectors)

    def _finish(self, vectors: Any) -> np.ndarray:
        """Unit vectors, truncated to ``dimensions`` first when truncating (Matryoshka)."""
        if self.truncate_dim is not None:  # never more than the model gives: _check_dimension saw to it
            vectors = np.asarray(vectors, dtype=np.float32)[:, : self.truncate_dim]
        return _unit(vectors)

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


def _unit(vectors: Any) -> np.ndarray:
    # Normalise in float32 after autocast, so every vector has unit length exactly.
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    return vectors / norms
