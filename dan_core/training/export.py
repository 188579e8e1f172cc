"""ONNX export with the contract the pipeline and the app rely on.

Input ``faces`` float32 (N, 3, H, W), RGB in [0, 1] (normalisation is inside the graph),
dynamic batch. Outputs ``logits`` (N, C), ``probs`` (N, C), ``attention`` (N, K, h, w).
Metadata: class_names (JSON), input_size, color, num_heads, train_dataset, version,
mean, std, config (JSON), and when known template (JSON, 5 alignment points) and native_size
(pixel size of tiny training faces). The last two come from the model's config, else from what
its training dataset declares (``classes.DATASETS``).

One self-contained file. ``half=True`` stores the weights as float16 initializers that
are cast to float32 once when ONNX Runtime loads the graph: half the size, float32 maths.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dan_core import __version__
from dan_core.classes import dataset_info
from dan_core.data.templates import dataset_template_path, load_template_file, template_points
from dan_core.errors import DanFerError
from dan_core.model.dan import DAN

INPUT_NAME = "faces"
OUTPUT_NAMES = ("logits", "probs", "attention")


class ExportWrapper(nn.Module):
    def __init__(self, model: DAN) -> None:
        super().__init__()
        self.model = model

    def forward(self, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model(faces)
        return out.logits, out.logits.softmax(dim=1), out.attention


def metadata(model: DAN) -> dict[str, str]:
    """The model's ONNX metadata: everything the pipeline needs to prepare faces for it."""
    c = model.config
    info = dataset_info(c.train_dataset)
    native_size = c.native_size or (info.native_size if info is not None else None)
    template = c.template
    if template is None and dataset_template_path(c.train_dataset) is not None:
        template = template_points(load_template_file(dataset_template_path(c.train_dataset), c.input_size))
    meta = {
        "class_names": json.dumps(list(c.class_names)),
        "input_size": str(c.input_size),
        "color": c.color,
        "num_heads": str(c.num_heads),
        "train_dataset": c.train_dataset,
        "version": __version__,
        "mean": json.dumps(list(c.mean)),
        "std": json.dumps(list(c.std)),
        "config": c.to_json(),
    }
    if template is not None:
        meta["template"] = json.dumps(template)
    if native_size:
        meta["native_size"] = str(native_size)
    return meta


def halve_initializers(model_proto, min_elements: int = 16, keep: frozenset[str] = frozenset()) -> None:
    """Store float32 initializers as float16 and insert one Cast back to float32 for each (those named in
    ``keep`` stay as they are)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = model_proto.graph
    casts = []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or init.name in keep:
            continue
        arr = numpy_helper.to_array(init)
        if arr.size < min_elements or np.abs(arr).max() >= np.finfo(np.float16).max:
            continue  # tiny tensors and values beyond float16's range stay float32
        name = init.name
        half = numpy_helper.from_array(arr.astype(np.float16), name=f"{name}__fp16")
        init.CopyFrom(half)
        casts.append(helper.make_node("Cast", [f"{name}__fp16"], [name], to=TensorProto.FLOAT, name=f"{name}__cast"))
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model_proto)


@dataclass
class ExportReport:
    path: str
    bytes: int
    max_abs_diff_probs: float
    max_abs_diff_attention: float
    providers: list[str]


def export_onnx(model: DAN, path: str | Path, *, half: bool = False, opset: int = 17, verify_tol: float | None = None,
                batch: int = 2) -> ExportReport:
    """Export ``model`` to one ONNX file, check it and compare ONNX Runtime with torch.

    ``verify_tol`` defaults to 1e-4 (float32) or 1e-3 (float16 weights) max abs diff of probs.
    """
    import onnx

    from dan_core.onnxrt import onnxruntime

    ort = onnxruntime()

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DanFerError(f"cannot create {path.parent}: {exc}") from exc
    model = model.float().eval().cpu()
    wrapper = ExportWrapper(model).eval()
    size = model.config.input_size
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    buf = io.BytesIO()
    torch.onnx.export(
        wrapper, (x,), buf, dynamo=False, input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
        dynamic_axes={INPUT_NAME: {0: "batch"}, **{n: {0: "batch"} for n in OUTPUT_NAMES}},
        opset_version=opset, do_constant_folding=True,
    )
    proto = onnx.load_from_string(buf.getvalue())
    if half:
        halve_initializers(proto)
        # the float32 reference is the model with the same rounded weights
    for k, v in metadata(model).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    proto.producer_name = "dan-fer"
    proto.producer_version = __version__
    onnx.checker.check_model(proto)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # whole or not at all: renamed once written and checked
    try:
        onnx.save(proto, str(tmp))
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DanFerError(f"cannot write {path}: {exc.strerror or exc}") from exc

    try:
        with torch.inference_mode():
            ref_logits, ref_probs, ref_attn = (t.numpy() for t in wrapper(x))
        sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        logits, probs, attn = sess.run(list(OUTPUT_NAMES), {INPUT_NAME: x.numpy()})
        diff_p = float(np.abs(probs - ref_probs).max())
        diff_a = float(np.abs(attn - ref_attn).max() / max(np.abs(ref_attn).max(), 1e-6))
        tol = verify_tol if verify_tol is not None else (1e-3 if half else 1e-4)
        if diff_p > tol:
            raise DanFerError(f"ONNX export check failed: max |probs diff| {diff_p:.2e} > {tol:.0e}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a failed check, Ctrl+C: no half-made file is left
    return ExportReport(str(path), path.stat().st_size, diff_p, diff_a, sess.get_providers())
