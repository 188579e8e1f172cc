"""Which arithmetic a training run uses: bfloat16 autocast and the channels-last layout, or float32.

bfloat16 autocast with channels-last nearly doubles DAN's training speed where the hardware runs
bfloat16 natively: CUDA GPUs, and CPUs with AVX512-BF16 or AMX (measured on a 2-core AVX-512 EPYC:
151 against 80 images/s at 112 px). Without native support the CPU emulates bfloat16 and is slower
than float32, so ``auto`` decides from what torch reports about this CPU, never by default. The
choice and its reason go into the run's ``config.json`` and its first log line.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import torch

PRECISIONS = ("auto", "bf16", "fp32")


def cpu_bf16_native() -> tuple[bool, str]:
    """(whether this CPU computes bfloat16 natively, what torch found), from torch's own CPU checks."""
    found = [name for name, check in (("AMX", "_is_amx_tile_supported"), ("AVX512-BF16", "_is_avx512_bf16_supported"))
             if getattr(torch.cpu, check, lambda: False)()]
    if found:
        return True, f"CPU with {' and '.join(found)}"
    return False, f"CPU without native bfloat16 (no AVX512-BF16 or AMX; torch capability {torch.backends.cpu.get_cpu_capability()})"


@dataclass(frozen=True)
class Precision:
    """The resolved choice: ``bf16`` autocast, ``channels_last`` layout, and why."""

    bf16: bool
    channels_last: bool
    reason: str

    @property
    def name(self) -> str:
        return "bfloat16" if self.bf16 else "float32"

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        """A batch in the run's memory format."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def to_dict(self) -> dict:
        return {"precision": self.name, **asdict(self)}


FLOAT32 = Precision(bf16=False, channels_last=False, reason="float32")


def choose_precision(device: torch.device, *, amp: bool = True, channels_last: bool = True, precision: str = "auto") -> Precision:
    """``precision`` auto: bfloat16 + channels-last where ``device`` runs bfloat16 natively, else float32;
    bf16 / fp32 force one (bf16 on a CPU without native support is emulated: slow, for tests and comparisons).
    ``amp=False`` (--no-amp) always means float32; ``channels_last=False`` (--no-channels-last) keeps NCHW."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if device.type == "cuda":
        native, why = torch.cuda.is_bf16_supported(), f"GPU {torch.cuda.get_device_name(device)}"
    elif device.type == "cpu":
        native, why = cpu_bf16_native()
    else:
        native, why = False, f"device {device.type}"
    if not amp:
        bf16, reason = False, "--no-amp"
    elif precision != "auto":
        bf16, reason = precision == "bf16", f"--precision {precision} ({why})"
    else:
        bf16, reason = native, why
    return Precision(bf16=bf16, channels_last=channels_last and (bf16 or device.type == "cuda"), reason=reason)
