"""Which engine and precision ``auto`` encodes with: the fastest that agrees with torch fp32.

Measured once per machine and model (the result is cached by :mod:`.prepared`, keyed by the
model files, library versions and CPU), and kept per process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .models import cpu_has_fast_bf16, cuda_precision

log = logging.getLogger(__name__)

# Below this agreement with torch fp32 (minimum cosine over the calibration sentences) a faster
# path (bf16, or the OpenVINO engine) is refused.
BF16_MIN_COSINE = 0.999
CALIBRATION = [
    "The quick brown fox jumps over the lazy dog.",
    "affordable accommodation near the beach",
    "Budget-friendly lodging by the coast, five minutes from the sand.",
    "How do I parse command line arguments in Python?",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "東京は日本の首都です。",
    "SELECT id, name FROM users WHERE age > 30 ORDER BY name;",
    (
        "In 1969, Apollo 11 landed on the Moon and Neil Armstrong became the first person to walk on it. "
        "The mission launched from Kennedy Space Center and returned safely after eight days."
    ),
    "error: could not open file 'config.yaml' (permission denied)",
]

# The (engine, precision) "auto" settles on, per (model, device, engine asked, precision asked):
# read from this machine's cache, else calibrated, once per process.
_auto_precision: dict[tuple[str, ...], tuple[str, str]] = {}


@dataclass(frozen=True)
class Subject:
    """What choosing needs of a model: what was asked, and how to read its prepared record,
    load its OpenVINO form and encode with it (an :class:`~.embedder.Embedder` gives its own)."""

    name: str
    device: str
    requested_engine: str
    requested_precision: str
    #: () -> the machine's prepared record of the model (:class:`.prepared.Prepared`), or None
    prepared: Callable[[], Any]
    #: (precision) -> the OpenVINO model, or None when it cannot run
    openvino: Callable[[str], Any]
    #: (texts, kind, precision, engine=) -> unit vectors
    encode: Callable[..., np.ndarray]


def choose(embedder: Subject) -> tuple[str, str]:
    """(engine, precision) for ``embedder``: what was asked, else the fastest faithful candidate.

    On CUDA, torch in bf16 where the GPU has it (fp16 otherwise); on other accelerators torch
    fp32; on CPUs the first of OpenVINO bf16 (native bf16 only), OpenVINO fp32, torch bf16,
    torch fp32 that agrees with torch fp32 to :data:`BF16_MIN_COSINE` on :data:`CALIBRATION`.
    """
    req_engine, req_precision = embedder.requested_engine, embedder.requested_precision
    device = embedder.device
    if device.startswith("cuda"):
        return "torch", cuda_precision() if req_precision == "auto" else req_precision
    if device != "cpu":
        return "torch", "fp32" if req_precision == "auto" else req_precision
    candidates = _candidates(req_engine, req_precision)
    if len(candidates) == 1:
        return candidates[0]  # forced: an engine that cannot run says so at the first encode
    key = (embedder.name, device, req_engine, req_precision)
    if key not in _auto_precision:
        request = _request(req_engine, req_precision, candidates)
        prepared = embedder.prepared()
        choice = prepared.choice(request) if prepared is not None else None
        if choice is None:
            choice, agreement = _calibrate(embedder, candidates, req_engine)
            if prepared is not None:
                prepared.save_choice(request, choice[0], choice[1], agreement)
        _auto_precision[key] = choice
    return _auto_precision[key]


def recorded(embedder: Subject) -> tuple[str, str] | None:
    """The (engine, precision) ``choose`` gives on this CPU when it is known without measuring
    (forced, or calibrated by an earlier process); None when choosing would calibrate."""
    req_engine, req_precision = embedder.requested_engine, embedder.requested_precision
    if embedder.device != "cpu":
        return None
    candidates = _candidates(req_engine, req_precision)
    if len(candidates) == 1:
        return candidates[0]
    key = (embedder.name, embedder.device, req_engine, req_precision)
    if key in _auto_precision:
        return _auto_precision[key]
    prepared = embedder.prepared()
    return prepared.choice(_request(req_engine, req_precision, candidates)) if prepared is not None else None


def _candidates(req_engine: str, req_precision: str) -> list[tuple[str, str]]:
    engines = ["openvino", "torch"] if req_engine == "auto" else [req_engine]
    if req_precision != "auto":
        precisions = [req_precision]
    else:
        precisions = ["bf16", "fp32"] if cpu_has_fast_bf16() else ["fp32"]
    return [(e, p) for e in engines for p in precisions]


def _request(req_engine: str, req_precision: str, candidates: list[tuple[str, str]]) -> str:
    # Everything the choice depends on besides the model, libraries and CPU (in the cache key).
    return repr((req_engine, req_precision, candidates, BF16_MIN_COSINE, CALIBRATION))


def _calibrate(embedder: Subject, candidates: list[tuple[str, str]],
               req_engine: str) -> tuple[tuple[str, str], dict[str, float]]:
    """The first candidate agreeing with torch fp32 (torch fp32 itself always does), and the agreements seen."""
    ref = None
    agreements: dict[str, float] = {}
    for engine, precision in candidates:
        if (engine, precision) == ("torch", "fp32"):
            return (engine, precision), agreements
        if engine == "openvino" and req_engine == "auto" and embedder.openvino(precision) is None:
            continue  # not installed, or a model it cannot convert: torch runs it
        if ref is None:
            ref = embedder.encode(CALIBRATION, "document", "fp32", engine="torch")
        fast = embedder.encode(CALIBRATION, "document", precision, engine=engine)
        agreement = float(np.min(np.sum(ref * fast, axis=1)))
        agreements[f"{engine}-{precision}"] = agreement
        if agreement >= BF16_MIN_COSINE:
            return (engine, precision), agreements
        log.info("%s %s agrees with torch fp32 only to %.5f cosine for %s; not used", engine, precision,
                 agreement, embedder.name)
    return candidates[-1], agreements
