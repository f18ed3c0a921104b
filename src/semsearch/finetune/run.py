"""One fine-tuning run: read the data, mine negatives, measure, train, measure again, write the model.

Everything a run needs to continue after a kill lives in ``OUT.partial/``: the prepared data
(so a resumed run neither re-reads nor re-mines), the base model's scores, and the trainer's
checkpoints. The finished model folder appears at ``OUT`` only when it is complete (renamed
into place), so a half-written model is never mistaken for a finished one.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, OptionRequiredError
from ..evaluation.uncertainty import PairedGain, paired_gain
from . import training
from .card import CARD_JSON, read_card, write_card
from .data import ADVISED_HELDOUT, EvalSet, TrainingData
from .negatives import MiningSettings
from .sources import collection_model, describe_source, load_eval_sets, prepare_data, read_source
from .training import LOSSES, TrainingSettings

RUN_FILE = "run.json"
DATA_FILE = "data.json"


@dataclass
class FinetuneResult:
    """What a run produced: where the model is, and how it scored before and after.

    ``before``/``after`` map an evaluation set name ("heldout", or a dataset folder name given
    to ``evaluate_on``) to its metrics (ndcg@10, mrr@10, recall@10, recall@100, map@100).
    """

    model_dir: Path
    base_model: str
    before: dict[str, dict[str, float]]
    after: dict[str, dict[str, float]]
    improved: bool
    steps: int
    best_step: int | None
    resumed_from_step: int
    seconds: float
    losses: list[tuple[int, float]] = field(default_factory=list)
    card: dict[str, Any] = field(default_factory=dict)
    #: The nDCG@10 gain per evaluation set with its paired-bootstrap interval over the queries.
    gains: dict[str, PairedGain] = field(default_factory=dict)
    #: What makes the verdict uncertain (too few judged queries), in words.
    warnings: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """"better", "worse" or "no clear difference" on the held-out queries (from the interval of the gain)."""
        return self.gains["heldout"].verdict if "heldout" in self.gains else "no clear difference"


def _atomic_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _check(settings: TrainingSettings, mining: MiningSettings, heldout: float) -> None:
    if settings.loss not in LOSSES:
        raise InvalidInputError(f"unknown loss {settings.loss!r}; use one of {', '.join(LOSSES)}")
    for name, value in (("batch_size", settings.batch_size), ("mini_batch_size", settings.mini_batch_size),
                        ("evaluations_per_epoch", settings.evaluations_per_epoch)):
        if value < 1:
            raise InvalidInputError(f"{name} must be at least 1, got {value}")
    if settings.epochs <= 0 or settings.learning_rate <= 0:
        raise InvalidInputError("epochs and learning_rate must be above 0")
    if mining.negatives < 0 or mining.range_min < 0:
        raise InvalidInputError("negatives and range_min must be 0 or more")
    if any(d < 1 for d in settings.matryoshka):
        raise InvalidInputError(f"matryoshka dimensions must be positive, got {list(settings.matryoshka)}")
    if not 0 < heldout <= 0.5:
        raise InvalidInputError(f"held-out fraction {heldout!r} must be above 0 and at most 0.5 (e.g. 0.1)")


def _require_training_libraries() -> None:
    import importlib.util

    missing = [m for m in ("datasets", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        raise InvalidInputError(f"fine-tuning needs {' and '.join(missing)}: pip install 'semsearch[finetune]'")


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an ``out`` the finished model may not go to: a file; a folder holding anything
    (without ``overwrite``); with it, a folder that a previous finetune did not write (no card).

    Raises:
        OptionRequiredError: ``out`` holds a previous finetune's model and ``overwrite`` is False.
        InvalidInputError: ``out`` is a file, or a non-empty folder that finetune did not write.
    """
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"{out} is a file; give a new folder for the model")
    if not out.exists() or not any(out.iterdir()):
        return
    if read_card(out) is None:
        held = sorted(p.name for p in out.iterdir())
        raise InvalidInputError(
            f"{out} holds files that semsearch finetune did not write ({', '.join(held[:3])}"
            f"{', ...' if len(held) > 3 else ''}; no {CARD_JSON}); only a model folder made by a previous finetune "
            "is ever replaced, so nothing was touched: choose a new folder for the model"
        )
    if not overwrite:
        raise OptionRequiredError(f"{out} already holds a fine-tuned model; choose a new folder, or pass {{option}} "
                                  "to replace it once the new model is complete", "overwrite")


def _work_folder(out: Path, fingerprint: dict[str, Any], restart: bool) -> tuple[Path, dict[str, Any]]:
    work = out.with_name(out.name + ".partial")
    state: dict[str, Any] = {}
    ours = {RUN_FILE, DATA_FILE, f"{RUN_FILE}.tmp", f"{DATA_FILE}.tmp", "checkpoints", "model"}
    if work.exists() and (not work.is_dir() or (not (work / RUN_FILE).exists()
                                                and any(p.name not in ours for p in work.iterdir()))):
        raise InvalidInputError(f"{work} is where finetune keeps an unfinished run, but it holds something else "
                                "(no run.json); nothing was touched: move it away, or choose another folder for the "
                                "model")
    if work.exists() and restart:
        shutil.rmtree(work)
    if (work / RUN_FILE).exists():
        state = json.loads((work / RUN_FILE).read_text(encoding="utf-8"))
        if state.get("fingerprint") != fingerprint:
            raise OptionRequiredError(
                f"{work} holds an unfinished run with other data or settings; rerun with the same arguments "
                "to continue it, or pass {option} to discard it", "restart"
            )
    state["fingerprint"] = fingerprint
    return work, state


def _install(model_dir: Path, out: Path, overwrite: bool) -> None:
    """Move the finished model folder to ``out``; an old ``out`` is replaced only at the last moment,
    and only if it is still a folder a previous finetune wrote (it is checked again: training takes
    long, and something else may have been put there meanwhile).

    Raises:
        InvalidInputError: ``out`` may no longer be replaced; the model stays in ``model_dir``.
    """
    try:
        check_out(out, overwrite)
    except InvalidInputError as exc:
        raise InvalidInputError(f"the model is complete in {model_dir}, but {exc}") from None
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.replaced-{uuid.uuid4().hex[:12]}")  # a name nothing else uses
        os.replace(out, old)
    os.replace(model_dir, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# long: the signature and docstring declare every training option; the body is the run's steps in order
def finetune(
    train: str | os.PathLike[str] | Any,
    out: str | os.PathLike[str],
    *,
    base_model: str | None = None,
    split: str | None = None,
    negatives: int = 1,
    negatives_from: str | os.PathLike[str] | Any | None = None,
    range_min: int = 0,
    range_max: int = 30,
    relative_margin: float | None = 0.05,
    heldout: float = 0.1,
    eval_corpus_size: int = 5000,
    evaluate_on: Sequence[str | os.PathLike[str]] = (),
    loss: str = "cached-mnrl",
    batch_size: int = 64,
    mini_batch_size: int = 16,
    epochs: float = 1.0,
    learning_rate: float = 2e-5,
    max_pairs: int | None = None,
    max_seq_length: int | None = None,
    matryoshka: Sequence[int] = (),
    evaluations_per_epoch: int = 2,
    seed: int = 42,
    overwrite: bool = False,
    restart: bool = False,
    device: str | None = None,
    console: Any = None,
    progress: bool | None = None,
    callbacks: Sequence[Any] = (),
) -> FinetuneResult:
    """Fine-tune a sentence-transformers model for retrieval and write it to ``out``.

    ``train`` is a pairs/triplets file (JSONL, CSV or TSV with query, positive[, negative]
    columns), a BEIR folder (queries + qrels + corpus), or a collection (path or object) for
    label-free training on pseudo-queries made from its documents. A fraction ``heldout`` of
    the queries is kept out of training and scored (nDCG@10 etc.) with the base model and after
    training; the best checkpoint by held-out nDCG@10 is kept. ``evaluate_on`` adds judged BEIR
    datasets scored before and after (never trained on, never used to choose a checkpoint).

    Re-running with the same arguments after a kill continues from the last checkpoint in
    ``OUT.partial/``. The finished folder loads as ``Collection(path, model=out)`` and holds
    ``README.md`` and ``semsearch_finetune.json`` (base model, data, settings, scores).

    Raises:
        InvalidInputError: bad settings, unreadable or too small training data, ``out`` exists
            (without ``overwrite``), or an unfinished run with other arguments in ``OUT.partial``.
        MissingPathError: the training source or an ``evaluate_on`` folder does not exist.
    """
    from ..embedding import DEFAULT_MODEL, canonical_model_name, pick_device
    from .evaluator import PRIMARY_METRIC, mean_scores, score_queries

    started = time.perf_counter()
    settings = TrainingSettings(loss=loss, batch_size=batch_size, mini_batch_size=mini_batch_size, epochs=epochs,
                                learning_rate=learning_rate, max_seq_length=max_seq_length,
                                matryoshka=tuple(int(d) for d in matryoshka),
                                evaluations_per_epoch=evaluations_per_epoch,
                                seed=seed)
    mining = MiningSettings(negatives=negatives, range_min=range_min, range_max=range_max,
                            relative_margin=relative_margin)
    _check(settings, mining, heldout)
    _require_training_libraries()
    out = Path(out).expanduser().resolve()
    check_out(out, overwrite)
    kind, source, identity = describe_source(train)
    if base_model is None and kind == "collection":
        base_model = collection_model(source)
    base = canonical_model_name(base_model or DEFAULT_MODEL)
    eval_sets = load_eval_sets(evaluate_on)
    fingerprint = json.loads(json.dumps({  # as run.json holds it (tuples become lists)
        "source": identity, "base_model": base, "split": split, "heldout": heldout,
        "eval_corpus_size": eval_corpus_size,
        "max_pairs": max_pairs, "negatives_from": str(getattr(negatives_from, "path", negatives_from) or ""),
        "evaluate_on": sorted(eval_sets), "training": asdict(settings), "mining": asdict(mining),
    }))
    work = out.with_name(out.name + ".partial")
    resuming = (work / DATA_FILE).exists() and not restart
    # Read the data before anything is loaded or created: bad input fails at once.
    source_data = None if resuming else read_source(kind, source, split)
    work, state = _work_folder(out, fingerprint, restart)

    device = pick_device(device)
    model, dim = load_base_model(base, device, settings)

    def say(message: str) -> None:
        if console is not None:
            console.print(message, highlight=False)

    work.mkdir(parents=True, exist_ok=True)  # only now: nothing is left behind by a run that never started
    _atomic_json(work / RUN_FILE, state)  # the fingerprint first, so no other run reuses what follows
    if source_data is None:
        say(f"continuing the unfinished run in {work}")
        data = TrainingData.from_json(json.loads((work / DATA_FILE).read_text(encoding="utf-8")))
    else:
        say(f"preparing the data (hold out queries{', mine hard negatives' if mining.negatives else ''}) with {base}")
        data = prepare_data(source_data, model, negatives_from=negatives_from, mining=mining, heldout=heldout,
                            eval_corpus_size=eval_corpus_size, max_pairs=max_pairs, seed=seed)
        _atomic_json(work / DATA_FILE, data.to_json())
    all_sets = {"heldout": data.heldout, **eval_sets}
    before = score_base_once(model, all_sets, state, work, say)
    for warning in small_evaluation_warnings(all_sets):
        say(f"note: {warning}")

    say(f"training on {len(data.train)} rows "
        f"({settings.loss}, batch {settings.batch_size}, {settings.epochs:g} epochs)")
    train_started = time.perf_counter()
    outcome = train_with_progress(model, data, work, settings, before, console, progress, callbacks)
    train_seconds = time.perf_counter() - train_started
    scored = {name: score_queries(model, s) for name, s in all_sets.items()}
    after = {name: mean_scores(per_query) for name, per_query in scored.items()}
    improved = after["heldout"][PRIMARY_METRIC] > before["heldout"][PRIMARY_METRIC]
    gains = {name: paired_gain(state["before_queries"][name], {q: v[PRIMARY_METRIC] for q, v in per_query.items()},
                               metric=PRIMARY_METRIC, seed=settings.seed) for name, per_query in scored.items()}
    warnings = small_evaluation_warnings(all_sets, gains)

    staged = work / "model"
    shutil.rmtree(staged, ignore_errors=True)
    with training.quiet_transformers():
        model.save(str(staged))
    card = model_card(out, base, dim, settings, mining, heldout, data, all_sets, before, after, gains, warnings,
                      improved, outcome, train_seconds, device)
    write_card(staged, card)
    _install(staged, out, overwrite)
    shutil.rmtree(work, ignore_errors=True)
    return FinetuneResult(
        model_dir=out, base_model=base, before=before, after=after, improved=improved, steps=outcome.steps,
        best_step=outcome.best_step, resumed_from_step=outcome.resumed_from_step,
        seconds=time.perf_counter() - started, losses=outcome.losses, card=card, gains=gains, warnings=warnings,
    )


def train_with_progress(model: Any, data: TrainingData, work: Path, settings: TrainingSettings,
                        before: dict[str, Any], console: Any, progress: bool | None,
                        callbacks: Sequence[Any]) -> Any:
    """Train, checkpointing in ``work`` (a progress bar with the held-out nDCG@10 on ``console``)."""
    from .evaluator import heldout_evaluator

    extra: list[Any] = list(callbacks)
    bar = None
    if console is not None:
        from .progress import progress_callback

        bar = progress_callback(console, bar=bool(progress), baseline=before["heldout"].get("ndcg@10"))
        extra.append(bar)
    try:
        return training.train(model, data.train, heldout_evaluator(data.heldout), work / "checkpoints", settings,
                              extra)
    finally:
        if bar is not None:
            bar.on_train_end(None, None, None)


def load_base_model(base: str, device: str, settings: TrainingSettings) -> tuple[Any, int]:
    """The base model to train (at ``settings.max_seq_length``) and its dimension.

    Raises:
        InvalidInputError: it cannot be loaded, or Matryoshka dimensions above its own.
    """
    from sentence_transformers import SentenceTransformer

    from ..embedding import model_location

    if model_location(base) != base:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        with training.quiet_transformers():
            model = SentenceTransformer(model_location(base), device=device)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(
            f"cannot load base model {base!r} ({' '.join(str(exc).split())[:300]}); give the folder of a "
            "sentence-transformers model, or a hub name with network access"
        ) from exc
    dim = (getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension)()
    if settings.max_seq_length:  # before anything is encoded: mining and both scorings see the same length
        model.max_seq_length = settings.max_seq_length
    if dim and any(d > dim for d in settings.matryoshka):
        raise InvalidInputError(f"matryoshka dimensions {list(settings.matryoshka)} exceed the model's dimension {dim}")
    return model, int(dim or 0)


def score_base_once(model: Any, sets: dict[str, EvalSet], state: dict[str, Any], work: Path,
                    say: Any) -> dict[str, Any]:
    """The base model's scores on every evaluation set, computed once per run (kept in run.json,
    so a resumed run does not score again)."""
    from .evaluator import PRIMARY_METRIC, mean_scores, score_queries

    if "before" not in state or "before_queries" not in state:
        others = [name for name in sets if name != "heldout"]
        say(f"scoring the base model on {len(sets['heldout'].queries)} held-out queries"
            + (f" and on {', '.join(others)}" if others else ""))
        scored = {name: score_queries(model, s) for name, s in sets.items()}
        state["before"] = {name: mean_scores(per_query) for name, per_query in scored.items()}
        state["before_queries"] = {name: {q: v[PRIMARY_METRIC] for q, v in per_query.items()}
                                   for name, per_query in scored.items()}
        _atomic_json(work / RUN_FILE, state)
    return dict(state["before"])


def model_card(out: Path, base: str, dim: int, settings: TrainingSettings, mining: MiningSettings, heldout: float,
               data: TrainingData, sets: dict[str, EvalSet], before: dict[str, Any], after: dict[str, Any],
               gains: dict[str, PairedGain], warnings: list[str], improved: bool, outcome: Any,
               train_seconds: float, device: str) -> dict[str, Any]:
    """What ``semsearch_finetune.json`` records: base model, data, every setting, scores before and
    after with the gain's interval, and how training went."""
    from .. import __version__
    from .evaluator import PRIMARY_METRIC

    return {
        "card_version": 1,
        "semsearch_version": __version__,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model_dir": str(out),
        "base_model": base,
        "dimension": dim,
        "matryoshka_dimensions": list(settings.matryoshka),
        "improved": improved,
        "verdict": gains["heldout"].verdict,
        "warnings": warnings,
        "data": data.details,
        "settings": {**asdict(settings), "matryoshka": list(settings.matryoshka),
                     **{f"mining_{k}": v for k, v in asdict(mining).items()},
                     "heldout_fraction": heldout, "batch_sampler": "NO_DUPLICATES"},
        "evaluation": {
            name: {"queries": len(sets[name].queries), "corpus": len(sets[name].corpus),
                   "before": before[name], "after": after[name], f"{PRIMARY_METRIC}_gain": gains[name].to_dict()}
            for name in sets
        },
        "training": {"steps": outcome.steps, "best_step": outcome.best_step,
                     "resumed_from_step": outcome.resumed_from_step,
                     "seconds": round(train_seconds, 1), "device": device, "losses": outcome.losses,
                     "heldout_ndcg@10_by_step": outcome.evaluations},
    }


def small_evaluation_warnings(sets: dict[str, EvalSet], gains: dict[str, PairedGain] | None = None) -> list[str]:
    """A sentence for each evaluation set with fewer than ADVISED_HELDOUT queries (with its interval, once known)."""
    out = []
    for name, judged in sets.items():
        n = len(judged.queries)
        if n >= ADVISED_HELDOUT:
            continue
        what = f"{n} held-out queries" if name == "heldout" else f"{n} judged queries of {name}"
        measured = f": its nDCG@10 gain is {gains[name].describe()}" if gains and name in gains else ""
        fix = ("; hold out a larger fraction of the queries or add training pairs for a verdict to rely on"
               if name == "heldout" else "")
        out.append(f"the {'verdict' if name == 'heldout' else 'score on ' + name} rests on only {what} "
                   f"(fewer than {ADVISED_HELDOUT}){measured}{fix}")
    return out
