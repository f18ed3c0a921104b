"""The one place that maps API options onto ``Collection.search`` keyword arguments.

Every collection takes the same options on every backend (one facade), so what is checked
here is only what the server itself decides: which cross-encoders a client may ask for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import InvalidInputError, UnsupportedOptionError
from ..options import SEARCH

#: Every option of ``Collection.search`` a request may set (rerank only among the server's cross-encoders).
SEARCH_OPTIONS = tuple(name for name, option in SEARCH.items() if "http" in option.doors and name != "k")


def search_keywords(
    options: dict[str, Any], rerankers: Sequence[str], *, default_reranker: str | None
) -> dict[str, Any]:
    """Keyword arguments for ``collection.search`` from the options a request set (not None).

    ``rerank`` is never a free model name: ``true`` means the server's default cross-encoder
    and a string must be one the server was started with, so a client cannot make the server
    load an arbitrary model or read a path.

    Raises:
        UnsupportedOptionError: rerank asked of a server with no cross-encoder.
        InvalidInputError: a reranker the server does not offer.
    """
    kwargs: dict[str, Any] = {}
    for name, value in options.items():
        if value is None or (name == "rerank" and value is False):
            continue
        if name == "rerank":
            value = _reranker(value, rerankers, default_reranker)
        kwargs[name] = value
    return kwargs


def _reranker(value: bool | str, rerankers: Sequence[str], default: str | None) -> str:
    if value is True:
        if default is None:
            raise UnsupportedOptionError(
                "this server has no cross-encoder for reranking; start it with --reranker MODEL, or leave rerank out"
            )
        return default
    if not isinstance(value, str) or value not in rerankers:  # False never gets here: the caller drops it
        offered = ", ".join(repr(r) for r in rerankers) or "none"
        raise InvalidInputError(
            f"reranker {value!r} is not offered by this server (offered: {offered}); use true or one of those"
        )
    return value
