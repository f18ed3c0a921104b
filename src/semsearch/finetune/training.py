"""The training loop: sentence-transformers' own trainer, loss, batch sampler and checkpoints.

(Cached)MultipleNegativesRankingLoss treats every other passage in a batch as a negative, so
bigger batches teach more; the cached variant (GradCache) computes the loss over the whole
batch while only ``mini_batch_size`` texts are in memory at once, which is what lets a CPU use
batches of 64+. ``BatchSamplers.NO_DUPLICATES`` keeps a text from appearing twice in a batch,
where it would be its own false negative. Checkpoints are saved at every evaluation, the best
by held-out nDCG@10 is kept and loaded at the end, and a killed run resumes from the last one.
"""

from __future__ import annotations

import importlib
import json
import math
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .evaluator import PRIMARY_METRIC

LOSSES = ("cached-mnrl", "mnrl")
BEST_METRIC = f"eval_heldout_{PRIMARY_METRIC}"


@dataclass(frozen=True)
class TrainingSettings:
    """Trainer knobs recorded in the model card (and in the resume fingerprint)."""

    loss: str = "cached-mnrl"
    batch_size: int = 64
    mini_batch_size: int = 16
    epochs: float = 1.0
    learning_rate: float = 2e-5
    warmup: float = 0.1
    max_seq_length: int | None = None
    matryoshka: tuple[int, ...] = ()
    evaluations_per_epoch: int = 2
    seed: int = 42


@dataclass
class TrainingOutcome:
    """What the trainer did: steps, best checkpoint, losses and held-out scores over time."""

    steps: int
    best_step: int | None
    best_metric: float | None
    resumed_from_step: int
    losses: list[tuple[int, float]] = field(default_factory=list)
    evaluations: list[tuple[int, float]] = field(default_factory=list)


def steps_per_epoch(rows: int, batch_size: int) -> int:
    """Optimizer steps in one epoch (the last, partial batch counts; NO_DUPLICATES may add a few)."""
    return max(1, math.ceil(rows / batch_size))


def build_loss(model: Any, settings: TrainingSettings) -> Any:
    """The configured loss, wrapped in MatryoshkaLoss when dimensions are given."""
    # The module moved in sentence-transformers 6; imported by name, so one name serves both versions.
    try:
        losses = importlib.import_module("sentence_transformers.sentence_transformer.losses")
    except ImportError:  # sentence-transformers < 6
        losses = importlib.import_module("sentence_transformers.losses")

    if settings.loss == "cached-mnrl":
        loss = losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=settings.mini_batch_size)
    else:
        loss = losses.MultipleNegativesRankingLoss(model)
    if settings.matryoshka:
        loss = losses.MatryoshkaLoss(model, loss, matryoshka_dims=list(settings.matryoshka))
    return loss


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint whose trainer state was fully written; later, broken ones are removed.

    The trainer writes ``trainer_state.json`` last, so a checkpoint without a readable one was
    cut off mid-save (a kill) and cannot be resumed from.
    """
    if not folder.is_dir():
        return None
    found = sorted(
        (p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
    )
    for checkpoint in reversed(found):
        try:
            json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
            return checkpoint
        except (OSError, ValueError):
            shutil.rmtree(checkpoint, ignore_errors=True)
    return None


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' own progress bars (one per checkpoint saved or loaded) while ours runs."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def train(
    model: Any,
    rows: list[list[str]],
    evaluator: Any,
    checkpoints: Path,
    settings: TrainingSettings,
    callbacks: Sequence[Any] = (),
) -> TrainingOutcome:
    """Train ``model`` in place on ``rows`` and leave it holding the best checkpoint's weights.

    ``rows`` are [query, positive, negative_1..n] of one length. Resumes from the newest
    complete checkpoint in ``checkpoints`` when there is one.
    """
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    try:
        training_args = importlib.import_module("sentence_transformers.sentence_transformer.training_args")
    except ImportError:  # sentence-transformers < 6
        training_args = importlib.import_module("sentence_transformers.training_args")
    BatchSamplers = training_args.BatchSamplers

    columns = ["query", "positive", *(f"negative_{i}" for i in range(1, len(rows[0]) - 1))]
    dataset = Dataset.from_dict({c: [r[i] for r in rows] for i, c in enumerate(columns)})
    per_epoch = steps_per_epoch(len(rows), settings.batch_size)
    total = max(1, math.ceil(per_epoch * settings.epochs))
    eval_steps = max(1, per_epoch // max(1, settings.evaluations_per_epoch))
    prompts = getattr(model, "prompts", None) or {}
    column_prompts = {}
    if prompts.get("query"):
        column_prompts["query"] = prompts["query"]
    if prompts.get("document"):
        column_prompts.update({c: prompts["document"] for c in columns[1:]})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        warmup_steps=int(settings.warmup * total),
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        eval_strategy="steps",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=eval_steps,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model=BEST_METRIC,
        greater_is_better=True,
        logging_steps=max(1, min(eval_steps, total // 20)),
        seed=settings.seed,
        data_seed=settings.seed,
        disable_tqdm=True,
        report_to="none",
        dataloader_num_workers=0,
        use_cpu=not _has_cuda(),
        prompts=column_prompts or None,
    )
    loss = build_loss(model, settings)
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=dataset, loss=loss, evaluator=evaluator, callbacks=list(callbacks)
    )
    # disable_tqdm makes the trainer print every log dict to stdout instead; our callback reports.
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    resume = last_complete_checkpoint(checkpoints)
    resumed_from = int(resume.name.split("-")[-1]) if resume else 0
    with quiet_transformers():
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    state = trainer.state
    losses = [(int(e["step"]), float(e["loss"])) for e in state.log_history if "loss" in e]
    evaluations = [(int(e["step"]), float(e[BEST_METRIC])) for e in state.log_history if BEST_METRIC in e]
    best_step = int(state.best_model_checkpoint.rsplit("-", 1)[-1]) if state.best_model_checkpoint else None
    return TrainingOutcome(
        steps=int(state.global_step), best_step=best_step,
        best_metric=float(state.best_metric) if state.best_metric is not None else None,
        resumed_from_step=resumed_from, losses=losses, evaluations=evaluations,
    )


def _has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())
