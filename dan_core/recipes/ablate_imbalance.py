"""Compare the remedies for FER+'s unbalanced classes on short classifier runs over frozen features.

    python -m dan_core.recipes.ablate_imbalance --weights MODEL.pt --data ../shared/data/fer2013 [--json]

A full fine-tuning run per remedy costs an hour of 2-core CPU; the remedies act on the classifier,
so this recipe runs the backbone and heads of a trained DAN once over a sample of training faces,
the held-out selection split and (for the record) PublicTest, and then retrains only the final
``fc`` + ``bn`` (starting from the model's own) with each remedy for a few epochs: plain soft
cross-entropy, logit adjustment (tau 0.5 and 1 = Balanced Softmax), re-weighted soft targets,
class-balanced sampling, labels drawn from the votes, and post-hoc logit adjustment. The remedy is
chosen on the selection split; PublicTest is one look per row, reported, not used to choose.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from dan_core.data.augment import to_float
from dan_core.data.batches import balanced_weights, class_prior, holdout_split
from dan_core.data.dataset import FaceDataset, FaceRecords, collate_batch
from dan_core.data.readers import read_dataset
from dan_core.model.dan import DAN
from dan_core.model.losses import ClassAwareLoss, make_target
from dan_core.training.calibrate import fit_temperature, softmax
from dan_core.training.checkpoint import load_model
from dan_core.training.metrics import summarize

REMEDIES = {  # name: (tau, class-weight power, balanced sampling, targets)
    "plain soft CE": (0.0, 0.0, False, "soft"),
    "logit-adjusted, tau 0.5": (0.5, 0.0, False, "soft"),
    "Balanced Softmax (logit-adjusted, tau 1)": (1.0, 0.0, False, "soft"),
    "re-weighted targets, (1/prior)^0.5": (0.0, 0.5, False, "soft"),
    "class-balanced sampling": (0.0, 0.0, True, "soft"),
    "labels drawn from the votes": (0.0, 0.0, False, "sample"),
}


@torch.inference_mode()
def fc_inputs(model: DAN, records: FaceRecords, show: bool = True) -> torch.Tensor:
    """(N, 512) input of the final Linear layer (the fused heads) for every record."""
    model.eval()
    size, gray = model.config.input_size, model.config.color == "gray"
    loader = DataLoader(FaceDataset(records, size), batch_size=128, shuffle=False, collate_fn=collate_batch)
    out = []
    for images, _, _ in tqdm(loader, desc="features", disable=not show, leave=False):
        heads = model(to_float(images, size, gray=gray)).heads  # (B, K, 512)
        out.append(heads.sum(dim=1))  # (B, 512)
    return torch.cat(out)


def train_classifier(model: DAN, feats: torch.Tensor, records: FaceRecords, prior: np.ndarray, remedy: tuple,
                     epochs: int = 4, lr: float = 0.01, seed: int = 0) -> nn.Module:
    """A copy of the model's fc + bn, trained on frozen features with one remedy."""
    tau, power, balanced, targets = remedy
    torch.manual_seed(seed)
    head = nn.Sequential(nn.Linear(feats.shape[1], len(prior)), nn.BatchNorm1d(len(prior)))
    head[0].load_state_dict(model.fc.state_dict())
    head[1].load_state_dict(model.bn.state_dict())
    criterion = ClassAwareLoss(prior, tau=tau, weight_power=power)
    opt = torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    labels = torch.as_tensor(records.labels)
    soft = torch.as_tensor(records.soft_targets)
    n, batch = len(labels), 256
    weights = balanced_weights(records)
    head.train()
    for _ in range(epochs):
        order = torch.multinomial(weights, n, replacement=True) if balanced else torch.randperm(n)
        for i in range(0, n - batch + 1, batch):
            idx = order[i : i + batch]
            loss = criterion(head(feats[idx]), make_target(labels[idx], soft[idx], targets))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return head.eval()


def scores(logits: np.ndarray, records: FaceRecords, names: tuple[str, ...]) -> dict:
    r = summarize(softmax(logits), records.labels, names)
    return {"accuracy": r.accuracy, "mean_class_accuracy": r.mean_class_accuracy, "ece": r.ece,
            "min_recall": min(r.per_class.values()), "per_class": r.per_class}


def run(weights: str, data: str, holdout: float, seed: int, train_sample: int, show: bool) -> list[dict]:
    model = load_model(weights)
    names = model.config.class_names
    train = read_dataset("ferplus", data, "train")
    keep, held = holdout_split(train.labels, holdout, seed)
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(keep, size=min(train_sample, len(keep)), replace=False))
    splits = {"train": train.subset(sample), "holdout": train.subset(held), "publictest": read_dataset("ferplus", data, "val")}
    feats = {k: fc_inputs(model, r, show) for k, r in splits.items()}
    prior = class_prior(train.subset(keep))
    rows = []
    with torch.inference_mode():
        base = {k: model.bn(model.fc(f)).double().numpy() for k, f in feats.items()}
    rows.append({"remedy": "the model as it is", **{k: scores(base[k], splits[k], names) for k in ("holdout", "publictest")}})
    for name, remedy in REMEDIES.items():
        with torch.enable_grad():
            head = train_classifier(model, feats["train"], splits["train"], prior, remedy)
        with torch.inference_mode():
            logits = {k: head(feats[k]).double().numpy() for k in ("holdout", "publictest")}
        t = fit_temperature(logits["holdout"], splits["holdout"].labels)  # every row calibrated alike
        rows.append({"remedy": name, "temperature": t,
                     **{k: scores(logits[k] / t, splits[k], names) for k in ("holdout", "publictest")}})
    for tau in (0.5, 1.0):  # post-hoc logit adjustment of the model as it is
        shift = -tau * np.log(prior)
        t = fit_temperature(base["holdout"] + shift, splits["holdout"].labels)
        rows.append({"remedy": f"post-hoc logit adjustment, tau {tau}", "temperature": t,
                     **{k: scores((base[k] + shift) / t, splits[k], names) for k in ("holdout", "publictest")}})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| remedy | holdout acc | holdout mean-class | PublicTest acc | PublicTest mean-class | PublicTest ECE | "
             "lowest recall |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        h, p = r["holdout"], r["publictest"]
        lines.append(f"| {r['remedy']} | {h['accuracy'] * 100:.2f} | {h['mean_class_accuracy'] * 100:.2f} | "
                     f"{p['accuracy'] * 100:.2f} | {p['mean_class_accuracy'] * 100:.2f} | {p['ece'] * 100:.1f} | "
                     f"{p['min_recall'] * 100:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dan_core.recipes.ablate_imbalance", description=__doc__.split("\n")[0])
    p.add_argument("--weights", required=True, help="a trained dan-fer checkpoint (FER+ classes)")
    p.add_argument("--data", required=True, help="FER+ data folder")
    p.add_argument("--holdout", type=float, default=0.1, help="selection split: held-out fraction of training")
    p.add_argument("--holdout-seed", type=int, default=1234)
    p.add_argument("--train-sample", type=int, default=10_000, help="training faces the classifiers learn from")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    rows = run(args.weights, args.data, args.holdout, args.holdout_seed, args.train_sample, show=not args.json)
    print(json.dumps(rows) if args.json else table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
