"""``trainer.precision=auto``: bf16 mixed precision where the hardware has bf16 matrix instructions,
full fp32 elsewhere (measured here: bf16 autocast is 1.7x faster on an AVX-512 BF16 CPU and much
slower on an AVX2-only one; ../shared/MACHINE.md, README "Precision")."""

from __future__ import annotations

from pathlib import Path

import torch

AUTO = "auto"
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_bf16_flags(cpuinfo: str | None = None) -> list[str]:
    """The bf16 matrix-instruction flags this CPU reports (Linux ``/proc/cpuinfo``; none elsewhere)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return []
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return [f for f in CPU_BF16_FLAGS if f in flags]


def choose_precision(requested: str | int, accelerator: str, cpuinfo: str | None = None) -> tuple[str, str]:
    """``(precision, why)``: ``requested`` itself unless it is ``auto``, which picks by hardware."""
    if str(requested) != AUTO:
        return str(requested), "as set (trainer.precision)"
    if accelerator in ("gpu", "cuda") or (accelerator == AUTO and torch.cuda.is_available()):
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False):
            return "bf16-mixed", "trainer.precision=auto: this GPU supports bf16"
        return "32-true", "trainer.precision=auto: no bf16 on this GPU"
    flags = cpu_bf16_flags(cpuinfo)
    if flags:
        return "bf16-mixed", f"trainer.precision=auto: this CPU has bf16 matrix instructions ({', '.join(flags)})"
    capability = torch.backends.cpu.get_cpu_capability()
    return "32-true", f"trainer.precision=auto: this CPU ({capability}) has no bf16 matrix instructions, so fp32"
