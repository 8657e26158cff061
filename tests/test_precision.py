"""trainer.precision=auto picks bf16-mixed only where the CPU has bf16 matrix instructions and a bf16
matrix product measures clearly faster than fp32 there."""

import pytest
import torch

from gan.runtime.precision import MIN_BF16_SPEEDUP, choose_precision, cpu_bf16_flags, cpu_matmul_rates, matmul_rate

AVX512_BF16 = "processor: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
AMX = "processor: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
AVX2_ONLY = "processor: 0\nflags\t\t: fpu sse2 avx2 fma\n"


def test_flags_are_read_from_cpuinfo():
    assert cpu_bf16_flags(AVX512_BF16) == ["avx512_bf16"]
    assert cpu_bf16_flags(AMX) == ["avx512_bf16", "amx_bf16"]
    assert cpu_bf16_flags(AVX2_ONLY) == []


def test_auto_takes_bf16_where_it_measures_faster_and_says_why():
    # rates measured on two machines of this workplace (bf16, fp32 GFLOP/s at 2048^3)
    precision, why = choose_precision("auto", "cpu", AMX, rates=(2543.0, 372.0))
    assert precision == "bf16-mixed" and "amx_bf16" in why and "6.84x" in why


def test_auto_keeps_fp32_where_bf16_instructions_are_slow():
    # an AVX512_BF16 CPU without AMX: its bf16 product ran at half the fp32 rate
    precision, why = choose_precision("auto", "cpu", AVX512_BF16, rates=(152.6, 298.5))
    assert precision == "32-true"
    assert "avx512_bf16" in why and "0.51x" in why and "so fp32" in why


def test_auto_needs_the_whole_margin():
    fp32 = 200.0
    assert choose_precision("auto", "cpu", AVX512_BF16, rates=(MIN_BF16_SPEEDUP * fp32, fp32))[0] == "bf16-mixed"
    assert choose_precision("auto", "cpu", AVX512_BF16, rates=(0.99 * MIN_BF16_SPEEDUP * fp32, fp32))[0] == "32-true"


def test_auto_measures_nothing_without_bf16_instructions(monkeypatch):
    def fail():
        raise AssertionError("measured on a CPU without bf16 instructions")

    monkeypatch.setattr("gan.runtime.precision.cpu_matmul_rates", fail)
    precision, why = choose_precision("auto", "cpu", AVX2_ONLY)
    assert precision == "32-true" and "no bf16" in why


def test_an_explicit_precision_is_kept():
    assert choose_precision("32-true", "cpu", AVX512_BF16, rates=(1000.0, 1.0))[0] == "32-true"
    assert choose_precision("bf16-mixed", "cpu", AVX2_ONLY)[0] == "bf16-mixed"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_matmul_rate_is_a_positive_rate(dtype):
    assert 0 < matmul_rate(dtype, size=64, repeats=2) < float("inf")


def test_the_rates_are_measured_once_per_process():
    assert cpu_matmul_rates() is cpu_matmul_rates()
