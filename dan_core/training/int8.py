"""int8 DAN: ONNX Runtime's static quantisation of the float32 graph, given calibration faces.

QDQ format, int8 weights per output channel, uint8 activations, MinMax calibration. Only the backbone
is quantised (``float_nodes``). Which faces calibrate it, and how an int8 model is checked against its
float model, is ``dan_core.quantize`` (it prepares faces as the pipeline does); ``bench_model`` times
a random model quantised with random faces.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dan_core.errors import DanFerError
from dan_core.model.dan import DAN
from dan_core.onnxrt import onnxruntime
from dan_core.training.export import INPUT_NAME, export_onnx, halve_initializers

CALIBRATION_FACES = 512  # training faces that calibrate a model, each class in its share; 256-1024 scored the same


def float_nodes(proto) -> list[str]:
    """Names of the nodes kept in float32: everything after the backbone (the attention heads, their fusion and
    the classifier). They are a few percent of the work; in int8 the heads' large, widely spread values and the
    softmax across heads moved the decisions (PublicTest accuracy -1.5 points), while the backbone alone costs
    little. The maps the app draws are then computed in float32 from int8 features."""
    return [node.name for node in proto.graph.node if not node.name.startswith("/model/backbone/")]


@dataclass
class Int8Report:
    path: str
    bytes: int
    calibration_faces: int
    float_nodes: int  # nodes kept in float32: the heads, their fusion and the classifier


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
        keep = float_nodes(onnx.load(str(pre)))
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantiser warns through the root logger for every 1-D weight it leaves per-tensor
        try:
            quantize_static(str(pre), str(q), Faces(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=keep)
        finally:
            root.setLevel(level)
        proto = onnx.load(str(q))
        source = onnx.load(str(fp32))
        del proto.metadata_props[:]
        for entry in source.metadata_props:
            proto.metadata_props.add().CopyFrom(entry)
        quantizer_inputs = {i for n in proto.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear") for i in n.input}
        halve_initializers(proto, keep=frozenset(quantizer_inputs))  # the float heads' weights as float16, like the float file
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
    return Int8Report(str(out), out.stat().st_size, len(faces), len(keep))
