"""An exported DAN as an ONNX Runtime session, with the metadata of the export contract."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dan_core.errors import DanFerError
from dan_core.export import INPUT_NAME, OUTPUT_NAMES


@dataclass(frozen=True)
class ModelInfo:
    class_names: tuple[str, ...]
    input_size: int
    color: str
    num_heads: int
    train_dataset: str
    template: list[list[float]] | None
    version: str


def read_info(meta: dict[str, str], path: str | Path) -> ModelInfo:
    try:
        return ModelInfo(
            class_names=tuple(json.loads(meta["class_names"])),
            input_size=int(meta["input_size"]),
            color=meta.get("color", "rgb"),
            num_heads=int(meta.get("num_heads", "1")),
            train_dataset=meta.get("train_dataset", ""),
            template=json.loads(meta["template"]) if meta.get("template") else None,
            version=meta.get("version", ""),
        )
    except (KeyError, ValueError) as exc:
        raise DanFerError(f"{path} lacks dan-fer metadata ({exc}); export it with `dan-fer export`") from exc


def create_session(path: str | Path, providers: list[str] | None = None, threads: int = 0):
    """An InferenceSession; a missing or corrupt file becomes one DanFerError line."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise DanFerError(f"model not found: {path}")
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), opts, providers=providers or ["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise DanFerError(f"cannot load ONNX model {path}: {str(exc).strip().splitlines()[0][:200]}") from exc


class OnnxModel:
    """Runs ``faces`` (N, 3, S, S) float32 RGB [0, 1] -> logits, probs, attention."""

    def __init__(self, path: str | Path, providers: list[str] | None = None, threads: int = 0) -> None:
        self.path = Path(path)
        self.session = create_session(path, providers, threads)
        self.info = read_info(self.session.get_modelmeta().custom_metadata_map, path)
        names = [i.name for i in self.session.get_inputs()]
        if names != [INPUT_NAME]:
            raise DanFerError(f"{path} has inputs {names}, expected ['{INPUT_NAME}']")

    def __call__(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        logits, probs, attention = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: np.ascontiguousarray(faces, np.float32)})
        return logits, probs, attention
