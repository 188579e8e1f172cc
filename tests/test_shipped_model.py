"""The default model shipped in models/: metadata, accuracy on unseen PublicTest faces, and the
float16-weight files against each other."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from dan_core.classes import FERPLUS
from dan_core.data.augment import to_float
from dan_core.data.readers import read_ferplus
from dan_core.evaluate import evaluate_model
from dan_core.paths import MODELS_DIR, default_model_path
from dan_core.training.checkpoint import load_model

ONNX = MODELS_DIR / "dan_ferplus_112.onnx"
CKPT = MODELS_DIR / "dan_ferplus_112.pt"
INT8 = MODELS_DIR / "dan_ferplus_112_int8.onnx"


def test_the_app_finds_the_shipped_model_without_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAN_FER_MODEL", raising=False)
    assert default_model_path() == ONNX
    assert sorted(p.name for p in MODELS_DIR.glob("*.onnx")) == [ONNX.name, INT8.name]  # the float model and its int8 twin
    assert ONNX.stat().st_size < 45e6 and CKPT.stat().st_size < 45e6


def test_metadata() -> None:
    sess = ort.InferenceSession(str(ONNX), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    assert tuple(json.loads(meta["class_names"])) == FERPLUS
    assert meta["input_size"] == "112" and meta["color"] == "gray" and meta["num_heads"] == "4"
    assert meta["train_dataset"] == "ferplus"
    template = json.loads(meta["template"])
    assert len(template) == 5 and all(0 < v < 1 for point in template for v in point)
    _, probs, attention = sess.run(None, {"faces": np.random.rand(2, 3, 112, 112).astype(np.float32)})
    assert probs.shape == (2, 8) and attention.shape == (2, 4, 4, 4)


def test_classifies_unseen_publictest_faces_far_better_than_chance(fer_dir: Path) -> None:
    res = evaluate_model(ONNX, "ferplus", fer_dir, "val", limit=600, show=False)
    # chance: 12.5% (uniform) and 37% (always "neutral"); mean-class chance is 12.5%
    assert res.accuracy > 0.55, res.table()
    assert res.mean_class_accuracy > 0.25, res.table()
    assert res.per_class["happiness"] > 0.6 and res.per_class["neutral"] > 0.6


def test_onnx_and_checkpoint_agree(fer_dir: Path) -> None:
    recs = read_ferplus(fer_dir, "val").subset(np.arange(32))
    x = to_float(torch.from_numpy(recs.pixels).unsqueeze(1), 112)
    model = load_model(CKPT)
    with torch.inference_mode():
        torch_probs = model(x).logits.softmax(1).numpy()
    sess = ort.InferenceSession(str(ONNX), providers=["CPUExecutionProvider"])
    onnx_probs = sess.run(["probs"], {"faces": x.numpy()})[0]
    assert np.abs(onnx_probs - torch_probs).max() < 1e-3
