"""Calibration folded into the final BatchNorm: exact in eval mode, and the fitted T is the true one."""

from __future__ import annotations

import numpy as np
import torch

from dan_core.model.dan import DAN, DANConfig
from dan_core.training.calibrate import fit_temperature, fold_into_bn, softmax


def test_folding_shift_and_temperature_into_bn_is_exact() -> None:
    torch.manual_seed(0)
    model = DAN(DANConfig(num_heads=2, input_size=32)).eval()
    with torch.no_grad():  # a trained-looking final layer
        model.bn.running_mean.normal_()
        model.bn.running_var.uniform_(0.5, 2)
        model.bn.weight.normal_()
        model.bn.bias.normal_()
    x = torch.rand(3, 3, 32, 32)
    with torch.inference_mode():
        before = model(x).logits
    shift = np.linspace(-1, 1, 8)
    fold_into_bn(model, temperature=1.7, shift=shift)
    with torch.inference_mode():
        after = model(x).logits
    assert torch.allclose(after, (before + torch.tensor(shift, dtype=torch.float32)) / 1.7, atol=1e-5)


def test_fit_temperature_recovers_an_overconfident_scale() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(4000, 8)) * 2
    labels = np.array([rng.choice(8, p=p) for p in softmax(true_logits)])
    assert abs(fit_temperature(true_logits * 2.5, labels) - 2.5) < 0.2
    assert abs(fit_temperature(true_logits, labels) - 1.0) < 0.1


def test_auto_shift_is_chosen_on_the_selection_split_and_folded_in() -> None:
    from dan_core.data.dataset import FaceRecords
    from dan_core.training.calibrate import calibrate, model_logits

    torch.manual_seed(0)
    model = DAN(DANConfig(num_heads=2, input_size=32)).eval()
    rng = np.random.default_rng(0)
    records = FaceRecords(labels=rng.integers(0, 8, 64), class_names=model.config.class_names,
                          pixels=rng.integers(0, 255, (64, 48, 48), dtype=np.uint8))
    prior = np.array([0.37, 0.27, 0.13, 0.12, 0.09, 0.01, 0.005, 0.005])
    before = model_logits(model, records, show=False)
    report = calibrate(model, records, prior, la_tau=None, show=False)
    assert report["la_tau"] in [r["tau"] for r in report["scan"]] and len(report["scan"]) == 5
    best = max(report["scan"], key=lambda r: r["accuracy"] + r["mean_class_accuracy"])
    assert report["la_tau"] == best["tau"]
    after = model_logits(model, records, show=False)
    expected = (before - report["la_tau"] * np.log(prior)) / report["temperature"]
    assert np.allclose(after, expected, atol=1e-4)
