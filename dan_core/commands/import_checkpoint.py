"""dan-fer import-checkpoint: the paper's official DAN .pth -> our .pt or .onnx."""

from __future__ import annotations

import argparse
from pathlib import Path

from dan_core.errors import DanFerError
from dan_core.training.checkpoint import import_official, save_model
from dan_core.training.export import export_onnx


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="e.g. rafdb_epoch21_acc0.897_bacc0.8275.pth")
    p.add_argument("--dataset", required=True, choices=("rafdb", "affectnet7", "affectnet8"))
    p.add_argument("--out", required=True, help="OUT.onnx or OUT.pt")
    p.add_argument("--half", action="store_true", help="store float16 weights")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix not in (".onnx", ".pt"):
        raise DanFerError("--out must end in .onnx or .pt")
    from dan_core.paths import check_writable

    check_writable(out, force=args.force, what="--out")  # before the work: never overwrite silently
    model = import_official(args.file, args.dataset)
    if out.suffix == ".onnx":
        rep = export_onnx(model, out, half=args.half)
        print(f"wrote {out} ({rep.bytes / 1e6:.1f} MB, {args.dataset}: {', '.join(model.config.class_names)})")
    else:
        try:
            save_model(model, out, half=args.half)
        except OSError as exc:
            raise DanFerError(f"cannot write {out}: {exc}") from exc
        print(f"wrote {out} ({args.dataset}: {', '.join(model.config.class_names)})")
    return 0
