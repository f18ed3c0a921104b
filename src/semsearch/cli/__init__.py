"""The ``semsearch`` command line: index, search, info, reindex, delete, migrate, demo, serve, eval, finetune.

One module per group of commands; each registers its commands on :data:`app`. Heavy imports
(the model, FAISS, the server) happen inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

from . import documents, evaluating, finetuning, searching, serving  # noqa: F401  (registers the commands)
from .common import app


def main() -> None:  # pragma: no cover
    app()


__all__ = ["app", "main"]
