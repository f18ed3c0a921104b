"""Importing OpenVINO's runtime without its model converter.

``import openvino`` also imports ``openvino.tools.ovc`` (the model converter) for
``openvino.convert_model``, and with it OpenVINO's telemetry, ``urllib.request``, ``http.client``
and the ``email`` parser: measured 0.14 s of a cold ``semsearch search``, which only runs a model
converted earlier. :func:`runtime` imports the runtime alone; :func:`with_converter` adds the
converter back (``openvino.convert_model``, as OpenVINO's own ``__init__`` sets it) when a
model has to be converted.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

_CONVERTER = "openvino.tools.ovc"
_lock = threading.Lock()


def runtime() -> Any:
    """The ``openvino`` module; imported without its converter when nothing imported it yet."""
    module = sys.modules.get("openvino")
    if module is not None:
        return module
    with _lock:
        blocked = _CONVERTER not in sys.modules
        if blocked:
            # A None entry makes ``from openvino.tools.ovc import ...`` raise ImportError, which
            # OpenVINO's __init__ catches (the converter is optional there).
            sys.modules[_CONVERTER] = None  # type: ignore[assignment]
        try:
            import openvino
        finally:
            if blocked and _CONVERTER in sys.modules and sys.modules[_CONVERTER] is None:
                del sys.modules[_CONVERTER]
    return openvino


def with_converter() -> Any:
    """The ``openvino`` module with ``openvino.convert_model``."""
    ov = runtime()
    if not hasattr(ov, "convert_model"):
        with _lock:
            from openvino.tools.ovc import convert_model

            if not hasattr(ov, "convert_model"):
                ov.convert_model = convert_model
    return ov
