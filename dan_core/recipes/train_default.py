"""Rebuild the default model from scratch on one GPU, then calibrate, export, evaluate and time it.

    PYTHONPATH=. python3 -m dan_core.recipes.train_default --data ../shared/data/fer2013 --out runs/default
    make train-default                     # the same, from the project root
    ... --smoke                            # a few steps on the CPU: the same path, in the test suite

The hot loop has no Python data loader: the 25k FER+ faces live on the GPU as uint8 and every
batch is gathered and augmented there (``--data-on-device``), under bfloat16 autocast in
channels-last layout. 10% of the training faces are held out (stratified) to choose the epoch
and fit the temperature; PublicTest is scored once, at the end, by the exported ONNX file as
the app runs it. Outputs in ``--out``: the run (config.json, metrics.jsonl, best.pt, last.pt),
``dan_ferplus_112.onnx`` / ``.pt`` (float16 weights), ``summary.json``, ``confusion.png`` and
``learning_curve.png``. ``--pack DIR`` also writes the checkpoint in pieces under 16 MB with its
sha256, plus the summary, metrics and confusion matrix: eight files, for a transfer that limits
file count and size (see ``device.sh``, which joins them and exports the ONNX file here).

The recipe runs 60 epochs, or fewer when the speed measured on this GPU in a few warm-up steps
says 60 would not fit the training budget (``--train-minutes``, 6 by default).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import lzma
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from dan_core.errors import DanFerError
from dan_core.evaluate import evaluate_model
from dan_core.model.dan import DAN
from dan_core.training import train
from dan_core.training.bench_model import bench_train, median_ms
from dan_core.training.calibrate import calibrate, selection_split
from dan_core.training.checkpoint import load_file, load_model, save_model
from dan_core.training.config import TrainConfig
from dan_core.training.export import export_onnx
from dan_core.training.metrics import plot_confusion, plot_learning_curve
from dan_core.training.precision import choose_precision

ROOT = Path(__file__).resolve().parents[2]
NAME = "dan_ferplus_112"
PACK = "fer2013_device_pack.npz"
TRAIN_FACES = 22_551  # FER+ training faces with a majority label, less the 10% selection split
TRAIN_MINUTES = {"cuda": 6.0, "cpu": 150.0}  # training budgets: one device call; one quiet 2-core CPU
VOTES = "ferplus_votes.csv"


def recipe(data: str, out: str, *, device: str = "cuda", smoke: bool = False) -> TrainConfig:
    """The default model's training recipe on one GPU (``device="cuda"``) or one CPU (``"cpu"``: batch 64 with a
    peak rate of 0.1, checkpoints every 5 minutes); ``smoke`` shrinks it to a few CPU steps."""
    cfg = TrainConfig(
        dataset="ferplus", data=data, out=out, image_size=112, color="gray", num_heads=4,
        epochs=60, batch_size=256, optimizer="sgd", lr=0.1, weight_decay=5e-4, scheduler="onecycle",
        targets="soft", loss="logit-adjusted", la_tau=0.5, ema=0.999, tta_flip=False,  # tau: the ablation in models/README.md
        partition_warmup=2.0,  # from random weights the partition loss first stalls learning (training/loop.py)
        holdout=0.1, val_split="holdout", data_on_device=True, amp=True, channels_last=True, seed=0,
    )
    cfg.augment.erase_p = 0.25
    if device == "cpu":
        cfg = dataclasses.replace(cfg, device="cpu", batch_size=64, checkpoint_minutes=5.0)
    if smoke:
        cfg = dataclasses.replace(cfg, device="cpu", epochs=1, max_steps=3, batch_size=16, limit_train=512,
                                  limit_val=64, ema=0.9, threads=2)
    return cfg


def learning_check(data: str, out: str, *, faces: int = 4000, steps: int = 300) -> TrainConfig:
    """The CPU recipe from random weights, cut to ``steps`` steps on ``faces`` training faces at 48 px: it must
    leave the class prior (tests/test_recipe.py), which the recipe before its two fixes never did in 880 steps."""
    cfg = recipe(data, out, device="cpu")
    per_epoch, full_epoch = faces // cfg.batch_size, TRAIN_FACES // cfg.batch_size
    return dataclasses.replace(cfg, image_size=48, limit_train=faces, limit_val=1000, epochs=max(1, round(steps / per_epoch)),
                               partition_warmup=cfg.partition_warmup * full_epoch / per_epoch,  # the same steps as the recipe
                               checkpoint_minutes=0.0, ema=0.99, threads=2)


def prepare_data(data: Path, work: Path) -> Path:
    """A folder that ``read_ferplus`` can read: ``data`` itself, or the device pack unpacked into ``work``."""
    if (data / "fer2013_train.npz").is_file() or (data / PACK).is_file():
        return data
    packed = data / f"{PACK}.xz"
    if not packed.is_file() or not (data / VOTES).is_file():
        raise DanFerError(f"{data} holds neither the FER2013 npz files nor {PACK}(.xz) with {VOTES}")
    work.mkdir(parents=True, exist_ok=True)
    if not (work / PACK).is_file():
        with lzma.open(packed) as src, open(work / f"{PACK}.tmp", "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
        (work / f"{PACK}.tmp").replace(work / PACK)
    shutil.copyfile(data / VOTES, work / VOTES)
    return work


def measure_step_seconds(cfg: TrainConfig, device: torch.device, steps: int = 12) -> float:
    """Seconds per training step of the recipe's model and batch on ``device`` (after 4 warm-up steps), in the
    precision the run will use there."""
    prec = choose_precision(device, amp=cfg.amp, channels_last=cfg.channels_last, precision=cfg.precision)
    images_per_s = bench_train(cfg.image_size, cfg.batch_size, steps, device, warmup=4, augment_config=cfg.augment,
                               gray=cfg.color == "gray", amp=prec.bf16, channels_last=prec.channels_last)
    return cfg.batch_size / images_per_s


VALIDATION_SHARE = {"cuda": 0.25, "cpu": 0.10}  # validation time per epoch, as a share of training time (measured)


def fit_epochs(cfg: TrainConfig, train_faces: int, step_s: float, minutes: float, validation: float = 0.25) -> int:
    """The recipe's epochs, or fewer if ``minutes`` of training (plus ``validation`` of it) cannot hold them."""
    steps = max(train_faces // cfg.batch_size, 1)
    return max(1, min(cfg.epochs, int(minutes * 60 / (steps * step_s * (1 + validation)))))


@torch.inference_mode()
def bench_torch(model: DAN, device: torch.device, batches: tuple[int, ...] = (1, 8), repeats: int = 50) -> list[dict]:
    """Median ms per face of the torch model on ``device`` at each batch size, float32 and bfloat16."""
    model = model.to(device).eval()
    size = model.config.input_size
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        for batch in batches:
            x = torch.rand(batch, 3, size, size, device=device)

            def forward(x: torch.Tensor = x, bf16: bool = dtype == torch.bfloat16) -> None:
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    model(x)

            ms = median_ms(forward, repeats, warmup=5, device=device)
            rows.append({"device": str(device), "dtype": str(dtype).removeprefix("torch."), "batch": batch,
                         "ms_per_batch": ms, "ms_per_face": ms / batch})
    return rows


def pack_files(files: list[Path], dest: Path, piece_mb: int = 15) -> dict[str, str]:
    """Copy ``files`` into ``dest`` in pieces of ``piece_mb`` MB (NAME.partNN); returns name -> sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    sums = {}
    for path in files:
        data = path.read_bytes()
        sums[path.name] = hashlib.sha256(data).hexdigest()
        step = piece_mb * 1_000_000
        for i in range(0, max(len(data), 1), step):
            (dest / f"{path.name}.part{i // step:02d}").write_bytes(data[i : i + step])
    (dest / "SHA256SUMS").write_text("".join(f"{h}  {n}\n" for n, h in sums.items()))
    return sums


def plan(cfg: TrainConfig, device: torch.device, train_minutes: float, step_ms: float = 0.0) -> TrainConfig:
    """The recipe's epochs cut to what ``train_minutes`` hold at the speed measured here (or at ``step_ms`` per
    step, measured beforehand on a quiet machine); a run folder that already holds a ``last.pt`` is resumed with
    its own recipe instead (same epochs, same schedule)."""
    last = Path(cfg.out) / "last.pt"
    if last.is_file():
        resumed = TrainConfig.from_dict(load_file(last)["train_config"])
        resumed.resume, resumed.data, resumed.out = str(last), cfg.data, cfg.out
        print(f"recipe: resuming {last} ({resumed.epochs} epochs planned)", flush=True)
        return resumed
    step_s = step_ms / 1000 if step_ms > 0 else measure_step_seconds(cfg, device)
    planned = cfg.epochs
    cfg.epochs = fit_epochs(cfg, TRAIN_FACES, step_s, train_minutes, VALIDATION_SHARE[device.type])
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"the CPU ({torch.get_num_threads()} threads)"
    print(f"recipe: {step_s * 1000:.1f} ms per step of {cfg.batch_size} on {where}: "
          f"{cfg.epochs} of {planned} epochs fit {train_minutes:g} minutes", flush=True)
    return cfg


def run_recipe(data: str, out: str, *, device: str = "auto", smoke: bool = False, pack: str = "",
               train_minutes: float | None = None, step_ms: float = 0.0, show: bool = True) -> dict:
    started = time.perf_counter()
    out_dir = Path(out)
    data_dir = prepare_data(Path(data), out_dir / "data")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() and not smoke else "cpu"
    cfg = recipe(str(data_dir), str(out_dir / "run"), device=device, smoke=smoke)
    timings: dict[str, float] = {"prepare_s": time.perf_counter() - started}
    dev = torch.device(device)
    if not smoke:
        cfg = plan(cfg, dev, train_minutes or TRAIN_MINUTES[dev.type], step_ms)

    t = time.perf_counter()
    with contextlib.redirect_stdout(sys.stdout if show else sys.stderr):  # --json: stdout holds the summary alone
        last = train.main(cfg)
    timings["train_s"] = time.perf_counter() - t

    t = time.perf_counter()
    model = load_model(out_dir / "run" / "best.pt")
    held, prior = selection_split(cfg.dataset, cfg.data, cfg.holdout, cfg.holdout_seed)
    if cfg.limit_val:
        held = held.subset(np.arange(min(cfg.limit_val, len(held))))
    cal = calibrate(model, held, prior, la_tau=None, show=show)  # post-hoc shift and temperature from the selection split
    onnx_path, pt_path = out_dir / f"{NAME}.onnx", out_dir / f"{NAME}.pt"
    save_model(model, pt_path, half=True, extra={"calibration": {k: cal[k] for k in ("temperature", "n")}})
    report = export_onnx(model, onnx_path, half=True)
    timings["calibrate_export_s"] = time.perf_counter() - t

    t = time.perf_counter()
    result = evaluate_model(onnx_path, "ferplus", cfg.data, "val", limit=64 if smoke else 0, show=show)
    timings["eval_s"] = time.perf_counter() - t
    plot_confusion(result, str(out_dir / "confusion.png"))
    plot_learning_curve([str(out_dir / "run" / "metrics.jsonl")], str(out_dir / "learning_curve.png"), labels=["holdout"])

    bench = bench_torch(load_model(pt_path), dev, repeats=3 if smoke else 50)
    timings["total_s"] = time.perf_counter() - started
    summary = {
        "recipe": dataclasses.asdict(cfg), "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
        "torch": torch.__version__, "timings": timings, "last_epoch": last,
        "calibration": {k: cal[k] for k in ("temperature", "n")}, "holdout_after_calibration": cal["after"],
        "publictest": result.to_dict(), "export_max_abs_diff_probs": report.max_abs_diff_probs, "bench_torch": bench,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    if pack:
        summary["sha256"] = pack_files([pt_path], Path(pack))  # the ONNX file is exported again from it
        for name in ("summary.json", "confusion.png"):
            shutil.copyfile(out_dir / name, Path(pack) / name)
        shutil.copyfile(out_dir / "run" / "metrics.jsonl", Path(pack) / "metrics.jsonl")
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dan_core.recipes.train_default", description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fer2013"),
                   help="FER+ data: the npz files or the (xz-packed) device pack, with ferplus_votes.csv")
    p.add_argument("--out", default="runs/default", help="output folder")
    p.add_argument("--pack", default="", help="also write the model files in <16 MB pieces with sha256 here")
    p.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"),
                   help="cuda: the GPU recipe (batch 256); cpu: the CPU recipe (batch 64, checkpoints every 5 minutes); "
                        "auto: cuda when there is one")
    p.add_argument("--smoke", action="store_true", help="a few training steps on the CPU, end to end")
    p.add_argument("--train-minutes", type=float, default=None,
                   help="training budget that caps the epochs (default: 6 on a GPU, 150 on a CPU)")
    p.add_argument("--step-ms", type=float, default=0.0,
                   help="ms per training step measured beforehand on a quiet machine (dan-fer bench-model), for a run "
                        "started while other work shares the CPU; default: measured at the start")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = p.parse_args(argv)
    try:
        summary = run_recipe(args.data, args.out, device=args.device, smoke=args.smoke, pack=args.pack, train_minutes=args.train_minutes,
                             step_ms=args.step_ms, show=not args.json)
    except DanFerError as exc:
        print(f"train_default: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary))
        return 0
    r, tm = summary["publictest"], summary["timings"]
    print(f"PublicTest (ONNX, as the app runs it): accuracy {r['accuracy'] * 100:.2f}%, mean-class "
          f"{r['mean_class_accuracy'] * 100:.2f}%, ECE {r['ece'] * 100:.2f}%  (n={r['n']})")
    print("recall: " + ", ".join(f"{k} {v * 100:.1f}" for k, v in r["per_class"].items()))
    print(f"time: train {tm['train_s']:.0f} s, calibrate+export {tm['calibrate_export_s']:.0f} s, "
          f"eval {tm['eval_s']:.0f} s, total {tm['total_s']:.0f} s on {summary['device']}")
    for row in summary["bench_torch"]:
        print(f"torch {row['device']} {row['dtype']:>8} batch {row['batch']}: {row['ms_per_face']:.3f} ms/face")
    return 0


if __name__ == "__main__":
    sys.exit(main())
