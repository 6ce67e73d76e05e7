"""Which floating-point precision is fast on this machine: the meaning of ``precision=auto``.

bfloat16 autocast pays only where the hardware multiplies bfloat16 natively: a CUDA GPU with bf16 (Ampere and
later) or an x86 CPU with AVX512-BF16 or AMX. Elsewhere PyTorch emulates it, and on a CPU with AVX2 alone the
tiny preset trained 12x (tokenizer) and 25x (transformer) *slower* under bf16 autocast than in float32 (README,
"Precision"). ``auto`` therefore picks bfloat16 where it is native and float32 everywhere else; a CPU whose
bfloat16 support PyTorch cannot report (ARM) gets float32, the safe choice.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

AUTO = "auto"
X86 = ("x86_64", "amd64", "i386", "i686")


def cpu_bf16_native() -> bool:
    """True on an x86 CPU with AVX512-BF16 or AMX (as PyTorch's CPU probe reports them)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def device_type(accelerator: str) -> str:
    """The torch device type a Lightning ``accelerator`` value trains on."""
    acc = str(accelerator).lower()
    if acc in ("gpu", "cuda"):
        return "cuda"
    if acc == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return acc


def bf16_native(device: str) -> bool:
    """Whether ``device`` ('cpu', 'cuda', ...) computes bfloat16 natively, so that autocast to it pays."""
    if device == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device == "cpu":
        return cpu_bf16_native()
    return False


def trainer_precision(value: str, accelerator: str) -> str:
    """Lightning's ``precision`` for ``trainer.precision=value``: 'auto' becomes 'bf16-mixed' where bfloat16 is
    native, '16-mixed' on a CUDA GPU without it, '32-true' otherwise; any other value is returned unchanged."""
    if str(value) != AUTO:
        return str(value)
    device = device_type(accelerator)
    if bf16_native(device):
        return "bf16-mixed"
    return "16-mixed" if device == "cuda" else "32-true"


def cpu_name() -> str:
    """The CPU's model name ('AMD EPYC'), from /proc/cpuinfo where there is one, else what Python reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine() -> str:
    """One line naming the machine a run's numbers come from: the CPU (or GPU), its cores and what
    ``precision=auto`` picks there, e.g. 'AMD EPYC, 2 cores, AVX512-BF16: yes, precision=auto -> bf16-mixed'."""
    parts = [cpu_name(), f"{os.cpu_count()} cores", f"torch {torch.__version__}"]
    if torch.cuda.is_available():
        parts.append(f"GPU {torch.cuda.get_device_name(0)}")
    else:
        parts.append(f"AVX512-BF16 or AMX: {'yes' if cpu_bf16_native() else 'no'}")
    parts.append(f"precision=auto -> {trainer_precision(AUTO, 'auto')}")
    return ", ".join(parts)


def sampler_bf16(value: str, device: str) -> bool:
    """Whether the sampler's ``precision=value`` ('32', 'bf16' or 'auto') runs the transformer in bfloat16."""
    return str(value) == "bf16" or (str(value) == AUTO and bf16_native(device))


def slow_bf16_warning(key: str, value: str, device: str) -> str | None:
    """A one-line warning when ``key=value`` asks for bfloat16 on an x86 CPU that would emulate it, else None."""
    if not str(value).startswith("bf16") or device != "cpu" or platform.machine().lower() not in X86:
        return None
    if cpu_bf16_native():
        return None
    fallback = "32-true" if key.startswith("trainer") else "32"
    return (
        f"{key}={value} on a CPU without AVX512-BF16 or AMX: bfloat16 is emulated here and runs 10-25x slower "
        f"than float32; set {key}=auto (or {fallback}) to use float32 on this machine"
    )
