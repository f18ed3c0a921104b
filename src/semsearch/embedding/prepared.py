"""What this machine prepared once for a model, so later processes skip the expensive steps.

Two records per (model files, library versions, CPU, device), in ``$SEMSEARCH_CACHE_DIR/prepared/KEY/``:

* the engine and precision ``auto`` settled on (the calibration against torch fp32 loads torch
  and runs the model several times: ~1 s per process before this cache);
* the *light recipe*: what the torch-free encoder (:mod:`.light`) needs to give the same
  vectors as sentence-transformers: the model's exact tokenizer, its prompts, truncation
  length, pooling, normalisation, dimension, the converted OpenVINO model, and how far its
  query and document vectors were measured from the full path's (which decides, per kind,
  whether the light path is taken); or, for a model it cannot represent, why not.

The key is computed without importing torch: the model folder's files (name, size, mtime),
the installed versions of torch, transformers, sentence-transformers, tokenizers, OpenVINO and
numpy, the CPU (model name and instruction-set flags), the device and the Python version. Any
change gives a new key, so a stale record is never read; it is just left behind. Records are
written atomically and a damaged one reads as absent. Models given by hub name (no local
folder to fingerprint cheaply) are not prepared: they always take the full path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Bump when the meaning of a record changes: older records are then never read.
# 2: the recipe records the light/full distance per kind ("measured") instead of a pass ("checked").
FORMAT = 2
_LIBRARIES = ("torch", "transformers", "sentence_transformers", "tokenizers", "openvino", "numpy")


def cache_dir() -> Path:
    """Where semsearch caches derived artefacts shared by all collections (converted models)."""
    env = os.environ.get("SEMSEARCH_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("semsearch"))


@lru_cache(maxsize=1)
def library_versions() -> tuple[str, ...]:
    """The installed version of each library encoding depends on, read without importing any.

    From the ``NAME-VERSION.dist-info`` folder next to the package; where there is none (an
    editable or vendored install), the size and mtime of its ``__init__.py`` stand in.
    """
    import importlib.util

    listings: dict[Path, list[str]] = {}
    found = []
    for name in _LIBRARIES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            found.append(f"{name}=absent")
            continue
        origin = Path(spec.origin)
        site = origin.parent.parent
        if site not in listings:
            try:
                listings[site] = os.listdir(site)
            except OSError:
                listings[site] = []
        prefix = name.lower().replace("-", "_") + "-"
        versions = sorted(d[len(prefix) : -len(".dist-info")] for d in listings[site]
                          if d.lower().startswith(prefix) and d.endswith(".dist-info"))
        if versions:
            found.append(f"{name}={versions[-1]}")
        else:
            stat = origin.stat()
            found.append(f"{name}@{origin}:{stat.st_size}:{stat.st_mtime_ns}")
    return tuple(found)


@lru_cache(maxsize=1)
def cpu_identity() -> str:
    """The CPU model and its instruction-set flags (what compiled kernels and bf16 depend on)."""
    parts = [platform.machine(), platform.processor()]
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            seen = set()
            for line in f:
                field = line.split(":", 1)[0].strip()
                if field in ("model name", "flags", "Features", "CPU part") and field not in seen:
                    seen.add(field)
                    parts.append(line.strip())
    except OSError:
        pass
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def model_files(location: str) -> list[tuple[str, int, int]] | None:
    """(relative path, size, mtime_ns) of every file of a local model folder; None if not a folder."""
    folder = Path(location)
    if not folder.is_dir():
        return None
    return sorted(
        (str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    )


def machine_key(name: str, location: str, device: str) -> str | None:
    """The key of everything prepared for this model on this machine, or None (a hub name)."""
    files = model_files(location)
    if files is None:
        return None
    description = {
        "format": FORMAT,
        "model": name,
        "location": str(Path(location).resolve()),
        "files": files,
        "libraries": library_versions(),
        "cpu": cpu_identity(),
        "device": device,
        "python": list(sys.version_info[:2]),
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:32]


class PreparedModel:
    """The records prepared for one model on this machine (see the module docstring)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.folder = cache_dir() / "prepared" / key

    @classmethod
    def for_model(cls, name: str, location: str, device: str) -> PreparedModel | None:
        """The records of ``name`` (loaded from ``location``) on ``device``; None for a hub name."""
        try:
            key = machine_key(name, location, device)
        except OSError as exc:  # a model folder changing under us: prepare nothing this time
            log.info("cannot fingerprint %s (%s); its preparation is not cached", location, exc)
            return None
        return cls(key) if key is not None else None

    # -- the engine and precision "auto" chose ---------------------------------------------
    def choice(self, request: str) -> tuple[str, str] | None:
        """The (engine, precision) calibrated for ``request`` (what was asked, and the rule), or None."""
        record = self._read(self._choice_file(request))
        if not record or record.get("request") != request:
            return None
        engine, precision = record.get("engine"), record.get("precision")
        return (engine, precision) if isinstance(engine, str) and isinstance(precision, str) else None

    def save_choice(self, request: str, engine: str, precision: str, agreement: dict[str, float]) -> None:
        self._write(self._choice_file(request),
                    {"request": request, "engine": engine, "precision": precision, "agreement": agreement})

    def _choice_file(self, request: str) -> str:
        return "choice-" + hashlib.sha256(request.encode()).hexdigest()[:16] + ".json"

    # -- the light query recipe -------------------------------------------------------------
    def recipe(self) -> dict[str, Any] | None:
        """The light query recipe (see :mod:`.light`), or None when none was prepared."""
        return self._read("query-recipe.json")

    def save_recipe(self, recipe: dict[str, Any]) -> None:
        self._write("query-recipe.json", recipe)

    def refusal(self) -> str | None:
        """Why the light path cannot represent this model (recorded by a run that tried), or None."""
        record = self._read("light-refused.json")
        reason = record.get("reason") if record else None
        return reason if isinstance(reason, str) else None

    def save_refusal(self, reason: str) -> None:
        self._write("light-refused.json", {"reason": reason})

    # -- files ----------------------------------------------------------------------------
    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            with open(self.folder / name, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.info("ignoring the unreadable record %s (%s)", self.folder / name, exc)
            return None
        return data if isinstance(data, dict) and data.get("format") == FORMAT else None

    def _write(self, name: str, data: dict[str, Any]) -> None:
        """Write a record atomically; a cache that cannot be written only costs later processes time."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.folder)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump({**data, "format": FORMAT}, f)
                os.replace(tmp, self.folder / name)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            log.info("could not cache %s in %s: %s", name, self.folder, exc)
