"""The light path: queries and documents encoded without torch or sentence-transformers.

Importing torch and sentence-transformers and loading the model costs several seconds and
~500 MB per process, which is most of what a one-shot ``semsearch search`` used to cost (and
a good part of a ``semsearch index``). Once a model has run in OpenVINO on this machine,
encoding needs only three things, all prepared by that first run and cached (:mod:`.prepared`):

* the model's own tokenizer, serialised from the loaded model (``tokenizers``, the Rust
  library transformers' fast tokenizers are built on), with the same truncation and padding;
* the converted OpenVINO model (:class:`.openvino_engine.Runner`), fed the same batches in the
  same order; for queries compiled for latency (one query on all cores, less memory) where that
  gives the full path's vectors, else with the full path's own settings; for documents for
  throughput, the batches pipelined over the streams;
* the model's pooling and normalisation, in numpy.

The first run measures how far the light path's query and document vectors are from
sentence-transformers' ``encode_query``/``encode_document`` on a set of test texts (scripts,
lengths, truncation, several batches) and records it with the recipe, once per model and
machine; each kind takes the light path while that distance is within :data:`TOLERANCE`.
Models with modules it does not reproduce (a Dense layer, prompt-excluding or last-token
pooling, query expansion...) get no recipe, a recorded reason, and keep the full path.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .prepared import PreparedModel

log = logging.getLogger(__name__)

# The largest distance allowed between a light and a full-path vector (both unit vectors); a
# score moves by at most this much. Chosen from what rankings need (bench/RESULTS.md, issue 27,
# bench_light_tolerance.py on msmarco-5k, 500 queries, the default and a fine-tuned MiniLM):
# query vectors moved by 1e-3 keep 99.94% of top-10 hits and the exact top-10 order of 97% of
# queries, and 1e-3 is a fifth of how far the default bf16 path already is from torch fp32
# (median 0.005, which reorders the top 10 of 14-16% of queries). The light path measures
# ~1e-7 (pooling sums in another order).
TOLERANCE = 1e-3
POOLING_MODES = ("mean", "mean_sqrt_len_tokens", "cls", "max")
# The inputs a tokenizer gives, by the names models take them under.
_INPUTS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
CHECK_QUERIES = [
    "affordable accommodation near the beach",
    "how long to boil an egg",
    "x",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "東京は日本の首都です。",
    "SELECT id, name FROM users WHERE age > 30;",
    "What did the Apollo 11 mission achieve, and who walked on the Moon first? " * 30,  # truncated
    "error: could not open file 'config.yaml' (permission denied)",
    "Photosynthesis converts light energy into chemical energy",
    "budget lodging",
    "why is the sky blue",
    "Budget-friendly lodging by the coast, five minutes from the sand.",
]


class LightEncoder:
    """Encodes as ``SentenceTransformer.encode_query`` (``kind="query"``) or ``encode_document``
    (``kind="document"``) does, from a prepared recipe.

    ``runner`` is a compiled :class:`.openvino_engine.Runner` of the recipe's IR at the recipe's
    precision (one is compiled when not given: for queries with the recipe's hint, for documents
    for throughput). ``piece`` and ``split`` mirror the OpenVINO encoder of the full path:
    inputs longer than ``piece`` texts are cut into batches by token count
    (:func:`.openvino_engine.batches_by_tokens`), each batch whole on one stream, so every batch
    holds the texts it holds there (bf16 results depend slightly on which texts share a batch).
    Those batches are pipelined: while the model computes some, the next are padded and the
    finished ones pooled, in this thread.
    """

    def __init__(self, recipe: dict[str, Any], precision: str, batch_size: int, runner: Any = None,
                 kind: str = "query") -> None:
        from tokenizers import Tokenizer

        from . import openvino_engine

        self.recipe = recipe
        self.batch_size = batch_size
        self.tokenizer = Tokenizer.from_str(recipe["tokenizer"])
        self.tokenizer.enable_truncation(
            max_length=int(recipe["max_seq_length"]), strategy="longest_first", direction=recipe["truncation_side"]
        )
        # Large inputs are tokenised many batches at a time (one call into the Rust library is far
        # cheaper than one per batch of 8) without padding, and each batch padded here as the
        # tokenizer pads: to its longest text.
        self._unpadded = Tokenizer.from_str(self.tokenizer.to_str())
        self._unpadded.no_padding()  # a serialised tokenizer may carry its own padding setting
        self.tokenizer.enable_padding(
            direction=recipe["padding_side"], pad_id=int(recipe["pad_id"]), pad_type_id=int(recipe["pad_type_id"]),
            pad_token=recipe["pad_token"],
        )
        if runner is None:
            hint = recipe.get("hint", "THROUGHPUT") if kind == "query" else "THROUGHPUT"
            runner = openvino_engine.Runner(recipe["ir"], precision, openvino_engine.token_table(recipe["ir"]),
                                            hint=hint)
        self.runner = runner
        missing = [name for name in self.runner.wants if name not in _INPUTS]
        if missing:
            raise ValueError(f"the model takes inputs a tokenizer does not give: {missing}")
        self.piece = batch_size * openvino_engine.OpenVINOEncoder.PIECE_BATCHES
        self.prompt = (recipe.get("query_prompt") if kind == "query" else recipe.get("document_prompt")) or ""
        self.modes = [recipe["pooling"]] if isinstance(recipe["pooling"], str) else list(recipe["pooling"])
        self._key: Any = None

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """The embeddings, float32, (len(texts), dimension); normalised only if the model does."""
        texts = list(texts)
        if len(texts) <= self.piece:
            return self._encode_sorted(texts, split=None)
        from .openvino_engine import batches_by_tokens

        # As OpenVINOEncoder: batches by token count, from the same key, so each batch holds the
        # texts it holds there. The whole input is tokenised in one call into the Rust library
        # (far cheaper than one per batch of 8), without padding; each batch is padded here.
        encode = getattr(self._unpadded, "encode_batch_fast", self._unpadded.encode_batch)  # no offsets needed
        prepared = [self._prepare(t) for t in texts]
        encodings = encode(prepared)
        if prepared == texts:  # no prompt, no lowercasing: the key is the inputs' own length
            lengths = [len(e.ids) for e in encodings]
        else:
            lengths = self._length_key()(texts)
        batches = batches_by_tokens(lengths, self.batch_size)
        out = np.empty((len(texts), int(self.recipe["dimension"])), dtype=np.float32)
        masks: deque[np.ndarray] = deque()

        def inputs() -> Iterator[dict[str, np.ndarray]]:
            for batch in batches:
                arrays, mask = self._padded([encodings[i] for i in batch])
                masks.append(mask)
                yield arrays

        bar = _progress_bar(len(texts)) if show_progress else None
        try:
            for batch, tokens in zip(batches, self.runner.stream(inputs())):
                out[batch] = self._pool(tokens, masks.popleft())
                if bar is not None:
                    bar.update(len(batch))
        finally:
            if bar is not None:
                bar.close()
        return out

    def _length_key(self) -> Any:
        if self._key is None:
            from .openvino_engine import LengthKey

            self._key = LengthKey(self.recipe["tokenizer"], int(self.recipe["max_seq_length"]))
        return self._key

    def _encode_sorted(self, texts: list[str], split: int | None) -> np.ndarray:
        # sentence-transformers' own order: numpy's argsort of negative character lengths.
        order = np.argsort([-len(t) for t in texts])
        rows: list[np.ndarray] = []
        for start in range(0, len(texts), self.batch_size):
            arrays, mask = self._tokenize([texts[i] for i in order[start : start + self.batch_size]])
            rows.extend(self._pool(self.runner(arrays, split=split), mask))
        vectors = np.empty((len(texts), len(rows[0])), dtype=np.float32)
        vectors[order] = np.asarray(rows, dtype=np.float32)
        return vectors

    def _tokenize(self, texts: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(the model's inputs, the attention mask) of one batch."""
        encodings = self.tokenizer.encode_batch([self._prepare(t) for t in texts])
        arrays = {name: np.array([getattr(e, _INPUTS[name]) for e in encodings], dtype=np.int64)
                  for name in self.runner.wants}
        mask = arrays.get("attention_mask")
        if mask is None:
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return arrays, mask

    def _padded(self, encodings: list[Any]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(the model's inputs, the attention mask) of unpadded encodings, padded to the longest
        exactly as the tokenizer's own padding does."""
        width = max(len(e.ids) for e in encodings)
        shape = (len(encodings), width)
        ids = np.full(shape, int(self.recipe["pad_id"]), dtype=np.int64)
        types = np.full(shape, int(self.recipe["pad_type_id"]), dtype=np.int64)
        mask = np.zeros(shape, dtype=np.int64)
        left = self.recipe["padding_side"] == "left"
        for row, e in enumerate(encodings):
            where = slice(width - len(e.ids), width) if left else slice(0, len(e.ids))
            ids[row, where] = e.ids
            types[row, where] = e.type_ids
            mask[row, where] = e.attention_mask
        given = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}
        return {name: given[name] for name in self.runner.wants}, mask

    def _prepare(self, text: str) -> str:
        text = self.prompt + text
        return text.lower() if self.recipe.get("lowercase") else text

    def _pool(self, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Pooling as sentence-transformers' Pooling module, then its Normalize module if the model has one."""
        tokens = tokens.astype(np.float32, copy=False)
        parts = []
        for mode in self.modes:
            if mode == "cls":
                first = mask.argmax(axis=1)
                parts.append(tokens[np.arange(len(tokens)), first])
            elif mode == "max":
                masked = np.where(mask[..., None] == 0, np.float32(-np.inf), tokens)
                parts.append(masked.max(axis=1))
            else:  # mean, mean_sqrt_len_tokens
                weights = mask[..., None].astype(np.float32)
                total = (tokens * weights).sum(axis=1, dtype=np.float32)
                count = np.maximum(weights.sum(axis=1, dtype=np.float32), np.float32(1e-9))
                parts.append(total / (count if mode == "mean" else np.sqrt(count)))
        pooled = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
        if self.recipe.get("normalize"):
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            pooled = pooled / np.maximum(norms, np.float32(1e-12))
        return pooled.astype(np.float32, copy=False)


def recipe_of(st_model: Any, ir_path: str, dimension: int) -> tuple[dict[str, Any] | None, str]:
    """The light recipe of a loaded SentenceTransformer whose transformer runs from ``ir_path``.

    Returns (recipe, "") or (None, the reason the light path cannot reproduce this model).
    """
    modules = list(st_model.children())
    kinds = [type(m).__name__ for m in modules]
    if len(modules) < 2 or kinds[1] != "Pooling" or kinds[2:] not in ([], ["Normalize"]):
        return None, f"modules {kinds} (only a transformer, pooling and an optional Normalize are reproduced)"
    first, pooling = modules[0], modules[1]
    tokenizer = getattr(first, "tokenizer", None)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if tokenizer is None or backend is None:
        return None, "no fast (Rust) tokenizer"
    for attribute in ("query_expansion", "query_length"):
        if getattr(first, attribute, None) is not None:
            return None, f"the transformer sets {attribute}"
    if getattr(first, "processing_kwargs", None):
        return None, "the transformer has processing_kwargs"
    mode = pooling.pooling_mode
    modes = [mode] if isinstance(mode, str) else list(mode)
    if not modes or any(m not in POOLING_MODES for m in modes):
        return None, f"pooling {mode!r}"
    prompts = dict(getattr(st_model, "prompts", {}) or {})
    default = getattr(st_model, "default_prompt_name", None)
    query_prompt = prompts["query"] if "query" in prompts else (prompts.get(default) if default else None)
    document_prompt = next((prompts[n] for n in ("document", "passage", "corpus") if n in prompts),
                           prompts.get(default) if default else None)
    if (query_prompt or document_prompt) and not getattr(pooling, "include_prompt", True):
        return None, "pooling excludes the prompt"
    pad_id = getattr(tokenizer, "pad_token_id", None)
    if pad_id is None:
        return None, "the tokenizer has no padding token"
    unk = getattr(tokenizer, "unk_token", None)
    recipe = {
        "tokenizer": backend.to_str(),
        "unk_token": unk if isinstance(unk, str) else None,
        "max_seq_length": int(st_model.max_seq_length),
        "truncation_side": getattr(tokenizer, "truncation_side", "right"),
        "padding_side": getattr(tokenizer, "padding_side", "right"),
        "pad_id": int(pad_id),
        "pad_type_id": int(getattr(tokenizer, "pad_token_type_id", 0) or 0),
        "pad_token": str(tokenizer.pad_token),
        "lowercase": bool(getattr(first, "do_lower_case", False)),
        "query_prompt": query_prompt,
        "document_prompt": document_prompt,
        "prompts": prompts,
        "pooling": modes if len(modes) > 1 else modes[0],
        "normalize": kinds[2:] == ["Normalize"],
        "dimension": int(dimension),
        "ir": str(Path(ir_path).resolve()),
    }
    return recipe, ""


def largest_distance(light: np.ndarray, full: np.ndarray) -> float:
    """The largest Euclidean distance between matching vectors of two sets, each normalised first.

    It bounds what the difference can do to a ranking: a score (inner product with a unit
    vector) moves by at most this much, so only hits whose scores are closer than twice it can
    swap places.
    """

    def unit(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    return float(np.max(np.linalg.norm(unit(light) - unit(full), axis=1))) if len(light) else 0.0


# Light encoders per (model, device, precision, batch size, kind), or None where there is no checked recipe.
_encoders: dict[tuple[str, str, str, int, str], LightEncoder | None] = {}
_encoders_lock = threading.Lock()
_building: dict[tuple[str, str, str, int, str], threading.Lock] = {}
KINDS = ("query", "document")


def checked(recipe: dict[str, Any] | None, kind: str) -> dict[str, float]:
    """The precisions whose ``kind`` vectors ("query" or "document") take the light path: those
    measured within :data:`TOLERANCE` of the full path's, with the distance measured."""
    return {p: d for p, d in measured(recipe, kind).items() if isinstance(d, (int, float)) and d <= TOLERANCE}


def for_kind(name: str, device: str, precision: str, batch_size: int | None, full_loaded: bool,
             recipe: Callable[[], dict[str, Any] | None], kind: str = "query") -> LightEncoder | None:
    """The light encoder to encode ``kind`` texts ("query" or "document") of this model with, or
    None: the full encoder answers, with the same vectors (no checked recipe, or see below).

    Where the full OpenVINO encoder is already loaded (``full_loaded``), a light encoder this
    process built earlier is kept (a server that answered queries before its first write: its
    queries then never queue behind a document batch on the full encoder's streams), and none is
    built (no second compiled copy of the model).
    """
    from .openvino_engine import ROWS_PER_REQUEST

    if full_loaded:
        with _encoders_lock:
            return _encoders.get((name, device, precision, batch_size or ROWS_PER_REQUEST, kind))
    return encoder_for(name, device, precision, batch_size, recipe(), kind)


def encoder_for(name: str, device: str, precision: str, batch_size: int | None,
                recipe: dict[str, Any] | None, kind: str = "query") -> LightEncoder | None:
    """The process's light encoder of a model for ``kind``, built from its recipe once; None without a
    checked recipe."""
    from .openvino_engine import ROWS_PER_REQUEST

    batch_size = batch_size or ROWS_PER_REQUEST
    key = (name, device, precision, batch_size, kind)
    with _encoders_lock:
        if key in _encoders:
            return _encoders[key]
        building = _building.setdefault(key, threading.Lock())
    with building:  # one build per key: a second caller (a warm-up thread's and the search's) waits for it
        with _encoders_lock:
            if key in _encoders:
                return _encoders[key]
        encoder = None
        if recipe is not None and precision in checked(recipe, kind):
            try:
                encoder = LightEncoder(recipe, precision, batch_size, kind=kind)
            except Exception as exc:  # noqa: BLE001 - a removed IR file, a missing library: the full path works
                log.info("light %s path unavailable for %s (%s); loading the model", kind, name,
                         " ".join(str(exc).split())[:200])
        with _encoders_lock:
            return _encoders.setdefault(key, encoder)


def measured(recipe: dict[str, Any] | None, kind: str) -> dict[str, float]:
    """The distance measured between light and full ``kind`` vectors, per precision (see :func:`largest_distance`)."""
    found = (recipe or {}).get("measured", {}).get(kind)
    return found if isinstance(found, dict) else {}


def prepare_recipe(name: str, st_model: Any, ov_encoder: Any, prepared: PreparedModel, precision: str,
                   batch_size: int) -> bool:
    """Measure and record how faithfully the light path reproduces a loaded model, once per model and machine.

    Runs where the model was loaded and runs in OpenVINO (a first run on this machine); costs
    a few encodes of a few dozen short texts, as queries and as documents. The distances are
    recorded whatever they are (so no later process measures again) and :func:`checked` decides
    from them; a model the light path cannot represent records why
    (:meth:`.prepared.PreparedModel.save_refusal`). Returns whether queries of ``precision``
    now take the light path.
    """
    if ov_encoder.ir_path is None:
        return False
    known = prepared.recipe()
    if known is not None and known.get("ir") == str(Path(ov_encoder.ir_path).resolve()) and all(
            precision in measured(known, kind) for kind in KINDS):
        return precision in checked(known, "query")  # already measured, for the IR file this process runs
    recipe, reason = recipe_of(st_model, ov_encoder.ir_path, _dimension(st_model))
    if recipe is None:
        log.info("%s keeps the full path: %s", name, reason)
        prepared.save_refusal(reason)
        return False
    try:
        distances = {"query": _check_queries(recipe, ov_encoder, precision, batch_size),
                     "document": _check_documents(recipe, ov_encoder, precision, batch_size)}
    except Exception as exc:  # noqa: BLE001 - the full path stays
        reason = f"the light path failed ({' '.join(str(exc).split())[:200]})"
        log.info("%s keeps the full path: %s", name, reason)
        prepared.save_refusal(reason)
        return False
    same = known is not None and all(known.get(k) == v for k, v in recipe.items() if k != "measured")
    recipe["measured"] = {kind: {**(measured(known, kind) if same else {}), precision: distances[kind]}
                          for kind in KINDS}
    recipe["tolerance"] = TOLERANCE  # what the decision was made with (read again at every use)
    prepared.save_recipe(recipe)
    for kind, distance in distances.items():
        if distance > TOLERANCE:
            log.info("%s: %s vectors keep the full path: the light path differs by %.2g (> %.2g)", name, kind,
                     distance, TOLERANCE)
    return distances["query"] <= TOLERANCE


def _check_texts() -> list[str]:
    # Enough texts for several batches and pieces, each text in two batch contexts.
    return CHECK_QUERIES + [f"{q} ({i})" for i, q in enumerate(CHECK_QUERIES * 3)]


def _check_queries(recipe: dict[str, Any], ov_encoder: Any, precision: str, batch_size: int) -> float:
    """The largest distance between light and full query vectors; sets the recipe's hint.

    LATENCY (one query on every core, one weight copy less) is taken where it is within the
    tolerance, else the full path's own hint.
    """
    texts = _check_texts()
    # Each side encodes the same inputs: in bf16 a text's vector depends slightly on the batch it
    # shares (its padded length), which is not a difference between the two paths.
    full = [ov_encoder.encode_query(part, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=False,
                                    show_progress_bar=False) for part in (texts, texts[:3])]
    distance = math.inf
    for hint in ("LATENCY", ov_encoder.runner.hint):
        recipe["hint"] = hint
        light = LightEncoder(recipe, precision, batch_size,
                             runner=ov_encoder.runner if hint == ov_encoder.runner.hint else None)
        distance = max(largest_distance(light.encode(texts), full[0]),
                       largest_distance(light.encode(texts[:3]), full[1]))
        del light
        if distance <= TOLERANCE:
            break
    return distance


def _check_documents(recipe: dict[str, Any], ov_encoder: Any, precision: str, batch_size: int) -> float:
    """The largest distance between light and full document vectors (the full path's own compiled model)."""
    texts = _check_texts()
    light = LightEncoder(recipe, precision, batch_size, runner=ov_encoder.runner, kind="document")
    distance = 0.0
    for part in (texts, texts[:3]):  # pieces on every stream, and one small batch split over them
        full = ov_encoder.encode_document(part, batch_size=batch_size, convert_to_numpy=True,
                                          normalize_embeddings=False, show_progress_bar=False)
        distance = max(distance, largest_distance(light.encode(part), full))
    return distance


def _progress_bar(total: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="Batches", unit="text")


def _dimension(st_model: Any) -> int:
    from .models import dimension_of

    return dimension_of(st_model)
