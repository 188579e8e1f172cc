"""Calibrate a trained DAN on the selection split and fold the result into its last layer.

DAN's logits are ``bn(fc(x))``; in eval mode that BatchNorm1d is an affine map, so dividing its
weight and bias by T divides the logits by T (temperature scaling, Guo et al. 2017), and adding
``s`` to its bias shifts each class's logit (post-hoc logit adjustment, Menon et al. 2021: ``s =
-tau * log(prior)``). The calibrated checkpoint is an ordinary one: export, the app and every
other consumer see calibrated probabilities with no extra step.

    python -m dan_core.calibrate runs/x/best.pt --data ../shared/data/fer2013 --holdout 0.1 --out cal.pt

Fit on the held-out training faces (``--holdout``, the run's own selection split), never on the
test split. Imports only torch, numpy and tqdm.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from dan_core.data.augment import to_float
from dan_core.data.batches import class_prior, holdout_split
from dan_core.data.dataset import FaceDataset, FaceRecords, collate_batch
from dan_core.data.readers import read_dataset
from dan_core.errors import DanFerError
from dan_core.model.dan import DAN
from dan_core.training.checkpoint import load_file, load_model, save_model
from dan_core.training.metrics import summarize


@torch.inference_mode()
def model_logits(model: DAN, records: FaceRecords, batch_size: int = 256, show: bool = True) -> np.ndarray:
    """(N, C) float64 logits of ``model`` on every record, as the app feeds it (no test-time flip)."""
    model.eval()
    size, gray = model.config.input_size, model.config.color == "gray"
    loader = DataLoader(FaceDataset(records, size), batch_size=batch_size, shuffle=False, collate_fn=collate_batch)
    out = [model(to_float(images, size, gray=gray)).logits.double() for images, _, _ in
           tqdm(loader, desc="logits", disable=not show, leave=False)]
    return torch.cat(out).numpy() if out else np.zeros((0, model.config.num_classes))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray) -> float:
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.25, 4] that minimises the negative log-likelihood of ``logits / T``."""
    grid = np.exp(np.linspace(np.log(0.25), np.log(4.0), 281))
    losses = [nll(logits / t, labels) for t in grid]
    return float(grid[int(np.argmin(losses))])


@torch.no_grad()
def fold_into_bn(model: DAN, temperature: float = 1.0, shift: np.ndarray | None = None) -> DAN:
    """Make ``model`` output ``(logits + shift) / temperature`` by editing its final BatchNorm."""
    bn = model.bn
    if shift is not None:
        bn.bias += torch.as_tensor(shift, dtype=bn.bias.dtype)
    bn.weight /= temperature
    bn.bias /= temperature
    return model


def scan_shifts(logits: np.ndarray, labels: np.ndarray, prior: np.ndarray, taus: list[float],
                class_names: tuple[str, ...]) -> list[dict]:
    """Selection-split scores of each post-hoc shift ``-tau * log(prior)``, each with its own fitted temperature."""
    rows = []
    for tau in taus:
        z = logits - tau * np.log(prior)
        t = fit_temperature(z, labels)
        r = summarize(softmax(z / t), labels, class_names)
        rows.append({"tau": tau, "temperature": t, "accuracy": r.accuracy, "mean_class_accuracy": r.mean_class_accuracy,
                     "ece": r.ece, "min_recall": min(r.per_class.values())})
    return rows


def calibrate(model: DAN, records: FaceRecords, prior: np.ndarray, la_tau: float | None = 0.0, show: bool = True,
              scan: tuple[float, ...] = (-0.5, -0.25, 0.0, 0.25, 0.5)) -> dict:
    """Fit the shift (-la_tau * log prior) and temperature on ``records``, fold them in, report before/after.

    ``la_tau=None`` picks the tau of ``scan`` with the highest accuracy + mean-class accuracy on ``records``.
    """
    logits = model_logits(model, records, show=show)
    labels = records.labels
    rows: list[dict] = []
    if la_tau is None:
        rows = scan_shifts(logits, labels, prior, list(scan), model.config.class_names)
        la_tau = max(rows, key=lambda r: r["accuracy"] + r["mean_class_accuracy"])["tau"]
    shift = -la_tau * np.log(prior)
    temperature = fit_temperature(logits + shift, labels)
    before = summarize(softmax(logits), labels, model.config.class_names, loss=nll(logits, labels))
    adjusted = (logits + shift) / temperature
    after = summarize(softmax(adjusted), labels, model.config.class_names, loss=nll(adjusted, labels))
    fold_into_bn(model, temperature, shift)
    return {"temperature": temperature, "la_tau": la_tau, "shift": shift.tolist(), "n": len(labels),
            "before": before.to_dict(), "after": after.to_dict(), "scan": rows}


def selection_split(dataset: str, data: str, fraction: float, seed: int) -> tuple[FaceRecords, np.ndarray]:
    """The held-out training faces of a run made with ``--holdout fraction --holdout-seed seed``, and the
    class prior of the faces it trained on."""
    train = read_dataset(dataset, data, "train")
    keep, held = holdout_split(train.labels, fraction, seed)
    return train.subset(held), class_prior(train.subset(keep))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dan_core.calibrate", description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="a dan-fer .pt checkpoint")
    p.add_argument("--out", required=True, help="the calibrated checkpoint (.pt)")
    p.add_argument("--dataset", default="", help="dataset reader (default: the run's own)")
    p.add_argument("--data", default="", help="dataset root (default: the run's own)")
    p.add_argument("--holdout", type=float, default=0.0, help="held-out fraction (default: the run's own)")
    p.add_argument("--holdout-seed", type=int, default=-1, help="(default: the run's own)")
    p.add_argument("--la-tau", default="0", help="post-hoc logit adjustment strength (0: none); 'auto': the one of "
                   "-0.5 -0.25 0 0.25 0.5 with the best accuracy + mean-class accuracy on the selection split")
    p.add_argument("--half", action="store_true", help="store the weights as float16")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        run_cfg = load_file(args.checkpoint).get("train_config") or {}
        dataset = args.dataset or run_cfg.get("dataset", "ferplus")
        data = args.data or run_cfg.get("data", "")
        fraction = args.holdout or float(run_cfg.get("holdout", 0.0))
        seed = args.holdout_seed if args.holdout_seed >= 0 else int(run_cfg.get("holdout_seed", 1234))
        if fraction <= 0:
            raise DanFerError("calibration needs held-out training faces: pass --holdout (the run's selection split)")
        records, prior = selection_split(dataset, data, fraction, seed)
        model = load_model(args.checkpoint)
        tau = None if args.la_tau == "auto" else float(args.la_tau)
        report = calibrate(model, records, prior, tau, show=not args.json)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        save_model(model, args.out, half=args.half, extra={"calibration": {k: report[k] for k in
                                                                              ("temperature", "la_tau", "shift", "n")}})
    except (DanFerError, OSError) as exc:
        print(f"calibrate: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report))
    else:
        b, a = report["before"], report["after"]
        for row in report["scan"]:
            print(f"  tau {row['tau']:+.2f}: accuracy {row['accuracy'] * 100:.2f}%  mean-class "
                  f"{row['mean_class_accuracy'] * 100:.2f}%  ECE {row['ece'] * 100:.2f}%  (T={row['temperature']:.3f})")
        print(f"selection split n={report['n']}: T={report['temperature']:.3f}, la_tau={report['la_tau']}")
        for name, r in (("before", b), ("after", a)):
            print(f"  {name}: accuracy {r['accuracy'] * 100:.2f}%  mean-class {r['mean_class_accuracy'] * 100:.2f}%  "
                  f"ECE {r['ece'] * 100:.2f}%  NLL {r['loss']:.4f}")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
