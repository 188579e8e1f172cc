"""The training campaign's pieces: selection split, class-aware losses, device batches, the
generated train CLI, and step-level checkpoints that survive a kill."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from dan_core.data.augment import AugmentConfig
from dan_core.data.batches import DeviceBatches, class_prior, holdout_split
from dan_core.data.dataset import FaceRecords
from dan_core.model.losses import ClassAwareLoss, make_target, soft_cross_entropy
from dan_core.training.checkpoint import load_file
from dan_core.training.config import TrainConfig, config_from_args, get_args_parser

ROOT = Path(__file__).resolve().parent.parent


def _records(n: int = 200, classes: int = 4, seed: int = 0) -> FaceRecords:
    rng = np.random.default_rng(seed)
    labels = rng.choice(classes, size=n, p=[0.6, 0.25, 0.1, 0.05][:classes]).astype(np.int64)
    soft = np.eye(classes, dtype=np.float32)[labels] * 0.7 + 0.3 / classes
    pixels = rng.integers(0, 255, size=(n, 8, 8), dtype=np.uint8)
    return FaceRecords(labels=labels, class_names=tuple("abcd"[:classes]), pixels=pixels, soft_targets=soft)


def test_holdout_is_stratified_disjoint_and_repeatable() -> None:
    labels = np.repeat(np.arange(4), [500, 200, 30, 3])
    keep, held = holdout_split(labels, 0.1, seed=5)
    assert np.intersect1d(keep, held).size == 0 and len(keep) + len(held) == len(labels)
    assert np.bincount(labels[held], minlength=4).tolist() == [50, 20, 3, 1]  # every class, even the rarest
    keep2, held2 = holdout_split(labels, 0.1, seed=5)
    assert np.array_equal(held, held2)
    assert not np.array_equal(held, holdout_split(labels, 0.1, seed=6)[1])


def test_class_prior_uses_vote_distributions() -> None:
    rec = _records()
    prior = class_prior(rec)
    assert prior.shape == (4,) and abs(prior.sum() - 1) < 1e-9
    assert np.allclose(prior, rec.soft_targets.mean(0) / rec.soft_targets.mean(0).sum())


def test_class_aware_loss_reduces_to_plain_and_matches_hand_computed_adjustment() -> None:
    torch.manual_seed(0)
    logits, target = torch.randn(6, 4), torch.softmax(torch.randn(6, 4), 1)
    prior = np.array([0.6, 0.25, 0.1, 0.05])
    plain = ClassAwareLoss(prior)
    assert torch.allclose(plain(logits, target), soft_cross_entropy(logits, target), atol=1e-6)
    adjusted = ClassAwareLoss(prior, tau=1.0)
    by_hand = -(target * torch.log_softmax(logits + torch.tensor(np.log(prior), dtype=torch.float32), 1)).sum(1).mean()
    assert torch.allclose(adjusted(logits, target), by_hand, atol=1e-6)
    # a rare class gets a larger loss for the same logits: it must win by a margin
    rare = torch.nn.functional.one_hot(torch.full((6,), 3), 4).float()
    assert adjusted(logits, rare) > plain(logits, rare)
    weighted = ClassAwareLoss(prior, weight_power=1.0)
    w = 1 / torch.tensor(prior, dtype=torch.float32)
    w = w / (w * torch.tensor(prior, dtype=torch.float32)).sum()
    assert torch.allclose(weighted.weight, w)


def test_make_target_modes() -> None:
    labels = torch.tensor([0, 1, 2])
    soft = torch.tensor([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])  # last row: no votes
    assert torch.equal(make_target(labels, soft, "soft"), soft)
    assert torch.equal(make_target(labels, soft, "hard"), torch.eye(3))
    torch.manual_seed(0)
    drawn = torch.stack([make_target(labels, soft, "sample") for _ in range(200)])  # (200, 3, 3)
    assert torch.all(drawn.sum(-1) == 1)
    assert drawn[:, 0, 2].sum() == 0 and 40 < drawn[:, 0, 0].sum() < 160  # drawn only where votes are
    assert torch.all(drawn[:, 1, 1] == 1) and torch.all(drawn[:, 2, 2] == 1)  # no votes: the label


def test_device_batches_cover_an_epoch_once_and_reshuffle() -> None:
    rec = _records(n=100)
    batches = DeviceBatches(rec, 16, torch.device("cpu"), seed=1)
    assert len(batches) == 6
    first = list(batches)
    images, labels, targets = first[0]
    assert images.shape == (16, 1, 8, 8) and images.dtype == torch.uint8 and targets.shape == (16, 4)
    seen = torch.cat([b[1] for b in first])
    assert len(seen) == 96
    flat = torch.cat([b[0].reshape(len(b[0]), -1) for b in first])
    assert len(torch.unique(flat, dim=0)) == 96  # no face twice in one epoch
    again = list(batches)
    assert torch.equal(again[0][0], images)  # same epoch, same order
    batches.set_epoch(1)
    assert not torch.equal(next(iter(batches))[0], images)
    balanced = DeviceBatches(rec, 50, torch.device("cpu"), balanced=True, seed=2)
    counts = torch.bincount(torch.cat([b[1] for _ in range(20) for b in balanced]), minlength=4).float()
    assert counts.min() / counts.max() > 0.7  # each class drawn about equally


def test_every_train_option_has_help_and_defaults_round_trip() -> None:
    parser = get_args_parser()
    fields = [f for f in dataclasses.fields(TrainConfig) if f.name != "augment"] + list(dataclasses.fields(AugmentConfig))
    assert all(f.metadata.get("help") for f in fields)
    assert all(a.help for a in parser._actions if a.dest != "help")
    cfg = config_from_args(parser.parse_args(["--data", "x"]))
    assert cfg == TrainConfig(data="x")
    cfg = config_from_args(parser.parse_args(["--data", "x", "--no-tta", "--scale-min", "0.9", "--erase-p", "0.1",
                                              "--loss", "logit-adjusted", "--holdout", "0.1", "--val-split", "holdout",
                                              "--no-amp", "--data-on-device"]))
    assert cfg.tta_flip is False and cfg.augment.scale == (0.9, AugmentConfig().scale[1]) and cfg.augment.erase_p == 0.1
    assert cfg.loss == "logit-adjusted" and cfg.holdout == 0.1 and cfg.amp is False and cfg.data_on_device


TINY = ["--dataset", "ferplus", "--image-size", "32", "--color", "gray", "--batch-size", "16", "--num-heads", "2",
        "--threads", "1", "--limit-val", "32"]


def test_holdout_run_with_logit_adjustment_validates_on_the_held_out_faces(tmp_path: Path, fer_dir: Path) -> None:
    from dan_core.training.train import main

    out = tmp_path / "run"
    cfg = TrainConfig(dataset="ferplus", data=str(fer_dir), out=str(out), image_size=32, color="gray", batch_size=16,
                      num_heads=2, threads=1, epochs=1, max_steps=3, limit_train=400, holdout=0.05, val_split="holdout",
                      loss="logit-adjusted", targets="sample", data_on_device=True)
    record = main(cfg)
    assert record["epoch"] == 1 and np.isfinite(record["loss"])
    ckpt = load_file(out / "last.pt")
    assert ckpt["train_config"]["val_split"] == "holdout" and ckpt["train_config"]["loss"] == "logit-adjusted"
    assert 0 <= record["val_accuracy"] <= 1 and set(record["val_per_class"]) == set(ckpt["class_names"])


def test_freeze_keeps_the_early_backbone_and_its_batchnorm_statistics_fixed(tmp_path: Path, fer_dir: Path) -> None:
    from dan_core.training.train import main

    common = dict(dataset="ferplus", data=str(fer_dir), image_size=32, color="gray", batch_size=16, num_heads=2,
                  threads=1, epochs=1, max_steps=2, limit_train=200, limit_val=32, tta_flip=False)
    main(TrainConfig(out=str(tmp_path / "a"), **common))
    start = load_file(tmp_path / "a" / "last.pt")["model"]
    main(TrainConfig(out=str(tmp_path / "b"), weights=str(tmp_path / "a" / "last.pt"), freeze="layer1", lr=0.05,
                     **common))
    after = load_file(tmp_path / "b" / "last.pt")["model"]
    fixed = [k for k in start if k.startswith(("backbone.conv1", "backbone.bn1", "backbone.layer1."))]
    assert any(k.endswith("running_mean") for k in fixed)
    assert all(torch.equal(start[k], after[k]) for k in fixed)
    moved = [k for k in start if k.startswith(("backbone.layer2.", "backbone.layer4.")) and k.endswith("weight")]
    assert all(not torch.equal(start[k], after[k]) for k in moved)


@pytest.mark.slow
def test_a_killed_run_resumes_mid_epoch_from_its_step_checkpoint(tmp_path: Path, fer_dir: Path) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "dan_core.train", "--data", str(fer_dir), "--out", str(out), "--epochs", "1",
           "--limit-train", "4000", "--max-steps", "150", "--checkpoint-minutes", "0.002", *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    step, deadline = 0, time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            if (out / "last.pt").is_file():
                step = int(load_file(out / "last.pt").get("step", 0))
                if step >= 5:
                    break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert step >= 5, "no mid-epoch checkpoint appeared"
    step = int(load_file(out / "last.pt")["step"])  # it may have saved once more before the kill landed
    assert not (out / "metrics.jsonl").exists()  # killed before the epoch ended
    done = subprocess.run([sys.executable, "-m", "dan_core.train", "--data", "unused", "--resume", str(out / "last.pt")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"at epoch 1, step {step + 1}" in done.stderr
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1]
    assert int(load_file(out / "last.pt")["step"]) == 0  # the epoch-end checkpoint
