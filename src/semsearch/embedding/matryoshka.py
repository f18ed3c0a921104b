"""Smaller vectors by truncation: which models were trained for it (Matryoshka), and the check.

A Matryoshka model (MatryoshkaLoss, Kusupati et al. 2022) is trained so that the first N
components of its embedding, re-normalised, are an embedding on their own. Any other model's
first N components are not: truncating them loses an unmeasured amount of quality, so it is
refused unless forced (then with a warning); a PCA index spec (``PCA128,Flat``) is the way to
smaller vectors for those.

What a model says about itself, read from its folder without loading it:

* ``semsearch_finetune.json`` (``semsearch finetune --matryoshka``): ``matryoshka_dimensions``;
* ``README.md``, the card sentence-transformers' trainer writes: the loss parameters'
  ``"matryoshka_dims": [...]``, or a front-matter tag naming Matryoshka (``loss:MatryoshkaLoss``,
  ``matryoshka``), whose dimensions are then not known.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

from ..errors import InvalidInputError

_DIMS = re.compile(r'"matryoshka_dims"\s*:\s*\[([\d,\s]+)\]')


def model_folder(name: str) -> Path | None:
    """The local folder of a canonical model name: a path, a bundled copy, or the hub cache; None if not here."""
    from .models import model_location

    location = Path(model_location(name)).expanduser()
    if location.is_dir():
        return location
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - comes with sentence-transformers
        return None
    try:
        found = try_to_load_from_cache(name, "config.json")
    except Exception:  # noqa: BLE001 - not a valid repo name: nothing cached
        return None
    return Path(found).parent if isinstance(found, str) else None


def trained_dimensions(name: str) -> list[int] | None:
    """The dimensions ``name`` was trained to be truncated to: a list (empty when its card names
    Matryoshka without listing them), or None when nothing says it was trained for truncation."""
    folder = model_folder(name)
    if folder is None:
        return None
    from ..finetune.card import read_card

    try:
        card = read_card(folder)
    except (OSError, ValueError):
        card = None
    if card is not None:
        dims = [int(d) for d in card.get("matryoshka_dimensions") or []]
        return sorted(set(dims), reverse=True) or None
    try:
        text = (folder / "README.md").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = [int(d) for m in _DIMS.finditer(text) for d in m.group(1).replace(" ", "").split(",") if d]
    if found:
        return sorted(set(found), reverse=True)
    # Only the card's front matter (tags such as loss:MatryoshkaLoss): sentence-transformers' generic
    # card links "Introduction to Matryoshka Embedding Models" in its prose for every model.
    front = text.split("---", 2)[1] if text.startswith("---") and text.count("---") >= 2 else ""
    return [] if "matryoshka" in front.lower() else None


def check_truncation(name: str, dimensions: int, native: int | None = None, *, force: bool = False) -> None:
    """Allow truncating ``name``'s embeddings to ``dimensions`` components, or raise.

    ``native`` is the model's own dimension when known. With ``force``, a model not trained for
    it (or a dimension it was not trained at) is truncated anyway, with a UserWarning.

    Raises:
        InvalidInputError: a dimension below 1 or above the model's, or truncation of a model
            whose card does not say it was trained for it (naming PCA and ``force`` as the ways out).
    """
    if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
        raise InvalidInputError(f"dimensions must be a positive whole number, got {dimensions!r}")
    if native is not None and dimensions > native:
        raise InvalidInputError(f"dimensions={dimensions} is more than {name} gives ({native}); use at most {native}")
    if native is not None and dimensions == native:
        return
    trained = trained_dimensions(name)
    if trained is None:
        problem = (f"{name} was not trained for truncated embeddings (its card does not mention Matryoshka), so its "
                   f"first {dimensions} dimensions are not an embedding of their own")
        fix = (f"reduce dimensions with a PCA index instead (index='PCA{dimensions},Flat', or "
               f"'PCA{dimensions},IVF1024,Flat' for large collections), use a Matryoshka model, or force it "
               "(force_dimensions=True / --force-dimensions) and measure with `semsearch eval`")
    elif trained and dimensions not in trained:
        problem = f"{name} was trained for truncation to {', '.join(map(str, trained))} dimensions, not {dimensions}"
        fix = f"use one of {', '.join(map(str, trained))}, or force it (force_dimensions=True / --force-dimensions)"
    else:
        return
    if not force:
        raise InvalidInputError(f"{problem}; {fix}")
    warnings.warn(f"{problem}; truncating anyway as forced: measure the quality with `semsearch eval`",
                  UserWarning, stacklevel=3)


def matryoshka_card_text(dims: list[int]) -> str:
    """The part of a sentence-transformers model card that records MatryoshkaLoss (for tests and tools)."""
    return "---\ntags:\n- loss:MatryoshkaLoss\n---\n\n### Loss\n```json\n" + json.dumps(
        {"loss": "MultipleNegativesRankingLoss", "matryoshka_dims": dims}, indent=4) + "\n```\n"
