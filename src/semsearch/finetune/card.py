"""The model card of a fine-tuned model: ``README.md`` for people, ``semsearch_finetune.json`` for programs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CARD_JSON = "semsearch_finetune.json"
CARD_VERSION = 1


def read_card(model_dir: str | Path) -> dict[str, Any] | None:
    """The JSON card of a model folder made by ``semsearch finetune``, or None for any other folder
    (no card, or a file of that name that is not one)."""
    path = Path(model_dir).expanduser() / CARD_JSON
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) and "card_version" in card else None


def write_card(model_dir: Path, card: dict[str, Any]) -> None:
    """Write both files into ``model_dir`` (replacing sentence-transformers' generated README)."""
    (model_dir / CARD_JSON).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (model_dir / "README.md").write_text(render_markdown(card), encoding="utf-8")


def _table(evaluation: dict[str, Any]) -> list[str]:
    lines = []
    for name, numbers in evaluation.items():
        before, after = numbers["before"], numbers["after"]
        lines += [f"**{name}** ({numbers.get('queries', '?')} queries, {numbers.get('corpus', '?')} passages)", "",
                  "| metric | base model | fine-tuned | change |", "|---|---:|---:|---:|"]
        for metric in before:
            lines.append(f"| {metric} | {before[metric]:.4f} | {after[metric]:.4f} | "
                         f"{after[metric] - before[metric]:+.4f} |")
        lines.append("")
        gain = next((v for k, v in numbers.items() if k.endswith("_gain")), None)
        if gain:
            interval = ("no interval" if gain["low"] is None else
                        f"{gain['confidence']:.0%} interval {gain['low']:+.4f} to {gain['high']:+.4f}")
            lines += [f"{gain['metric']} change {gain['gain']:+.4f} ({interval}; {gain['method']}, "
                      f"{gain['resamples']} resamples): **{gain['verdict']}**.", ""]
    return lines


def _verdict(card: dict[str, Any]) -> str:
    verdict = card.get("verdict")
    if verdict == "better" or (verdict is None and card["improved"]):
        text = "The fine-tuned model scores **higher** than the base model on the held-out queries."
    elif verdict == "no clear difference":
        text = ("**The held-out queries cannot tell the fine-tuned model from the base model** (the interval of the "
                "nDCG@10 change holds 0): keep using the base model unless a larger evaluation shows a gain.")
    else:
        text = ("**The fine-tuned model does not beat the base model on the held-out queries: keep using the base "
                "model.**")
    return "\n\n".join([text, *(f"Warning: {w}." for w in card.get("warnings", []))])


def render_markdown(card: dict[str, Any]) -> str:
    """The README.md text: front matter for model hubs, then what was trained on what, and how well."""
    settings, data = card["settings"], card["data"]
    verdict = _verdict(card)
    lines = [
        "---",
        "library_name: sentence-transformers",
        f"base_model: {card['base_model']}",
        "pipeline_tag: sentence-similarity",
        "tags: [sentence-transformers, semsearch, fine-tuned]",
        "---",
        "",
        f"# Fine-tuned from {card['base_model']}",
        "",
        f"Made by `semsearch finetune` (semsearch {card['semsearch_version']}) on {card['created']}.",
        "",
        verdict,
        "",
        "## Use it",
        "",
        "```python",
        "import semsearch",
        f"col = semsearch.Collection('./my-index', model='{card['model_dir']}')",
        "```",
        "",
        f"or `semsearch index ./docs --model {card['model_dir']}`. A collection built with the base",
        "model must be re-encoded to use it (the vectors of two models are not comparable).",
        "",
        "## Evaluation (dense retrieval, trec_eval definitions)",
        "",
        *_table(card["evaluation"]),
        "## Data",
        "",
        *(f"- {k}: {v}" for k, v in data.items()),
        "",
        "## Training",
        "",
        *(f"- {k}: {v}" for k, v in settings.items()),
        f"- steps: {card['training']['steps']} (best checkpoint at step {card['training']['best_step']})",
        f"- training time: {card['training']['seconds']:.0f} s on {card['training']['device']}",
        "",
        "The training data itself is not stored here.",
        "",
    ]
    return "\n".join(lines)
