"""dan-fer bench-model: DAN alone on this machine: training images/s (float32 and bfloat16) and inference ms/face
(torch; ONNX Runtime float32 and int8).

    dan-fer bench-model [--sizes 112 224] [--json]      (or python -m dan_core.bench_model)

Its companion ``dan-fer bench VIDEO`` measures the whole face pipeline (decode, landmarks, align,
DAN, tracking) on a video. Prints a table; numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dan_core.data.augment import AugmentConfig, augment
from dan_core.model.dan import DAN, DANConfig
from dan_core.model.losses import AffinityLoss, PartitionLoss
from dan_core.training.export import export_onnx
from dan_core.training.precision import choose_precision


def median_ms(fn, repeats: int, warmup: int = 3, device: torch.device | None = None) -> float:
    """Median wall time of ``fn()`` in ms after ``warmup`` calls; on CUDA each call is synchronised,
    so the GPU's queued work is counted, not only its launch."""
    def sync() -> None:
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def bench_train(size: int, batch: int, steps: int, device: torch.device, *, warmup: int = 1,
                augment_config: AugmentConfig | None = None, gray: bool = False, amp: bool = False,
                channels_last: bool = False) -> float:
    """Training images/s of DAN (all three losses, batched augmentation) at ``size``; ``amp`` is bfloat16
    autocast, ``channels_last`` the memory format, as ``dan-fer train`` uses them on a GPU."""
    model = DAN(DANConfig(input_size=size)).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    affinity = AffinityLoss(8).to(device)
    opt = torch.optim.SGD(list(model.parameters()) + list(affinity.parameters()), lr=0.01, momentum=0.9)
    images = torch.randint(0, 256, (batch, 1, 48, 48), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 8, (batch,), device=device)
    aug = augment_config or AugmentConfig()

    def step() -> None:
        x = augment(images, size, aug, gray=gray)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = model(x)
        loss = torch.nn.functional.cross_entropy(out.logits.float(), labels) + affinity(out.features, labels) \
            + PartitionLoss()(out.heads)
        opt.zero_grad()
        loss.backward()
        opt.step()

    ms = median_ms(step, steps, warmup=warmup, device=device)
    return batch / (ms / 1000)


def bench_infer(size: int, repeats: int, int8: bool = True) -> dict[str, float]:
    """ms per face of a random DAN at ``size``: torch, ONNX Runtime float32 (batch 1 and 4) and, with ``int8``,
    ONNX Runtime int8 (quantised with random faces: the speed of the graph, not its accuracy)."""
    from dan_core.onnxrt import onnxruntime
    from dan_core.training.int8 import quantize_model

    ort = onnxruntime()
    model = DAN(DANConfig(input_size=size)).eval()
    x = torch.rand(1, 3, size, size)
    x4 = np.random.rand(4, 3, size, size).astype(np.float32)
    with torch.inference_mode():
        torch_ms = median_ms(lambda: model(x), repeats)
    row = {"torch_ms": torch_ms}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"": Path(tmp) / "m.onnx"}
        export_onnx(model, paths[""])
        if int8:
            paths["int8_"] = Path(tmp) / "m_int8.onnx"
            quantize_model(model, paths["int8_"], np.random.rand(64, 3, size, size).astype(np.float32))
        for prefix, path in paths.items():
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            row[f"{prefix}onnxruntime_ms"] = median_ms(lambda s=sess: s.run(None, {"faces": x.numpy()}), repeats)
            row[f"{prefix}onnxruntime_batch4_ms_per_face"] = median_ms(lambda s=sess: s.run(None, {"faces": x4}),
                                                                      max(repeats // 2, 3)) / 4
    return row


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", type=int, nargs="+", default=[112, 224], help="input sizes to measure (default: 112 224)")
    p.add_argument("--train-batch", type=int, default=64, help="training batch size (default: 64)")
    p.add_argument("--train-steps", type=int, default=3, help="timed training steps per size (default: 3)")
    p.add_argument("--repeats", type=int, default=20, help="timed inference calls per measurement (default: 20)")
    p.add_argument("--no-int8", action="store_true", help="skip the int8 ONNX Runtime timing (it quantises a model first)")
    p.add_argument("--json", action="store_true", help="print the numbers as one JSON object")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dan_core.bench_model", description=__doc__.split("\n")[0].split(": ", 1)[1])
    add_arguments(p)
    return run(p.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    native = choose_precision(device)
    rows = []
    for size in args.sizes:
        row = {"size": size, "device": str(device), "threads": torch.get_num_threads(), "bf16_native": native.bf16,
               "bf16_reason": native.reason}
        for name, bf16 in (("fp32", False), ("bf16", True)):  # bf16 with channels-last, as dan-fer train runs it
            row[f"train_images_per_s_{name}"] = bench_train(size, args.train_batch, args.train_steps, device, warmup=2,
                                                            amp=bf16, channels_last=bf16)
        row.update(bench_infer(size, args.repeats, int8=not args.no_int8))
        rows.append(row)
    if args.json:
        print(json.dumps(rows))
        return 0
    int8 = not args.no_int8
    header = (f"{'size':>5} {'train fp32':>11} {'train bf16':>11} {'torch':>7} {'ORT fp32':>9} {'b4':>6}"
              + (f" {'ORT int8':>9} {'b4':>6}" if int8 else ""))
    print(f"{header}   (img/s; ms/face; {device}, {rows[0]['threads']} threads)")
    for r in rows:
        line = (f"{r['size']:>5} {r['train_images_per_s_fp32']:>11.1f} {r['train_images_per_s_bf16']:>11.1f} {r['torch_ms']:>7.1f} "
                f"{r['onnxruntime_ms']:>9.2f} {r['onnxruntime_batch4_ms_per_face']:>6.2f}")
        if int8:
            line += f" {r['int8_onnxruntime_ms']:>9.2f} {r['int8_onnxruntime_batch4_ms_per_face']:>6.2f}"
        print(line)
    print(f"bfloat16 is {'native' if native.bf16 else 'emulated'} here ({native.reason}); dan-fer train uses "
          f"{native.name}{' + channels-last' if native.channels_last else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
