"""semsearch finetune: adapt the embedding model to your documents."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import OptionRequiredError
from .common import app, err, fail, out, run_command
from .pipes import print_table

if TYPE_CHECKING:
    from ..finetune.run import FinetuneResult


def _dimensions(spec: str | None) -> tuple[int, ...]:
    if not spec:
        return ()
    try:
        return tuple(int(part) for part in spec.split(",") if part.strip())
    except ValueError:
        fail(f"--matryoshka takes dimensions separated by commas, e.g. 384,256,128,64; got {spec!r}")
        raise  # unreachable: fail exits


# long: a command's signature declares each of its options; the body is short
@app.command("finetune")
def finetune_(
    train: Annotated[Path, typer.Argument(
        help="Training data: a pairs/triplets file (.jsonl/.csv/.tsv with query, positive[, negative] columns), "
             "a BEIR folder (queries + qrels + corpus), or a collection folder (label-free: pseudo-queries from its "
             "documents).",
        show_default=False)],
    out_dir: Annotated[Path, typer.Option("--out", "-o",
                                          help="Folder for the fine-tuned model (must not exist unless --overwrite).",
                                          show_default=False)],
    model: Annotated[
        str | None,
        typer.Option("--model",
                     help="Base model, name or folder (default: the collection's model, else all-MiniLM-L6-v2).",
                     show_default=False),
    ] = None,
    split: Annotated[str | None,
                     typer.Option("--split", help="BEIR qrels split to train on (default: test, else the only one).",
                                  show_default=False)] = None,
    negatives: Annotated[
        int,
        typer.Option("--negatives",
                     help="Hard negatives mined per pair with the base model (0 = in-batch negatives only)."),
    ] = 1,
    negatives_from: Annotated[
        Path | None,
        typer.Option("--negatives-from", help="A collection whose documents are mined for negatives too.",
                     show_default=False),
    ] = None,
    range_min: Annotated[
        int,
        typer.Option("--range-min",
                     help="Skip this many top-ranked candidates when mining (guards against unlabelled positives)."),
    ] = 0,
    range_max: Annotated[int, typer.Option("--range-max", help="Mine among the top this-many candidates.")] = 30,
    relative_margin: Annotated[
        float,
        typer.Option("--relative-margin", help="Keep a candidate only if it scores this fraction below the positive "
                                               "(0.05 = 5%); negative = off."),
    ] = 0.05,
    heldout: Annotated[
        float,
        typer.Option("--heldout",
                     help="Fraction of queries held out to measure before and after (at most 1000 queries)."),
    ] = 0.1,
    eval_corpus: Annotated[
        int,
        typer.Option("--eval-corpus",
                     help="Passages the held-out queries are searched in (their answers + distractors)."),
    ] = 5000,
    evaluate_on: Annotated[
        list[Path] | None,
        typer.Option("--eval", help="A judged BEIR dataset to score before and after (never trained on); repeatable.",
                     show_default=False),
    ] = None,
    loss: Annotated[str, typer.Option("--loss",
                                      help="cached-mnrl (big batches in little memory) or mnrl.")] = "cached-mnrl",
    batch_size: Annotated[int, typer.Option("--batch-size",
                                            help="Pairs per step: every other passage in a batch is a negative.")] = 64,
    mini_batch_size: Annotated[
        int,
        typer.Option("--mini-batch-size", help="Texts encoded at once by cached-mnrl (memory, not results)."),
    ] = 16,
    epochs: Annotated[float, typer.Option("--epochs", help="Passes over the training pairs.")] = 1.0,
    learning_rate: Annotated[
        float,
        typer.Option("--lr", help="Peak learning rate (linear warm-up over the first 10%, then decay)."),
    ] = 2e-5,
    max_pairs: Annotated[int | None, typer.Option("--max-pairs",
                                                  help="Train on at most this many pairs (a random sample).",
                                                  show_default=False)] = None,
    max_seq_length: Annotated[
        int | None,
        typer.Option("--max-seq-length",
                     help="Tokens per text for training and scoring, saved with the model (default: the model's).",
                     show_default=False),
    ] = None,
    matryoshka: Annotated[
        str | None,
        typer.Option("--matryoshka", help="Also train truncated embeddings, e.g. 384,256,128,64 (MatryoshkaLoss).",
                     show_default=False),
    ] = None,
    evaluations: Annotated[int, typer.Option("--evaluations-per-epoch",
                                             help="Held-out evaluations (and checkpoints) per epoch.")] = 2,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the split, sampling and training.")] = 42,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace the model a previous finetune wrote to --out (only once the new "
                                         "model is complete); a folder finetune did not write is never replaced."),
    ] = False,
    restart: Annotated[
        bool,
        typer.Option("--restart", help="Discard an unfinished run in OUT.partial instead of continuing it."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    progress: Annotated[bool | None, typer.Option(help="Show a progress bar (default: on a terminal).")] = None,
) -> None:
    """Fine-tune the embedding model on your data; writes a model folder that --model and Collection(model=...) accept.

    A killed run continues from its last checkpoint when re-run with the same arguments.
    """

    def go() -> None:
        from ..finetune import finetune

        show_bar = err.is_terminal if progress is None else progress
        err.print(f"fine-tuning on {train} -> {out_dir}", highlight=False)
        try:
            result = finetune(
                train, out_dir, base_model=model, split=split, negatives=negatives, negatives_from=negatives_from,
                range_min=range_min, range_max=range_max,
                relative_margin=relative_margin if relative_margin >= 0 else None, heldout=heldout,
                eval_corpus_size=eval_corpus, evaluate_on=evaluate_on or (), loss=loss, batch_size=batch_size,
                mini_batch_size=mini_batch_size, epochs=epochs, learning_rate=learning_rate, max_pairs=max_pairs,
                max_seq_length=max_seq_length, matryoshka=_dimensions(matryoshka), evaluations_per_epoch=evaluations,
                seed=seed, overwrite=overwrite, restart=restart, console=err, progress=show_bar,
            )
        except OptionRequiredError as exc:  # named as this door spells it: --overwrite, not overwrite=True
            fail(exc.naming(f"--{exc.option.replace('_', '-')}"))
            return  # unreachable: fail exits
        if as_json:
            payload = {
                "model_dir": str(result.model_dir), "base_model": result.base_model, "improved": result.improved,
                "verdict": result.verdict, "before": result.before, "after": result.after,
                "gains": {name: gain.to_dict() for name, gain in result.gains.items()}, "warnings": result.warnings,
                "steps": result.steps, "best_step": result.best_step, "resumed_from_step": result.resumed_from_step,
                "seconds": round(result.seconds, 1), "data": result.card["data"],
            }
            sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        else:
            _print_scores(result)
        _print_verdict(result)

    run_command(go)


def _print_scores(result: FinetuneResult) -> None:
    """The before/after table (the nDCG@10 row with the interval of its change) and the training summary."""
    from rich.table import Table  # lazily: ~30 ms of start-up for every command

    table = Table(title=f"{result.model_dir} (from {result.base_model})", title_justify="left")
    for column in ("evaluation", "metric", "base", "fine-tuned", "change", "95% interval"):
        table.add_column(column, justify="left" if column in ("evaluation", "metric") else "right")
    for name in result.before:
        gain = result.gains.get(name)
        for metric, value in result.before[name].items():
            new = result.after[name][metric]
            interval = ""
            if gain is not None and metric == gain.metric and gain.low is not None and gain.high is not None:
                interval = f"{gain.low:+.4f} to {gain.high:+.4f}"
            table.add_row(name, metric, f"{value:.4f}", f"{new:.4f}", f"{new - value:+.4f}", interval)
    print_table(out, table)
    resumed = f", resumed at step {result.resumed_from_step}" if result.resumed_from_step else ""
    err.print(f"{result.steps} steps, best at step {result.best_step}{resumed}; {result.seconds:.0f}s in all",
              highlight=False)


def _print_verdict(result: FinetuneResult) -> None:
    """What the numbers allow: use the model, keep the base one, or no telling (with the reasons)."""
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    gain = result.gains["heldout"]
    if result.verdict == "better":
        err.print(f"better on the held-out queries: nDCG@10 {gain.describe()}", highlight=False, soft_wrap=True)
        err.print(f"use it: semsearch index PATH --model {result.model_dir}  (a new collection; vectors of two "
                  f"models do not mix), or semsearch reindex --model {result.model_dir} -c COLLECTION",
                  highlight=False, soft_wrap=True)
    elif result.verdict == "no clear difference":
        err.print(f"[yellow]warning:[/] the held-out queries cannot tell the fine-tuned model from the base model "
                  f"(nDCG@10 {gain.describe()}: the interval holds 0); keep using the base model unless a larger "
                  "evaluation shows a gain (see the model card)", highlight=False, soft_wrap=True)
    else:
        err.print(f"[yellow]warning:[/] the fine-tuned model does worse than the base model on the held-out queries "
                  f"(nDCG@10 {gain.describe()}); keep using the base model (see the model card)", highlight=False,
                  soft_wrap=True)
