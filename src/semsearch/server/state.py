"""What an app serves: the collections by name, its limits and keys, the search batcher, readiness."""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Union

from ..collection import Collection
from ..errors import InvalidInputError
from .batching import SearchBatcher
from .error_responses import ApiError
from .security import Limits

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CollectionSource = Union[Collection, str, "os.PathLike[str]"]


@dataclass
class ServerState:
    """What the app serves and how; one per app, shared by every request thread."""

    collections: dict[str, Collection]
    default: str
    limits: Limits
    api_key: str | None
    public_reads: bool
    rerankers: list[str]
    owned: list[Collection] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    warmup_error: str | None = None
    batcher: SearchBatcher = field(default_factory=SearchBatcher)
    #: A random id per app, sent with every search answer (the CLI checks it: server/discovery.py).
    instance: str = field(default_factory=lambda: secrets.token_hex(16))

    def collection(self, name: str) -> Collection:
        col = self.collections.get(name)
        if col is None:
            raise ApiError(404, "collection_not_found", f"no collection named {name!r}; GET /collections lists them")
        return col


def open_collections(
    collections: Mapping[str, CollectionSource] | Sequence[CollectionSource] | CollectionSource,
) -> tuple[dict[str, Collection], list[Collection]]:
    """Name and open what to serve; returns (collections by name, the ones opened here).

    A mapping keeps its names; otherwise a collection is named after its folder (with -2, -3
    appended on clashes). Paths must hold an existing collection: the server never creates one.

    Raises:
        InvalidInputError: a name that is not [A-Za-z0-9._-] (up to 64 characters), or nothing to serve.
        NotACollectionError: a path that is not a collection.
    """
    if isinstance(collections, (Collection, str, os.PathLike)):
        collections = [collections]
    pairs: list[tuple[str | None, CollectionSource]] = (
        list(collections.items()) if isinstance(collections, Mapping) else [(None, c) for c in collections]
    )
    if not pairs:
        raise InvalidInputError("no collections to serve; give at least one collection folder")
    opened: dict[str, Collection] = {}
    owned: list[Collection] = []
    try:
        for name, source in pairs:
            # An already-open collection (local or Milvus: same interface) is served as it is.
            if isinstance(source, Collection):
                col = source
            else:
                col = Collection(source, create=False)
                owned.append(col)
            base = name or col.name
            if not NAME_PATTERN.match(base):
                if name is not None:
                    raise InvalidInputError(
                        f"collection name {name!r} must be 1-64 of A-Z a-z 0-9 . _ - (not starting with . _ -)"
                    )
                base = re.sub(r"[^A-Za-z0-9._-]", "-", base).lstrip("._-")[:64] or "collection"
            unique, n = base, 2
            while unique in opened:
                if name is not None:
                    raise InvalidInputError(f"collection name {name!r} is given twice")
                unique, n = f"{base}-{n}", n + 1
            opened[unique] = col
    except BaseException:
        for col in owned:
            col.close()
        raise
    return opened, owned


def warm_up(state: ServerState) -> None:
    """Load each model once, each vector index and in-memory BM25, and what ``ask`` adds to a search, so the
    first search and the first answer are as fast as the rest."""
    from ..answer import warm_up as warm_answers

    try:
        for col in state.collections.values():
            col.warm_up()
            warm_answers(col)
    except Exception as exc:  # shown by /readyz; searches will report it too
        log.exception("warm-up failed")
        state.warmup_error = f"warm-up failed: {exc}"
    finally:
        state.ready.set()
