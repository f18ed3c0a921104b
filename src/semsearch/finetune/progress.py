"""A progress bar for training: steps, the latest loss and the held-out nDCG@10."""

from __future__ import annotations

from typing import Any

from .training import BEST_METRIC


def progress_callback(console: Any, *, bar: bool, baseline: float | None = None) -> Any:
    """A transformers TrainerCallback drawing a rich progress bar on ``console``.

    With ``bar=False`` it draws no bar but still prints one line per evaluation, so a log
    file shows how the held-out score moves. ``baseline`` is the base model's held-out
    nDCG@10, printed beside each new score.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from transformers import TrainerCallback

    class RichTrainingProgress(TrainerCallback):
        def __init__(self) -> None:
            self.progress: Progress | None = None
            self.task: Any = None
            self.loss: float | None = None
            self.ndcg: float | None = None

        def _status(self) -> str:
            loss = f"loss {self.loss:.4f}" if self.loss is not None else "loss -"
            ndcg = f"held-out nDCG@10 {self.ndcg:.4f}" if self.ndcg is not None else "held-out nDCG@10 -"
            base = f" (base {baseline:.4f})" if baseline is not None else ""
            return f"{loss} · {ndcg}{base}"

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if not bar:
                return
            self.progress = Progress(
                TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task("training", total=state.max_steps, completed=state.global_step,
                                               status=self._status())

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.progress is not None:
                self.progress.update(self.task, completed=state.global_step, status=self._status())

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None,
                   **kwargs: Any) -> None:
            if logs and "loss" in logs:
                self.loss = float(logs["loss"])

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None,
                        **kwargs: Any) -> None:
            if not metrics or BEST_METRIC not in metrics:
                return
            self.ndcg = float(metrics[BEST_METRIC])
            base = f" (base {baseline:.4f})" if baseline is not None else ""
            loss = f", loss {self.loss:.4f}" if self.loss is not None else ""
            console.print(f"step {state.global_step}/{state.max_steps}: held-out nDCG@10 {self.ndcg:.4f}{base}{loss}",
                          highlight=False)
            if self.progress is not None:
                self.progress.update(self.task, status=self._status())

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.progress is not None:
                self.progress.stop()
                self.progress = None

    return RichTrainingProgress()
