"""``trainer.precision=auto``: bf16 mixed precision where bf16 is faster on this hardware, full
fp32 elsewhere.

On a CPU the bf16 flags alone do not tell: three 2-core machines we measured (README, "GPU,
precision and hardware"; docs/hardware.md) reported bf16 instructions and ran a bf16 matrix product
at 6.8x (AMX), 2.1x and 0.5x (AVX512_BF16 without AMX) the fp32 rate. So on a CPU that reports them,
``auto`` times one bf16 and one fp32 matrix product (a fraction of a second, once per process) and
takes bf16 only when it is at least :data:`MIN_BF16_SPEEDUP` times faster; the log line gives both rates.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import torch

AUTO = "auto"
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# bf16 autocast casts every weight and activation at each step (about 12% of the default recipe's
# iteration in make profile), so a matrix product must be clearly faster for the whole step to be:
# a 2.1x product gave 1.67x on the cs231n DCGAN (an AVX-512 BF16 machine without AMX)
MIN_BF16_SPEEDUP = 1.5
PROBE_SIZE = 1024


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


def matmul_rate(dtype: torch.dtype, size: int = PROBE_SIZE, repeats: int = 7) -> float:
    """Best-of-``repeats`` GFLOP/s of a ``size``^3 matrix product in ``dtype`` on this CPU (after one
    untimed product, in which oneDNN picks its kernel)."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


@functools.lru_cache(maxsize=1)
def cpu_matmul_rates() -> tuple[float, float]:
    """``(bf16, fp32)`` GFLOP/s of a matrix product on this CPU, measured once per process (so the
    rate probe of ``iterations=auto`` and the run it sizes choose alike)."""
    return matmul_rate(torch.bfloat16), matmul_rate(torch.float32)


def choose_precision(
    requested: str | int, accelerator: str, cpuinfo: str | None = None, rates: tuple[float, float] | None = None
) -> tuple[str, str]:
    """``(precision, why)``: ``requested`` itself unless it is ``auto``, which picks by hardware.

    ``cpuinfo`` and ``rates`` (bf16 and fp32 GFLOP/s) stand in for this machine's in tests."""
    if str(requested) != AUTO:
        return str(requested), "as set (trainer.precision)"
    if accelerator in ("gpu", "cuda") or (accelerator == AUTO and torch.cuda.is_available()):
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False):
            return "bf16-mixed", "trainer.precision=auto: this GPU supports bf16"
        return "32-true", "trainer.precision=auto: no bf16 on this GPU"
    flags = cpu_bf16_flags(cpuinfo)
    if not flags:
        capability = torch.backends.cpu.get_cpu_capability()
        return "32-true", f"trainer.precision=auto: this CPU ({capability}) has no bf16 matrix instructions, so fp32"
    bf16, fp32 = rates or cpu_matmul_rates()
    measured = (f"this CPU has {', '.join(flags)} and runs a bf16 matrix product at {bf16 / fp32:.2f}x fp32 "
                f"({bf16:.0f} vs {fp32:.0f} GFLOP/s, measured now)")
    if bf16 >= MIN_BF16_SPEEDUP * fp32:
        return "bf16-mixed", f"trainer.precision=auto: {measured}"
    return "32-true", f"trainer.precision=auto: {measured}, below {MIN_BF16_SPEEDUP}x, so fp32"
