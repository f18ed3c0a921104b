"""The light query path: queries encoded without torch or sentence-transformers.

Importing torch and sentence-transformers and loading the model costs several seconds and
~500 MB per process, which is most of what a one-shot ``semsearch search`` used to cost. Once a
model has run in OpenVINO on this machine, a query needs only three things, all prepared by
that first run and cached (:mod:`.prepared`):

* the model's own tokenizer, serialised from the loaded model (``tokenizers``, the Rust
  library transformers' fast tokenizers are built on), with the same truncation and padding;
* the converted OpenVINO model (:class:`.openvino_engine.Runner`), fed the same batches in the
  same order, compiled for latency (one query on all cores, less memory) where that gives the
  full path's vectors, else with the full path's own settings;
* the model's pooling and normalisation, in numpy.

The recipe is only recorded after the first run has checked it: the light path and
sentence-transformers' ``encode_query`` must agree on a set of test queries (scripts, lengths,
truncation, several batches) to :data:`TOLERANCE`. Models with modules it does not reproduce
(a Dense layer, prompt-excluding or last-token pooling, query expansion...) get no recipe and
keep the full path.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .prepared import PreparedModel

log = logging.getLogger(__name__)

# The largest difference allowed between a light and a full-path query vector (normalised,
# per component). Measured differences are ~1e-7: pooling sums in another order.
TOLERANCE = 1e-5
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


class LightQueryEncoder:
    """Encodes queries as ``SentenceTransformer.encode_query`` does, from a prepared recipe.

    ``runner`` is a compiled :class:`.openvino_engine.Runner` of the recipe's IR at the recipe's
    precision (one is compiled when not given). ``piece`` and ``split`` mirror the OpenVINO
    encoder of the full path: inputs longer than ``piece`` texts are encoded in pieces of
    consecutive texts by length, each batch whole on one stream.
    """

    def __init__(self, recipe: dict[str, Any], precision: str, batch_size: int, runner: Any = None) -> None:
        from tokenizers import Tokenizer

        from . import openvino_engine

        self.recipe = recipe
        self.batch_size = batch_size
        self.tokenizer = Tokenizer.from_str(recipe["tokenizer"])
        self.tokenizer.enable_truncation(
            max_length=int(recipe["max_seq_length"]), strategy="longest_first", direction=recipe["truncation_side"]
        )
        self.tokenizer.enable_padding(
            direction=recipe["padding_side"], pad_id=int(recipe["pad_id"]), pad_type_id=int(recipe["pad_type_id"]),
            pad_token=recipe["pad_token"],
        )
        if runner is None:
            runner = openvino_engine.Runner(recipe["ir"], precision, openvino_engine.token_table(recipe["ir"]),
                                            hint=recipe.get("hint", "THROUGHPUT"))
        self.runner = runner
        missing = [name for name in self.runner.wants if name not in _INPUTS]
        if missing:
            raise ValueError(f"the model takes inputs a tokenizer does not give: {missing}")
        self.piece = batch_size * openvino_engine.OpenVINOEncoder.PIECE_BATCHES
        self.prompt = recipe.get("query_prompt") or ""
        self.modes = [recipe["pooling"]] if isinstance(recipe["pooling"], str) else list(recipe["pooling"])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """The query embeddings, float32, (len(texts), dimension); normalised only if the model does."""
        texts = list(texts)
        if len(texts) <= self.piece:
            return self._encode_sorted(texts, split=None)
        # As OpenVINOEncoder: longest first (Python's stable sort), in pieces of consecutive texts.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), int(self.recipe["dimension"])), dtype=np.float32)
        for start in range(0, len(order), self.piece):
            part = order[start : start + self.piece]
            out[part] = self._encode_sorted([texts[i] for i in part], split=1)
        return out

    def _encode_sorted(self, texts: list[str], split: int | None) -> np.ndarray:
        # sentence-transformers' own order: numpy's argsort of negative character lengths.
        order = np.argsort([-len(t) for t in texts])
        rows: list[np.ndarray] = []
        for start in range(0, len(texts), self.batch_size):
            batch = [self._prepare(texts[i]) for i in order[start : start + self.batch_size]]
            encodings = self.tokenizer.encode_batch(batch)
            arrays = {name: np.array([getattr(e, _INPUTS[name]) for e in encodings], dtype=np.int64)
                      for name in self.runner.wants}
            tokens = self.runner(arrays, split=split)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            rows.extend(self._pool(tokens, mask))
        vectors = np.empty((len(texts), len(rows[0])), dtype=np.float32)
        vectors[order] = np.asarray(rows, dtype=np.float32)
        return vectors

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
    modules = list(st_model._modules.values())
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
    if query_prompt and not getattr(pooling, "include_prompt", True):
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
        "prompts": prompts,
        "pooling": modes if len(modes) > 1 else modes[0],
        "normalize": kinds[2:] == ["Normalize"],
        "dimension": int(dimension),
        "ir": str(Path(ir_path).resolve()),
    }
    return recipe, ""


def largest_difference(light: np.ndarray, full: np.ndarray) -> float:
    """The largest per-component difference between two sets of vectors, each normalised first."""

    def unit(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float32)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), np.float32(1e-12))

    return float(np.max(np.abs(unit(light) - unit(full)))) if len(light) else 0.0


# Light query encoders per (model, device, precision, batch size), or None where there is no recipe.
_encoders: dict[tuple[str, str, str, int], LightQueryEncoder | None] = {}
_encoders_lock = threading.Lock()
_building: dict[tuple[str, str, str, int], threading.Lock] = {}


def for_queries(name: str, device: str, precision: str, batch_size: int | None, full_loaded: bool,
                recipe: Callable[[], dict[str, Any] | None]) -> LightQueryEncoder | None:
    """The light encoder to answer a query of this model with, or None: the full encoder answers,
    with the same vectors (no checked recipe, or see below).

    Where the full OpenVINO encoder is already loaded (``full_loaded``), a light encoder this
    process built earlier is kept (a server that answered queries before its first write: its
    queries then never queue behind a document batch on the full encoder's streams), and none is
    built (no second compiled copy of the model).
    """
    from .openvino_engine import ROWS_PER_REQUEST

    if full_loaded:
        with _encoders_lock:
            return _encoders.get((name, device, precision, batch_size or ROWS_PER_REQUEST))
    return encoder_for(name, device, precision, batch_size, recipe())


def encoder_for(name: str, device: str, precision: str, batch_size: int | None,
                recipe: dict[str, Any] | None) -> LightQueryEncoder | None:
    """The process's light encoder of a model, built from its recipe once; None without a checked recipe."""
    from .openvino_engine import ROWS_PER_REQUEST

    batch_size = batch_size or ROWS_PER_REQUEST
    key = (name, device, precision, batch_size)
    with _encoders_lock:
        if key in _encoders:
            return _encoders[key]
        building = _building.setdefault(key, threading.Lock())
    with building:  # one build per key: a second caller (a warm-up thread's and the search's) waits for it
        with _encoders_lock:
            if key in _encoders:
                return _encoders[key]
        encoder = None
        if recipe is not None and precision in recipe.get("checked", {}):
            try:
                encoder = LightQueryEncoder(recipe, precision, batch_size)
            except Exception as exc:  # noqa: BLE001 - a removed IR file, a missing library: the full path works
                log.info("light query path unavailable for %s (%s); loading the model", name,
                         " ".join(str(exc).split())[:200])
        with _encoders_lock:
            return _encoders.setdefault(key, encoder)


def prepare_recipe(name: str, st_model: Any, ov_encoder: Any, prepared: PreparedModel, precision: str,
                   batch_size: int) -> bool:
    """Record the light recipe of a loaded model once it gives the full path's query vectors.

    Runs where the model was loaded and runs in OpenVINO (a first run on this machine); costs
    two encodes of a few dozen short queries. A model the light path cannot reproduce, or any
    failure here, records nothing: its queries keep the full path. Returns whether a recipe
    for ``precision`` is now recorded.
    """
    if ov_encoder.ir_path is None:
        return False
    known = prepared.recipe()
    if known is not None and precision in known.get("checked", {}) and known.get("ir") == str(
        Path(ov_encoder.ir_path).resolve()
    ):
        return True  # already prepared, for the IR file this process runs (a moved cache gets a new one)
    recipe, reason = recipe_of(st_model, ov_encoder.ir_path, _dimension(st_model))
    if recipe is None:
        log.info("queries of %s keep the full path: %s", name, reason)
        return False
    # Enough queries for several batches and pieces, each query in two batch contexts.
    texts = CHECK_QUERIES + [f"{q} ({i})" for i, q in enumerate(CHECK_QUERIES * 3)]
    difference = math.inf
    try:
        full = ov_encoder.encode_query(texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=False,
                                       show_progress_bar=False)
        for hint in ("LATENCY", ov_encoder.runner.hint):
            recipe["hint"] = hint
            light = LightQueryEncoder(recipe, precision, batch_size,
                                      runner=ov_encoder.runner if hint == ov_encoder.runner.hint else None)
            difference = max(largest_difference(light.encode(texts), full),
                             largest_difference(light.encode(texts[:3]), full[:3]))
            del light
            if difference <= TOLERANCE:
                break
    except Exception as exc:  # noqa: BLE001 - the full path stays; nothing recorded
        log.info("queries of %s keep the full path: the light path failed (%s)", name, exc)
        return False
    if difference > TOLERANCE:
        log.info("queries of %s keep the full path: the light path differs by %.2g", name, difference)
        return False
    same = known is not None and all(known.get(k) == v for k, v in recipe.items())
    recipe["checked"] = {**(known.get("checked", {}) if same and known else {}), precision: difference}
    prepared.save_recipe(recipe)
    return True


def _dimension(st_model: Any) -> int:
    from .models import dimension_of

    return dimension_of(st_model)
