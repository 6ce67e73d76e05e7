"""precision=auto: bfloat16 where the hardware computes it natively, float32 where it would be emulated."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from tinymaskgit import precision
from tinymaskgit.precision import sampler_bf16, slow_bf16_warning, trainer_precision
from tinymaskgit.train import resolve_precision


@pytest.fixture
def cpu(monkeypatch):
    """Pretend to be an x86 CPU with (True) or without (False) native bfloat16."""

    def set_native(native: bool) -> None:
        monkeypatch.setattr(precision, "cpu_bf16_native", lambda: native)
        monkeypatch.setattr(precision.platform, "machine", lambda: "x86_64")

    return set_native


def test_cpu_probe_agrees_with_the_kernel_flags() -> None:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists() or "flags" not in cpuinfo.read_text():
        pytest.skip("no /proc/cpuinfo flags on this system")
    flags = set(next(line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")).split())
    assert precision.cpu_bf16_native() == bool(flags & {"avx512_bf16", "amx_tile"})


@pytest.mark.parametrize("native, expected", [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_trains_in_bfloat16_only_on_a_cpu_that_has_it(cpu, native: bool, expected: str) -> None:
    cpu(native)
    assert trainer_precision("auto", "cpu") == expected
    assert sampler_bf16("auto", "cpu") is native


def test_auto_on_a_gpu_without_bfloat16_takes_float16(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert trainer_precision("auto", "gpu") == "16-mixed"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert trainer_precision("auto", "auto") == "bf16-mixed"


@pytest.mark.parametrize("value", ["32-true", "bf16-mixed", "16-mixed"])
def test_an_explicit_precision_is_kept(cpu, value: str) -> None:
    cpu(False)
    assert trainer_precision(value, "cpu") == value
    assert sampler_bf16("32", "cpu") is False and sampler_bf16("bf16", "cpu") is True


def test_explicit_bfloat16_on_an_emulating_cpu_is_warned_about_once(cpu, caplog) -> None:
    cpu(False)
    with caplog.at_level(logging.WARNING, logger="tinymaskgit.train"):
        assert resolve_precision("bf16-mixed", "cpu") == "bf16-mixed"
        assert resolve_precision("auto", "cpu") == "32-true"
        assert resolve_precision("32-true", "cpu") == "32-true"
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "trainer.precision=bf16-mixed" in warned[0] and "trainer.precision=auto" in warned[0]


def test_no_warning_where_bfloat16_is_native_or_not_asked_for(cpu, monkeypatch) -> None:
    cpu(True)
    assert slow_bf16_warning("precision", "bf16", "cpu") is None
    cpu(False)
    assert slow_bf16_warning("precision", "32", "cpu") is None
    assert slow_bf16_warning("precision", "bf16", "cuda") is None
    monkeypatch.setattr(precision.platform, "machine", lambda: "arm64")  # support unknown: no claim made
    assert slow_bf16_warning("precision", "bf16", "cpu") is None


@pytest.mark.parametrize(
    "stage, value, native, expected",
    [
        ("vqvae", "bf16-mixed", False, torch.bfloat16),  # asked for: bf16 even where it is emulated
        ("maskgit", "bf16-mixed", False, torch.bfloat16),
        ("maskgit", "auto", True, torch.bfloat16),
        ("maskgit", "auto", False, torch.float32),
    ],
)
def test_training_runs_its_layers_in_the_precision_it_resolved(
    make_cfg, tokenizer_ckpt: Path, cpu, stage: str, value: str, native: bool, expected: torch.dtype
) -> None:
    from torch.nn.modules.module import register_module_forward_hook

    from tests.conftest import TINY_TF, TINY_VQ
    from tinymaskgit.train import train

    cpu(native)
    seen: set[torch.dtype] = set()

    def record(module: torch.nn.Module, args, out) -> None:
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) and module.training:
            seen.add(out.dtype)

    stage_args = TINY_VQ if stage == "vqvae" else ["stage=maskgit", f"tokenizer_ckpt={tokenizer_ckpt}", *TINY_TF]
    cfg = make_cfg(*stage_args, "trainer.max_epochs=1", "+trainer.limit_train_batches=2", f"trainer.precision={value}")
    handle = register_module_forward_hook(record)
    try:
        metrics = train(cfg)
    finally:
        handle.remove()
    assert metrics["global_step"] == 2 and seen == {expected}


@pytest.mark.parametrize(
    "native, expected", [(True, "yes, precision=auto -> bf16-mixed"), (False, "no, precision=auto -> 32-true")]
)
def test_the_machine_line_names_the_cpu_kind_and_what_auto_picks(cpu, monkeypatch, native: bool, expected: str) -> None:
    cpu(native)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    line = precision.describe_machine()
    assert line.endswith(f"AVX512-BF16 or AMX: {expected}")
    assert f"torch {torch.__version__}" in line
