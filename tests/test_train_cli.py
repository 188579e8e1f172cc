"""dan-fer train / eval / export on the real packed FER data, tiny and on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from dan_core.cli import main
from dan_core.training.checkpoint import load_file

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--image-size", "32", "--color", "gray", "--batch-size", "16", "--limit-train", "96", "--limit-val", "64",
        "--num-heads", "2", "--threads", "1"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, fer_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("run")
    code = main(["train", "--dataset", "ferplus", "--data", str(fer_dir), "--out", str(out), "--epochs", "1",
                 "--targets", "soft", "--ema", "0.9", "--scheduler", "step", *TINY])
    assert code == 0
    return out


def test_train_writes_checkpoints_metrics_and_config(run_dir: Path) -> None:
    assert {"config.json", "metrics.jsonl", "last.pt", "best.pt"} <= {p.name for p in run_dir.iterdir()}
    record = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    for key in ("loss", "ce", "affinity", "partition", "val_accuracy", "val_mean_class_accuracy", "val_per_class"):
        assert key in record
    assert np.isfinite(record["loss"])
    ckpt = load_file(run_dir / "last.pt")
    assert {"model", "optimizer", "scheduler", "epoch", "config", "class_names", "train_config", "ema"} <= set(ckpt)
    assert ckpt["class_names"][:2] == ["neutral", "happiness"]
    assert json.loads((run_dir / "config.json").read_text())["targets"] == "soft"


def test_resume_continues_from_the_next_epoch(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import shutil

    shutil.copytree(run_dir, tmp_path / "run")
    code = main(["train", "--data", "unused", "--resume", str(tmp_path / "run" / "last.pt"), "--epochs", "2"])
    assert code == 0
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]


def test_eval_prints_numbers_and_json(run_dir: Path, fer_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    png = tmp_path / "cm.png"
    assert main(["eval", "--model", str(run_dir / "best.pt"), "--dataset", "ferplus", "--data", str(fer_dir),
                 "--limit", "64", "--json", "--tta", "--confusion", str(png)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 64 and 0 <= res["accuracy"] <= 1
    assert set(res) >= {"n", "accuracy", "mean_class_accuracy", "per_class", "confusion", "class_names"}
    assert np.asarray(res["confusion"]).sum() == 64
    assert png.stat().st_size > 1000
    assert main(["eval", "--model", str(run_dir / "best.pt"), "--dataset", "ferplus", "--data", str(fer_dir),
                 "--limit", "32"]) == 0
    assert "mean-class accuracy" in capsys.readouterr().out


def test_export_meets_the_onnx_contract(run_dir: Path, fer_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    template = tmp_path / "template.json"
    template.write_text(json.dumps({"points": [[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]]}))
    out = tmp_path / "model.onnx"
    assert main(["export", str(run_dir / "best.pt"), "--out", str(out), "--half", "--template", str(template)]) == 0
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".data"] == []  # one self-contained file
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["class_names"])[0] == "neutral" and meta["input_size"] == "32" and meta["color"] == "gray"
    assert meta["num_heads"] == "2" and meta["train_dataset"] == "ferplus" and meta["version"]
    assert json.loads(meta["template"])[2] == [0.5, 0.6]
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["faces"]
    assert [o.name for o in sess.get_outputs()] == ["logits", "probs", "attention"]
    for batch in (1, 5):  # dynamic batch
        logits, probs, attn = sess.run(None, {"faces": np.random.rand(batch, 3, 32, 32).astype(np.float32)})
        assert logits.shape == (batch, 8) and probs.shape == (batch, 8) and attn.shape == (batch, 2, 1, 1)
        assert np.allclose(probs.sum(1), 1, atol=1e-5)
    # the ONNX model scores the same as the checkpoint it came from
    capsys.readouterr()
    args = ["--dataset", "ferplus", "--data", str(fer_dir), "--limit", "48", "--json"]
    main(["eval", "--model", str(out), *args])
    onnx_res = json.loads(capsys.readouterr().out)
    main(["eval", "--model", str(run_dir / "best.pt"), *args])
    pt_res = json.loads(capsys.readouterr().out)
    assert abs(onnx_res["accuracy"] - pt_res["accuracy"]) <= 1 / 48


def test_bad_inputs_give_one_error_line(tmp_path: Path, fer_dir: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    proc = subprocess.run([sys.executable, "-m", "dan_core", "eval", "--model", str(bad), "--dataset", "ferplus",
                           "--data", str(fer_dir)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "cannot read checkpoint" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "dan_core", "train", "--dataset", "ferplus", "--data",
                           str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "no FER+ vote table" in proc.stderr


@pytest.mark.slow
def test_torchrun_ddp_two_cpu_processes(tmp_path: Path, fer_dir: Path) -> None:
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dan_core.train",
           "--dataset", "ferplus", "--data", str(fer_dir), "--out", str(out), "--epochs", "1", "--device", "cpu",
           "--balanced", *TINY]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["epoch"] == 1
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert not any(k.startswith("module.") for k in ckpt["model"])  # saved without the DDP wrapper
