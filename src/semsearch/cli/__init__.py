"""The ``semsearch`` command line: index, search, ask, info, verify, reindex, delete, migrate, demo, serve,
mcp, eval, similar, duplicates, topics, finetune.

One module per group of commands; each registers its commands on :data:`app`. Heavy imports
(the model, FAISS, the server) happen inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

# Registers the commands; the import order is the order --help lists them in, so isort must not sort it.
# isort: off
from . import documents, reindexing, evaluating, searching, asking, exploring, finetuning, serving  # noqa: F401
# isort: on
from .common import app


def main() -> None:  # pragma: no cover
    app()


__all__ = ["app", "main"]
