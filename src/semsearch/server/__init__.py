"""The HTTP API and search page (needs the ``server`` extra: fastapi and uvicorn).

The app is imported on first use, so the CLI can read a running server's address
(:mod:`.discovery`) without importing fastapi.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "create_app": ".app", "open_collections": ".state",
    "Limits": ".security", "UnsafeBindError": ".security", "check_bind": ".security", "is_loopback": ".security",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(_EXPORTS[name], __name__), name)


__all__ = ["Limits", "UnsafeBindError", "check_bind", "create_app", "is_loopback", "open_collections"]
