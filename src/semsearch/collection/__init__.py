"""The collection: the facade every door calls (Python, CLI, HTTP, MCP) and what only it does.

:class:`Collection` is the only client of the storage engine (:mod:`semsearch.engine`): it
checks input, chunks and encodes, plans searches and runs the ranking stages, answers, explores
and re-encodes. The modules here are its rooms: opening and the manifest (``manifest``,
``pending``), writing, searching, exploring, reindexing and migration.
"""

from ..types import Document, Hit, IndexReport
from .facade import Collection

__all__ = ["Collection", "Document", "Hit", "IndexReport"]
