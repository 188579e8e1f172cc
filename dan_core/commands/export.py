"""dan-fer export: a checkpoint -> one self-contained ONNX file meeting the app's contract (``--int8``: its int8
twin, calibrated on training faces), or (``--out X.pt``) a slim checkpoint: weights (EMA folded in) + config."""

from __future__ import annotations

import argparse
import io
import json
import os

from dan_core.cli_fields import ranged
from dan_core.data.templates import load_template_file, template_points
from dan_core.errors import DanFerError
from dan_core.training.checkpoint import load_model, save_model
from dan_core.training.export import export_onnx
from dan_core.training.int8 import CALIBRATION_FACES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a dan-fer .pt checkpoint (EMA weights are used when present)")
    p.add_argument("--out", required=True, help="output .onnx, or .pt for a slim weights-only checkpoint")
    p.add_argument("--half", action="store_true", help="store weights as float16 (compute stays float32)")
    p.add_argument("--template", help="alignment template JSON (5 points, normalised crop coordinates)")
    p.add_argument("--no-ema", action="store_true", help="export the raw weights instead of the EMA")
    p.add_argument("--int8", action="store_true", help="the int8 model for ONNX Runtime on the CPU (name it <float name>_int8.onnx "
                   "beside the float model, so --precision finds it); needs --calibration-data")
    p.add_argument("--calibration-data", metavar="DIR", help="root of the model's training dataset (FER+: the folder with "
                   "fer2013_train.npz and ferplus_votes.csv): its faces calibrate --int8")
    p.add_argument("--calibration-faces", type=ranged(int, 16), default=CALIBRATION_FACES,
                   help=f"training faces drawn for --int8, each class in its share (default: {CALIBRATION_FACES})")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from dan_core.paths import check_writable

    # before the work: never over an existing file without --force, never over the checkpoint or template at all
    out = check_writable(args.out, force=args.force, what="--out", inputs=[args.checkpoint, args.template])
    model = load_model(args.checkpoint, use_ema=not args.no_ema)
    if args.template:
        model.config.template = template_points(load_template_file(args.template, model.config.input_size))
    if out.suffix == ".pt":
        buf = io.BytesIO()  # torch's own file writer says "unexpected pos" for a full disk: write the bytes here instead
        save_model(model, buf, half=args.half)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # whole or not at all
        try:
            tmp.write_bytes(buf.getvalue())
            os.replace(tmp, out)
        except OSError as exc:
            raise DanFerError(f"cannot write {out}: {exc.strerror or exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
        return 0
    if args.int8:
        return _export_int8(model, out, args)
    rep = export_onnx(model, args.out, half=args.half)
    if args.json:
        print(json.dumps(rep.__dict__))
    else:
        print(f"wrote {rep.path} ({rep.bytes / 1e6:.1f} MB); ONNX Runtime vs torch: max |probs diff| {rep.max_abs_diff_probs:.2e}")
    return 0


def _export_int8(model, out, args: argparse.Namespace) -> int:
    from dan_core.quantize import calibration_faces
    from dan_core.training.int8 import quantize_model

    if out.suffix != ".onnx" or not args.calibration_data:
        raise DanFerError("--int8 writes an .onnx file and needs --calibration-data DIR (the training faces that calibrate it)")
    dataset = model.config.train_dataset or "ferplus"
    faces = calibration_faces(dataset, args.calibration_data, model.config.input_size, model.config.color,
                              count=args.calibration_faces)
    rep = quantize_model(model, out, faces)
    if args.json:
        print(json.dumps(rep.__dict__))
    else:
        print(f"wrote {rep.path} ({rep.bytes / 1e6:.1f} MB): int8 backbone calibrated on {rep.calibration_faces} {dataset} "
              f"training faces; compare it with its float model: dan-fer eval --model {out.name} --reference FLOAT.onnx ...")
    return 0
