"""dan-fer eval: accuracy, mean-class accuracy, per-class recall, confusion matrix."""

from __future__ import annotations

import argparse
import json

import numpy as np

from dan_core.data.readers import READERS
from dan_core.evaluate import evaluate_model
from dan_core.training.metrics import plot_confusion


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="our .pt checkpoint or an exported .onnx")
    p.add_argument("--dataset", required=True, choices=sorted(READERS))
    p.add_argument("--data", required=True, help="dataset root")
    p.add_argument("--split", default="val", choices=("train", "val", "test"))
    p.add_argument("--tta", action="store_true", help="average with the horizontally flipped face")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--limit", type=int, default=0, help="score only the first N samples")
    p.add_argument("--confusion", metavar="PNG", help="also write the confusion matrix as a picture")
    p.add_argument("--reference", metavar="MODEL", help="also score this model (e.g. the float model of an int8 --model) "
                   "and compare: accuracy, per-class recall and each head's attention map; exit 1 when a check fails")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    if args.reference:
        return _compare(args)
    res = evaluate_model(args.model, args.dataset, args.data, args.split, tta_flip=args.tta,
                         batch_size=args.batch_size, limit=args.limit, show=not args.json)
    if args.confusion:
        plot_confusion(res, args.confusion)
    if args.json:
        print(json.dumps(res.to_dict(), allow_nan=False))
    else:
        print(res.table())
        if args.confusion:
            print(f"confusion matrix written to {args.confusion}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from dan_core.data.readers import read_dataset
    from dan_core.quantize import LIMITS, compare

    records = read_dataset(args.dataset, args.data, args.split)
    if args.limit:
        records = records.subset(np.arange(min(args.limit, len(records))))
    c = compare(args.reference, args.model, records, show=not args.json)
    failures = c.failures()
    if args.json:
        print(json.dumps(c.to_dict(), allow_nan=False))
        return 1 if failures else 0
    ref, cand = c.reference, c.candidate
    print(f"{'':<22}{'reference':>10}{'model':>10}")
    print(f"{'accuracy %':<22}{ref.accuracy * 100:>10.2f}{cand.accuracy * 100:>10.2f}")
    print(f"{'mean-class accuracy %':<22}{ref.mean_class_accuracy * 100:>10.2f}{cand.mean_class_accuracy * 100:>10.2f}")
    for name, recall in ref.per_class.items():
        print(f"{'  ' + name + ' recall %':<22}{recall * 100:>10.1f}{cand.per_class[name] * 100:>10.1f}")
    print(f"same class on {c.top1_agreement * 100:.1f}% of {ref.n} faces; attention maps correlate "
          + ", ".join(f"{v:.4f}" for v in c.head_correlation) + " (per head)")
    print("checks (" + ", ".join(f"{k} {v}" for k, v in LIMITS.items()) + "): "
          + ("all pass" if not failures else "FAIL: " + "; ".join(failures)))
    return 1 if failures else 0
