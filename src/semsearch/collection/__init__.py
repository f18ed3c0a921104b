"""The collection: the facade every door calls (Python, CLI, HTTP, MCP) and what only it does.

:class:`Collection` is the only client of the storage engine (:mod:`semsearch.engine`): it
checks input, chunks and encodes, plans searches and runs the ranking stages, answers, explores
and re-encodes. The modules here are its rooms: opening and the manifest (``manifest``,
``pending``), writing, searching, exploring, reindexing and migration.

Names are imported on first use, so ``semsearch.collection.<room>`` can be imported alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..retrieval.options import SearchOptions
    from .facade import Collection
    from .migrate import migrate_between
    from .searching import EncodedQueries

_EXPORTS = {"Collection": ".facade", "EncodedQueries": ".searching", "SearchOptions": "..retrieval.options",
            "migrate_between": ".migrate"}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Collection", "EncodedQueries", "SearchOptions", "migrate_between"]
