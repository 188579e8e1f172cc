"""int8 DAN for ONNX Runtime on the CPU: ``dan-fer export CKPT --out M.onnx --int8``.

ONNX Runtime's own static quantisation (QDQ format, int8 weights per output channel, uint8
activations) of the float32 graph, calibrated on training faces prepared as the pipeline prepares
live faces: a 48 px FER face enlarged bilinearly to the model's input size and given as grey in
all three channels, the last step of ``pipeline.align.Aligner.warp`` for a model of tiny faces.
CPUs with VNNI (AVX512-VNNI, AVX-VNNI, AMX) run it about three times faster than float32.

The attention maps the app draws are kept: the nodes after the spatial attention's last
convolutions (the ReLU and the sum over channels that make each head's map) stay in float32,
so each map is computed from int8 features but not rounded itself. ``compare`` measures what the
rounding costs on a labelled split: accuracy, per-class recall and each head's map against the
float model's.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dan_core.data.dataset import FaceRecords
from dan_core.data.readers import read_dataset
from dan_core.errors import DanFerError
from dan_core.model.dan import DAN
from dan_core.onnxrt import onnxruntime
from dan_core.pipeline.align import to_model_input
from dan_core.training.export import INPUT_NAME, export_onnx

CALIBRATION_FACES = 512  # stratified draw from the training faces; 256-1024 give the same accuracy


def prepare_faces(records: FaceRecords, size: int, color: str) -> np.ndarray:
    """Dataset faces -> (N, 3, size, size) float32 model input, as the pipeline prepares a live face
    of a model trained on tiny faces: enlarged bilinearly (OpenCV), then ``to_model_input``."""
    if records.pixels is None:
        raise DanFerError("calibration needs faces decoded in memory (the FER+ reader)")
    crops = []
    for face in records.pixels:
        bgr = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR) if face.ndim == 2 else cv2.cvtColor(face, cv2.COLOR_RGB2BGR)
        crops.append(cv2.resize(bgr, (size, size), interpolation=cv2.INTER_LINEAR))
    return to_model_input(crops, color)


def calibration_faces(dataset: str, data: str | Path, size: int, color: str, count: int = CALIBRATION_FACES,
                      seed: int = 0) -> np.ndarray:
    """``count`` training faces, the same share of each class as the training set, prepared for the model."""
    train = read_dataset(dataset, data, "train")
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(train.labels == c), max(1, round(count * np.mean(train.labels == c))), replace=False)
             for c in np.unique(train.labels)]
    return prepare_faces(train.subset(np.sort(np.concatenate(picks))), size, color)


def float_attention_nodes(proto) -> list[str]:
    """Names of the nodes that turn the spatial attention's convolutions into each head's map (Add, Relu,
    ReduceSum), kept in float32 so the drawn maps are not rounded."""
    producers = {out: node for node in proto.graph.node for out in node.output}
    keep = []
    for node in proto.graph.node:
        if node.op_type == "ReduceSum" and "sa" in node.name:
            stack = [node]
            while stack:
                n = stack.pop()
                keep.append(n.name)
                stack += [producers[i] for i in n.input if i in producers and producers[i].op_type in ("Add", "Relu")]
    return sorted(set(keep))


@dataclass
class Int8Report:
    path: str
    bytes: int
    calibration_faces: int
    float_nodes: int  # nodes kept in float32 for the attention maps


def quantize_model(model: DAN, out: str | Path, faces: np.ndarray) -> Int8Report:
    """Export ``model`` in float32, quantise it with ``faces`` (N, 3, S, S) as calibration data, write ``out``
    (through a temporary name, like every output) with the float model's metadata plus ``precision: int8``."""
    import onnx

    ort = onnxruntime()
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Faces(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{INPUT_NAME: faces[i : i + 32]} for i in range(0, len(faces), 32)])

        def get_next(self) -> dict | None:
            return next(self.batches, None)

    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="dan-fer-int8-") as tmp:
        fp32, pre, q = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        export_onnx(model, fp32)
        quant_pre_process(str(fp32), str(pre))
        float_nodes = float_attention_nodes(onnx.load(str(pre)))
        quantize_static(str(pre), str(q), Faces(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=float_nodes)
        proto = onnx.load(str(q))
        source = onnx.load(str(fp32))
        del proto.metadata_props[:]
        for entry in source.metadata_props:
            proto.metadata_props.add().CopyFrom(entry)
        extra = proto.metadata_props.add()
        extra.key, extra.value = "precision", "int8"
        onnx.checker.check_model(proto)
        onnx.save(proto, str(q))
        ort.InferenceSession(str(q), providers=["CPUExecutionProvider"])  # it loads, or nothing is written
        tmp_out = out.with_name(f".{out.name}.tmp")
        try:
            tmp_out.write_bytes(q.read_bytes())
            tmp_out.replace(out)
        except OSError as exc:
            tmp_out.unlink(missing_ok=True)
            raise DanFerError(f"cannot write {out}: {exc.strerror or exc}") from exc
    return Int8Report(str(out), out.stat().st_size, len(faces), len(float_nodes))
