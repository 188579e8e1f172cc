"""ONNX Runtime without its telemetry: every place dan-fer creates a session imports it through here.

On import, ONNX Runtime (1.2x, Linux too) appends telemetry events (the executable's path, the OS,
the CPU, a device id) to a database under ``~/.cache/Microsoft/DeveloperTools/.onnxruntime``.
``ORT_DISABLE_TELEMETRY=1`` set before the first import stops that (``disable_telemetry_events()``
alone does not); a value the user set is kept.
"""

from __future__ import annotations

import os
from types import ModuleType


def onnxruntime() -> ModuleType:
    """The ``onnxruntime`` module, with its telemetry off."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # read once, when the module is first imported
    import onnxruntime as ort

    ort.disable_telemetry_events()
    return ort
