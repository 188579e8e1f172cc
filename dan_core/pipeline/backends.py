"""Batched DAN inference: ONNX Runtime (CUDA when it is really active, else CPU) or torch.

Every backend exposes the same small surface: ``run(batch) -> (probs, attention)`` on a
float32 (N, 3, S, S) RGB batch in [0, 1], plus ``meta`` (the model's metadata as strings)
and ``name`` (the device that is really used, read back from the runtime, never guessed).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import sys
from pathlib import Path

import numpy as np

from dan_core.errors import DanFerError, first_line

BACKENDS = ("auto", "cuda", "cpu", "torch")


def cuda_driver_present() -> bool:
    """Whether an NVIDIA driver library can be loaded at all (cheap; loads nothing else)."""
    names = ["nvcuda.dll"] if sys.platform == "win32" else ["libcuda.so.1", ctypes.util.find_library("cuda") or ""]
    for name in filter(None, names):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def cuda_usable() -> bool:
    """Whether ONNX Runtime lists CUDA and an NVIDIA driver loads (a session may still fall back to the CPU:
    read its providers back)."""
    from dan_core.onnxrt import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime().get_available_providers() and cuda_driver_present()


class OnnxBackend:
    def __init__(self, path: Path, *, device: str = "auto", threads: int = 0) -> None:
        from dan_core.onnxrt import onnxruntime

        ort = onnxruntime()

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads > 0:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # spinning worker threads would steal the CPU the landmarker thread needs
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if device == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise DanFerError("--backend cuda: this onnxruntime has no CUDA support (install onnxruntime-gpu)")
        usable = device in ("auto", "cuda") and cuda_usable()
        if device == "cuda" and not usable:
            raise DanFerError("--backend cuda: no NVIDIA driver found on this machine")
        providers = (["CUDAExecutionProvider"] if usable else []) + ["CPUExecutionProvider"]
        # onnxruntime-gpu logs a screenful of errors when CUDA/cuDNN libraries are missing and then
        # falls back to CPU; we read the providers back below, so keep that noise quiet.
        ort.set_default_logger_severity(4 if usable else 3)
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as exc:  # corrupt file, not ONNX, wrong opset ...
            raise DanFerError(f"cannot load model {path}: {first_line(exc)}") from exc
        finally:
            ort.set_default_logger_severity(2)
        active = self.session.get_providers()
        if device == "cuda" and active[0] != "CUDAExecutionProvider":
            raise DanFerError("--backend cuda: onnxruntime could not start CUDA (missing CUDA/cuDNN libraries?)")
        self.name = "onnxruntime CUDA" if active[0] == "CUDAExecutionProvider" else "onnxruntime CPU"
        self.meta = dict(self.session.get_modelmeta().custom_metadata_map)
        if self.meta.get("precision") == "int8":
            self.name += " int8"
        names = [o.name for o in self.session.get_outputs()]
        if "probs" not in names or "attention" not in names:
            raise DanFerError(f"{path} is not a dan-fer model (outputs {names}, expected probs and attention)")
        self.input_name = self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probs, attention = self.session.run(["probs", "attention"], {self.input_name: batch})
        return probs.astype(np.float32, copy=False), attention.astype(np.float32, copy=False)


class TorchBackend:
    def __init__(self, path: Path, *, device: str = "auto", threads: int = 0) -> None:
        import torch

        from dan_core.training.checkpoint import load_model
        from dan_core.training.export import metadata

        if path.suffix.lower() == ".onnx":
            raise DanFerError(f"the torch backend needs a .pt checkpoint, not {path.name} "
                              "(use --backend auto|cpu|cuda for .onnx)")
        self._torch = torch
        model = load_model(path)
        if device == "cuda" and not torch.cuda.is_available():
            raise DanFerError("--backend cuda: torch sees no CUDA device")
        dev = torch.device("cuda:0" if device in ("auto", "cuda", "torch") and torch.cuda.is_available() else "cpu")
        self.model = model.to(dev).eval()
        self.device = dev
        self.name = f"torch {dev}"
        self.meta = metadata(model)

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            out = self.model(torch.from_numpy(batch).to(self.device))
            probs = out.logits.float().softmax(dim=1)
        return probs.cpu().numpy(), out.attention.float().cpu().numpy()


def make_backend(path: str | os.PathLike, backend: str = "auto", *, threads: int = 0) -> OnnxBackend | TorchBackend:
    """Open a model with the requested backend (auto|cuda|cpu|torch)."""
    if backend not in BACKENDS:
        raise DanFerError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    path = Path(path)
    if not path.is_file():
        raise DanFerError(f"model not found: {path}")
    is_pt = path.suffix.lower() in (".pt", ".pth")
    if backend == "torch" or is_pt:
        return TorchBackend(path, device=backend, threads=threads)
    return OnnxBackend(path, device=backend, threads=threads)


def model_info(meta: dict[str, str]) -> tuple[tuple[str, ...], int, str, int]:
    """(class_names, input_size, color, num_heads) from metadata, with one clear error when absent."""
    try:
        names = tuple(json.loads(meta["class_names"]))
        size = int(meta["input_size"])
        color = meta.get("color", "rgb")
        heads = int(meta.get("num_heads", "1"))
    except (KeyError, ValueError) as exc:
        raise DanFerError(f"the model has no usable dan-fer metadata ({first_line(exc)}); "
                          "re-export it with `dan-fer export`") from exc
    if color not in ("rgb", "gray"):
        raise DanFerError(f"the model's color metadata is {color!r}, expected rgb or gray")
    return names, size, color, heads
