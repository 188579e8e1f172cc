"""int8 inference: the quantised twin of a model, how the pipeline chooses it, and what it costs the shipped model
(PublicTest accuracy, per-class recall, the attention maps, the smiling photos)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from dan_core.data.readers import read_dataset
from dan_core.errors import DanFerError
from dan_core.model.dan import DAN, DANConfig
from dan_core.paths import MODELS_DIR
from dan_core.pipeline import Pipeline, PipelineConfig
from dan_core.pipeline.precision import choose_model, cpu_has_vnni, int8_twin
from dan_core.quantize import LIMITS, compare, prepare_faces
from dan_core.training.checkpoint import save_model
from dan_core.training.int8 import quantize_model

FLOAT, INT8 = MODELS_DIR / "dan_ferplus_112.onnx", MODELS_DIR / "dan_ferplus_112_int8.onnx"
SMILES = ("nasa_astronaut_eileen_collins.png", "mediapipe_testdata_sergey.png", "whitehouse_obama_portrait_smiling.jpg")


@pytest.fixture(scope="module")
def tiny_int8(tmp_path_factory) -> tuple[DAN, Path]:
    model = DAN(DANConfig(num_heads=2, input_size=32, color="gray", train_dataset="ferplus")).eval()
    out = tmp_path_factory.mktemp("int8") / "tiny_int8.onnx"
    faces = np.random.default_rng(0).random((48, 3, 32, 32), dtype=np.float32)
    quantize_model(model, out, faces)
    return model, out


def test_quantized_model_keeps_the_contract_and_says_it_is_int8(tiny_int8) -> None:
    model, path = tiny_int8
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["precision"] == "int8" and meta["num_heads"] == "2" and meta["color"] == "gray"
    ops = {n.op_type for n in __import__("onnx").load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # quantised, not a renamed float file
    logits, probs, attention = sess.run(None, {"faces": np.random.rand(3, 3, 32, 32).astype(np.float32)})
    assert probs.shape == (3, 8) and attention.shape == (3, 2, 1, 1) and np.allclose(probs.sum(1), 1, atol=1e-4)
    assert not list(path.parent.glob(".*.tmp"))


def test_precision_chooses_the_twin(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    assert choose_model(model, "auto", "cpu").path == model  # no twin: the float model, whatever the CPU
    assert choose_model(model, "fp32", "cpu").precision == "fp32"
    with pytest.raises(DanFerError, match="no m_int8.onnx beside m.onnx"):
        choose_model(model, "int8", "cpu")
    int8_twin(model).write_bytes(b"")
    auto = choose_model(model, "auto", "cpu")
    assert (auto.path, auto.precision) == ((int8_twin(model), "int8") if cpu_has_vnni() else (model, "fp32"))
    assert choose_model(model, "int8", "cpu").path == tmp_path / "m_int8.onnx"
    assert choose_model(model, "fp32", "cpu").path == model
    assert choose_model(model, "auto", "torch").precision == "fp32"  # the torch backend runs float models
    with pytest.raises(DanFerError, match="runs an ONNX model on the CPU"):
        choose_model(model, "int8", "torch")
    with pytest.raises(DanFerError, match="is an int8 model"):
        choose_model(int8_twin(model), "fp32", "cpu")


def test_export_int8_needs_calibration_faces(tmp_path: Path) -> None:
    ckpt = tmp_path / "tiny.pt"
    save_model(DAN(DANConfig(num_heads=2, input_size=32, color="gray")), ckpt)
    proc = subprocess.run([sys.executable, "-m", "dan_core", "export", str(ckpt), "--out", str(tmp_path / "t_int8.onnx"),
                           "--int8"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--calibration-data" in proc.stderr
    assert not (tmp_path / "t_int8.onnx").exists()


def test_calibration_faces_are_prepared_as_the_pipeline_prepares_live_faces(fer_dir: Path) -> None:
    faces = read_dataset("ferplus", fer_dir, "train").subset(np.arange(4))
    x = prepare_faces(faces, 112, "gray")
    assert x.shape == (4, 3, 112, 112) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert np.array_equal(x[:, 0], x[:, 2])  # grey in all three channels
    enlarged = cv2.resize(faces.pixels[0], (112, 112), interpolation=cv2.INTER_LINEAR)
    assert np.abs(x[0, 0] * 255 - enlarged).max() < 0.51  # the Aligner's last step for tiny faces


@pytest.mark.slow
def test_shipped_int8_model_keeps_the_float_models_accuracy_and_maps(fer_dir: Path) -> None:
    """The checks that make the int8 twin the default on VNNI CPUs, on all 3,199 PublicTest faces."""
    c = compare(FLOAT, INT8, read_dataset("ferplus", fer_dir, "val"))
    assert not c.failures(), c.failures()
    assert abs(c.reference.accuracy - c.candidate.accuracy) <= LIMITS["accuracy"]
    assert min(c.head_correlation) >= LIMITS["head_correlation"] and c.top1_agreement > 0.97


@pytest.mark.slow
def test_smiles_read_as_happiness_in_int8(media_dir: Path, landmarker_path: Path) -> None:
    config = PipelineConfig(model=str(FLOAT), landmarker=str(landmarker_path), mode="image", precision="int8")
    with Pipeline(config) as p:
        assert p.model_path == INT8 and p.backend.endswith("int8")
        for name in SMILES:
            result = p.process(cv2.imread(str(media_dir / name), cv2.IMREAD_UNCHANGED), 0.0)
            assert result.faces and result.faces[0].dominant == "happiness", name


def test_compare_refuses_models_of_other_classes(tmp_path: Path, fer_dir: Path, tiny_int8) -> None:
    _, path = tiny_int8
    other = tmp_path / "other.onnx"
    from dan_core.training.export import export_onnx

    export_onnx(DAN(DANConfig(class_names=("a", "b", "c", "d", "e", "f", "g", "h"), num_heads=2, input_size=32,
                              color="gray")), other)
    shutil.copyfile(path, tmp_path / "t.onnx")
    faces = read_dataset("ferplus", fer_dir, "val").subset(np.arange(8))
    with pytest.raises(DanFerError, match="other classes"):
        compare(other, tmp_path / "t.onnx", faces)
