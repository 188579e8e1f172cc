"""dan-fer eval: accuracy, mean-class accuracy, per-class recall, confusion matrix."""

from __future__ import annotations

import argparse
import json

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
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
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
