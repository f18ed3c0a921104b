"""OpenVINO in this process: its runtime imported without the model converter, one ``Core``,
and the first inference made by one thread.

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
from collections.abc import Callable
from typing import Any, TypeVar

_CONVERTER = "openvino.tools.ovc"
_lock = threading.Lock()
_core: Any = None
_core_lock = threading.Lock()
_first_lock = threading.Lock()
_first_done = False
T = TypeVar("T")


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
        if blocked and "convert_model" not in vars(openvino) and "__getattr__" not in vars(openvino):
            # Other code in the process still finds ``openvino.convert_model``: loaded on first use.
            openvino.__getattr__ = _converter_on_demand  # type: ignore[attr-defined]
    return openvino


def _converter_on_demand(name: str) -> Any:
    if name == "convert_model":
        try:
            return with_converter().convert_model
        except ImportError as exc:  # as OpenVINO's own __init__: no converter, no attribute
            raise AttributeError(f"module 'openvino' has no attribute {name!r} ({exc})") from exc
    raise AttributeError(f"module 'openvino' has no attribute {name!r}")


def with_converter() -> Any:
    """The ``openvino`` module with ``openvino.convert_model``."""
    ov = runtime()
    if "convert_model" not in vars(ov):  # not hasattr: that would call _converter_on_demand
        with _lock:
            from openvino.tools.ovc import convert_model

            if "convert_model" not in vars(ov):
                ov.convert_model = convert_model
    return ov


def core() -> Any:
    """The process's OpenVINO ``Core`` (creating one loads the plugin registry)."""
    global _core
    with _core_lock:
        if _core is None:
            _core = runtime().Core()
        return _core


def inference_started() -> bool:
    """True once this process has completed an inference (later ones may run concurrently)."""
    return _first_done


def first_inference(run: Callable[[], T]) -> T:
    """``run()``, one thread at a time until one call has completed in this process.

    The first inference of a process initialises statics in OpenVINO's Python binding; two
    threads doing it at once can deadlock (seen in 2 of 30 processes whose first two queries ran
    on two threads at the same moment: one thread in ``__cxa_guard_acquire``, the other waiting
    inside the initialiser; none in 40 with this guard). Later calls run concurrently, as before.
    """
    global _first_done
    if not _first_done:
        with _first_lock:
            if not _first_done:
                out = run()
                _first_done = True
                return out
    return run()
