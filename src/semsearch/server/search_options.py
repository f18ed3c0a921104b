"""The one place that maps API options onto ``Collection`` keyword arguments.

Which options exist is read from the signatures of ``Collection.search`` / ``get`` /
``delete``, so when the core grows ``where=``, ``mode=``, ``rerank=`` or ``threshold=`` the
API passes them through with no change here; until then a request using one is refused
with a clear message instead of being silently ignored.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import InvalidInputError

SEARCH_OPTIONS = ("where", "mode", "rerank", "threshold")


class UnsupportedOptionError(InvalidInputError):
    """The request uses an option this semsearch's collections do not have (yet)."""


def accepted_keywords(method: Callable[..., Any]) -> frozenset[str]:
    """Keyword arguments a method accepts (by name)."""
    params = list(inspect.signature(method).parameters.values())
    names = frozenset(p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
    if any(p.kind is p.VAR_KEYWORD for p in params):
        # A backend that forwards **options (Milvus) takes what the local Collection's method takes.
        from ..collection import Collection

        local = getattr(Collection, getattr(method, "__name__", ""), None)
        if local is not None and local is not method:
            names |= accepted_keywords(local)
    return names


def supported_search_options(collection: Any) -> list[str]:
    """The subset of where / mode / rerank / threshold this collection's ``search`` takes."""
    accepted = accepted_keywords(collection.search)
    return [name for name in SEARCH_OPTIONS if name in accepted]


def supported_modes(collection: Any) -> list[str]:
    return ["dense", "lexical", "hybrid"] if "mode" in supported_search_options(collection) else ["dense"]


def search_keywords(
    collection: Any, options: dict[str, Any], rerankers: Sequence[str], *, default_reranker: str | None
) -> dict[str, Any]:
    """Keyword arguments for ``collection.search`` from the options a request set (not None).

    ``rerank`` is never a free model name: ``true`` means the server's default cross-encoder
    and a string must be one the server was started with, so a client cannot make the server
    load an arbitrary model or read a path.

    Raises:
        UnsupportedOptionError: an option this collection's search does not take.
        InvalidInputError: a reranker the server does not offer.
    """
    accepted = set(supported_search_options(collection))
    kwargs: dict[str, Any] = {}
    for name, value in options.items():
        if value is None:
            continue
        if name == "mode" and value == "dense" and "mode" not in accepted:
            continue  # dense is what search always does
        if name == "rerank" and value is False:
            continue
        if name not in accepted:
            raise UnsupportedOptionError(
                f'"{name}" is not supported by this semsearch version\'s search; leave it out '
                f"(supported here: {', '.join(accepted) or 'query, queries and k only'})"
            )
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
    if value not in rerankers:
        offered = ", ".join(repr(r) for r in rerankers) or "none"
        raise InvalidInputError(f"reranker {value!r} is not offered by this server (offered: {offered}); use true or one of those")
    return value


def filter_keywords(method: Callable[..., Any], where: dict[str, Any] | None, what: str) -> dict[str, Any]:
    """``{"where": where}`` when set and ``method`` takes it; refuses it clearly otherwise."""
    if where is None:
        return {}
    if "where" not in accepted_keywords(method):
        raise UnsupportedOptionError(f'"where" is not supported by this semsearch version\'s {what}; use "ids"')
    return {"where": where}
