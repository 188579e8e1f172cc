"""Training precision on the CPU (bfloat16 where native) and what the attention heads look at (eval's head statistics)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dan_core.training.metrics import head_statistics
from dan_core.training.precision import choose_precision, cpu_bf16_native

CPU = torch.device("cpu")


def test_the_choice_follows_the_cpu_and_the_flags() -> None:
    native, why = cpu_bf16_native()
    auto = choose_precision(CPU)
    assert (auto.bf16, auto.channels_last) == (native, native) and auto.reason == why
    assert not choose_precision(CPU, amp=False).bf16 and choose_precision(CPU, amp=False).reason == "--no-amp"
    forced = choose_precision(CPU, precision="bf16")
    assert forced.bf16 and forced.channels_last and forced.name == "bfloat16"
    assert not choose_precision(CPU, precision="bf16", channels_last=False).channels_last
    assert not choose_precision(CPU, precision="fp32").bf16
    with pytest.raises(ValueError):
        choose_precision(CPU, precision="fp16")


@pytest.mark.slow
def test_a_bfloat16_cpu_run_trains_records_its_choice_and_exports(tmp_path: Path, fer_dir: Path, capsys) -> None:
    from dan_core.training.checkpoint import load_model
    from dan_core.training.config import TrainConfig
    from dan_core.training.export import export_onnx
    from dan_core.training.train import main

    out = tmp_path / "run"
    cfg = TrainConfig(dataset="ferplus", data=str(fer_dir), out=str(out), image_size=32, color="gray", batch_size=32,
                      num_heads=2, threads=2, epochs=4, limit_train=256, limit_val=64, lr=0.05, tta_flip=False,
                      device="cpu", precision="bf16", partition_warmup=2, seed=3)
    main(cfg)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["ce"] < records[0]["ce"] - 0.05, [r["ce"] for r in records]  # it learns the faces it sees
    resolved = json.loads((out / "config.json").read_text())["resolved"]
    assert resolved["precision"] == "bfloat16" and resolved["channels_last"] and resolved["reason"].startswith("--precision bf16")
    assert "precision: bfloat16 + channels-last" in capsys.readouterr().err
    model = load_model(out / "last.pt")  # weights stay float32 under autocast: a checkpoint like any other
    assert all(p.dtype == torch.float32 for p in model.parameters())
    report = export_onnx(model, tmp_path / "m.onnx")
    assert report.max_abs_diff_probs < 1e-4


def test_head_statistics_tell_peaked_from_broad_and_alike_from_different() -> None:
    rng = np.random.default_rng(0)
    n = 50
    peaked = np.full((n, 4, 4), 0.1)
    peaked[:, 1, 2] = rng.uniform(5, 10, n)  # one cell lit
    broad = rng.uniform(0.9, 1.1, (n, 4, 4))
    same = broad + rng.normal(0, 1e-3, broad.shape)
    stats = head_statistics(np.stack([peaked, broad, same], axis=1))  # (N, 3, 4, 4)
    assert stats.peakiness[0] > 10 and stats.peakiness[1] < 1.2
    assert stats.correlation[1][2] > 0.99 and abs(stats.correlation[0][1]) < 0.3
    assert stats.pairwise_correlation == pytest.approx(np.mean([stats.correlation[0][1], stats.correlation[0][2],
                                                                stats.correlation[1][2]]), abs=1e-3)
    assert len(stats.fused_correlation) == 3 and stats.fused_correlation[0] > 0.9  # the peak dominates the mean
