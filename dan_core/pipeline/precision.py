"""Which arithmetic DAN runs in: the float model, or its int8 twin beside it (``<name>_int8.onnx``).

``auto`` takes the int8 model where one lies beside the float model, the backend is ONNX Runtime on
the CPU and the CPU has VNNI (AVX512-VNNI, AVX-VNNI or AMX-INT8): there it runs two to three times
faster at the same accuracy (models/README.md). Without VNNI int8 gains little, so ``auto`` keeps
float32; ``int8`` / ``fp32`` choose one whatever the CPU.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from dan_core.errors import DanFerError
from dan_core.pipeline.backends import cuda_usable

PRECISIONS = ("auto", "fp32", "int8")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
INT8_SUFFIX = "_int8"


@cache
def cpu_has_vnni() -> bool:
    """Whether this CPU has an int8 dot-product instruction set (Linux: /proc/cpuinfo; elsewhere: assume not)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return any(flag in line.split() for flag in VNNI_FLAGS)
    except OSError:
        pass
    return False


def int8_twin(path: Path) -> Path:
    """``models/x.onnx`` -> ``models/x_int8.onnx``: where ``dan-fer export --int8`` puts a float model's int8 twin."""
    return path.with_name(f"{path.stem}{INT8_SUFFIX}{path.suffix}")


def is_int8_name(path: Path) -> bool:
    return path.stem.endswith(INT8_SUFFIX)


@dataclass(frozen=True)
class ModelChoice:
    path: Path  # the file the backend opens
    precision: str  # "fp32" or "int8"
    reason: str


def choose_model(path: Path, precision: str = "auto", backend: str = "auto") -> ModelChoice:
    """The model file to open for ``precision`` (auto|fp32|int8) with ``backend``; one DanFerError line when the
    choice cannot be met (int8 asked with no int8 model, or with the torch or CUDA backend)."""
    if precision not in PRECISIONS:
        raise DanFerError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    onnx_cpu = path.suffix.lower() == ".onnx" and (backend == "cpu" or backend == "auto" and not cuda_usable())
    if is_int8_name(path):  # an int8 model given directly
        if precision == "fp32":
            raise DanFerError(f"{path.name} is an int8 model: give its float model for --precision fp32")
        return ModelChoice(path, "int8", "an int8 model was given")
    if precision == "fp32":
        return ModelChoice(path, "fp32", "--precision fp32")
    twin = int8_twin(path)
    if precision == "int8":
        if not onnx_cpu:
            raise DanFerError(f"--precision int8 runs an ONNX model on the CPU (not {path.suffix} with --backend {backend})")
        if not twin.is_file():
            raise DanFerError(f"--precision int8: no {twin.name} beside {path.name} (make it with "
                              f"`dan-fer export CHECKPOINT --out {twin.name} --int8`)")
        return ModelChoice(twin, "int8", "--precision int8")
    if not onnx_cpu:
        return ModelChoice(path, "fp32", f"the {backend} backend runs float models")
    if not twin.is_file():
        return ModelChoice(path, "fp32", f"no {twin.name} beside the model")
    if not cpu_has_vnni():
        return ModelChoice(path, "fp32", "this CPU has no VNNI: int8 would gain little")
    return ModelChoice(twin, "int8", "this CPU has VNNI")
