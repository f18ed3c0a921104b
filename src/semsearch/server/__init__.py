"""The HTTP API and search page (needs the ``server`` extra: fastapi and uvicorn)."""

from __future__ import annotations

from .app import create_app, open_collections
from .security import Limits, UnsafeBindError, check_bind, is_loopback

__all__ = ["Limits", "UnsafeBindError", "check_bind", "create_app", "is_loopback", "open_collections"]
